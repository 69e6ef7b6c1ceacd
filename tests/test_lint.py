"""The style gate on the code that is already clean: the files listed in
`CLEAN` must pass `ruff check` and `ruff format --check` with the
configuration in pyproject.toml ([tool.ruff]).

Grow `CLEAN` as more files are cleaned; `make lint` runs the same tools
on the whole tree (and mypy on graphc/ir and passes/).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ruff = pytest.importorskip("ruff", reason="ruff is not installed (it is in the 'test' extra: pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[1]

CLEAN = [
    "graphc/__init__.py",
    "graphc/_creation.py",
    "graphc/_device_storage.py",
    "graphc/_elementwise.py",
    "graphc/_indexing.py",
    "graphc/_methods.py",
    "graphc/_reductions.py",
    "graphc/_repr.py",
    "graphc/_shape.py",
    "graphc/accelerator.py",
    "graphc/autograd.py",
    "graphc/backends",
    "graphc/cli.py",
    "graphc/cuda.py",
    "graphc/debug.py",
    "graphc/demo.py",
    "graphc/device.py",
    "graphc/errors.py",
    "graphc/ir",
    "graphc/nn",
    "graphc/optim",
    "graphc/random.py",
    "graphc/serialization.py",
    "graphc/tensor.py",
    "graphc/utils",
    "graphc/vision",
    "passes/__init__.py",
    "passes/autodiff.py",
    "passes/cse.py",
    "passes/dce.py",
    "passes/fold.py",
    "passes/pipeline.py",
    "passes/rewrite.py",
    "passes/simplify.py",
    "codegen/cuda",
    "runtime/backends.py",
    "runtime/cuda.py",
    "runtime/cuda_cache.py",
    "runtime/interpreter.py",
    "bench/bench_cuda.py",
    "bench/suite.py",
    "bench/workloads.py",
    "examples",
    "tests",
]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    from ruff.__main__ import find_ruff_bin

    return subprocess.run(
        [find_ruff_bin(), *args, *CLEAN],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_ruff_check_clean_paths():
    result = _ruff("check", "--no-cache", "--output-format", "concise")
    assert result.returncode == 0, f"ruff check found problems:\n{result.stdout}{result.stderr}"


def test_ruff_format_clean_paths():
    result = _ruff("format", "--check", "--no-cache")
    assert result.returncode == 0, f"files need `ruff format` (run it on them):\n{result.stdout}{result.stderr}"
