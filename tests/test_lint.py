"""The style gate: the tree must pass `ruff check` and `ruff format
--check` with the configuration in pyproject.toml ([tool.ruff]), as
`make lint` runs them (which also runs mypy on the paths pyproject.toml
lists).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ruff = pytest.importorskip("ruff", reason="ruff is not installed (it is in the 'test' extra: pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[1]

CLEAN = ["."]  # the whole tree, with the exclusions in pyproject.toml


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
