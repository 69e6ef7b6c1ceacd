"""Differential fuzzing of graphc against PyTorch: random programs
(programs.py), run with PyTorch, graphc eagerly and graphc.compile and
compared (check.py); `python -m tests.fuzz.run --programs N` runs N seeds
and prints a summary, test_fuzz.py runs a fast seeded slice."""
