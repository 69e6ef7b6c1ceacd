"""graphc/config.py is the one place GRAPHC_* environment variables are
declared and read: no other module reads them from os.environ, every one
used anywhere is declared and documented in docs/config.md, and the ones
that change generated code are part of the compile-cache key."""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path

import pytest

from graphc import config
from graphc.runtime import cache

ROOT = Path(__file__).resolve().parents[1]
# The package (graphc/passes, codegen, runtime link to the top-level
# folders) and the examples, which read GRAPHC_DATA.
SOURCES = [ROOT / "graphc", ROOT / "examples"]
NAME = re.compile(r"\bGRAPHC_[A-Z][A-Z_]*\b")


def _python_files():
    for top in SOURCES:
        for folder, _, files in os.walk(top, followlinks=True):
            for f in files:
                if f.endswith(".py"):
                    yield Path(folder) / f


def _environ_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every os.environ[...] / .get(...) / os.getenv(...)
    / `in os.environ` with a GRAPHC_* string literal."""

    def is_environ(node) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
            isinstance(node, ast.Name) and node.id == "environ"
        )

    def graphc_literal(node) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("GRAPHC_"):
            return node.value
        return None

    found = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Subscript) and is_environ(node.value) and isinstance(node.ctx, ast.Load):
            name = graphc_literal(node.slice)
        elif isinstance(node, ast.Call) and node.args:
            f = node.func
            getter = isinstance(f, ast.Attribute) and ((f.attr == "get" and is_environ(f.value)) or f.attr == "getenv")
            if getter or (isinstance(f, ast.Name) and f.id == "getenv"):
                name = graphc_literal(node.args[0])
        elif isinstance(node, ast.Compare) and any(is_environ(c) for c in node.comparators):
            name = graphc_literal(node.left)
        if name is not None:
            found.append((node.lineno, name))
    return found


def test_no_module_reads_graphc_variables_around_config():
    offenders = []
    for path in _python_files():
        if path.resolve() == (ROOT / "graphc" / "config.py").resolve():
            continue
        for line, name in _environ_reads(ast.parse(path.read_text(), str(path))):
            offenders.append(f"{path.relative_to(ROOT)}:{line} reads {name}")
    assert not offenders, "read these through graphc.config.get:\n" + "\n".join(offenders)


def test_the_scan_finds_direct_reads():
    source = "\n".join(
        ["import os", 'os.environ["GRAPHC_X"]', 'os.environ.get("GRAPHC_Y", "0")', 'os.getenv("GRAPHC_Z")']
        + ['"GRAPHC_W" in os.environ', 'os.environ["GRAPHC_V"] = "1"']
    )
    assert [n for _, n in _environ_reads(ast.parse(source))] == ["GRAPHC_X", "GRAPHC_Y", "GRAPHC_Z", "GRAPHC_W"]


def test_every_variable_named_anywhere_is_declared_and_used():
    declaring = {(ROOT / "graphc" / "config.py").resolve(), (ROOT / "docs" / "config.md").resolve()}
    files = [*_python_files(), *(ROOT / "docs").glob("*.md"), *ROOT.glob("*/README.md"), ROOT / "README.md"]
    named = {m for p in files if p.resolve() not in declaring for m in NAME.findall(p.read_text())}
    assert named - set(config.KNOBS) == set(), "declare these in graphc/config.py"
    assert set(config.KNOBS) - named == set(), "declared but never used"


def test_every_variable_is_documented_in_docs_config():
    page = (ROOT / "docs" / "config.md").read_text()
    assert config.table() in page, "docs/config.md's table differs from graphc.config.table(): paste it again"
    for knob in config.KNOBS.values():
        assert knob.doc and knob.type in ("int", "level", "bool", "float", "path")
        assert f"`{knob.name}`" in page
    assert "docs/config.md" in (ROOT / "README.md").read_text()


def test_config_imports_only_the_standard_library():
    tree = ast.parse((ROOT / "graphc" / "config.py").read_text())
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert modules - {"__future__"} <= set(sys.stdlib_module_names), modules


def test_values_defaults_and_parsing(monkeypatch):
    for name in ("GRAPHC_DEBUG", "GRAPHC_CACHE", "GRAPHC_DIST_TIMEOUT", "GRAPHC_NVCC"):
        monkeypatch.delenv(name, raising=False)
    assert config.get("GRAPHC_DEBUG") == 0 and config.get("GRAPHC_CACHE") is True
    assert config.get("GRAPHC_DIST_TIMEOUT") == 1800.0 and config.get("GRAPHC_NVCC") is None
    monkeypatch.setenv("GRAPHC_CACHE", "0")
    assert config.get("GRAPHC_CACHE") is False
    monkeypatch.setenv("GRAPHC_CACHE", "")
    assert config.get("GRAPHC_CACHE") is True  # empty means the default
    monkeypatch.setenv("GRAPHC_DEBUG", "3")
    assert config.get("GRAPHC_DEBUG") == 3
    monkeypatch.setenv("GRAPHC_DEBUG", "loud")
    assert config.get("GRAPHC_DEBUG") == 0  # never breaks a program
    monkeypatch.setenv("GRAPHC_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="GRAPHC_DIST_TIMEOUT='soon' is not a number"):
        config.get("GRAPHC_DIST_TIMEOUT")
    with pytest.raises(KeyError, match="unknown setting 'GRAPHC_NOPE'"):
        config.get("GRAPHC_NOPE")


def test_code_changing_variables_feed_the_cache_key(monkeypatch):
    assert [k.name for k in config.KNOBS.values() if k.changes_code] == ["GRAPHC_NVCC"]
    monkeypatch.delenv("GRAPHC_NVCC", raising=False)
    monkeypatch.delenv("GRAPHC_DEBUG", raising=False)
    base = cache.cache_key("test", "part")
    monkeypatch.setenv("GRAPHC_DEBUG", "2")  # only changes what is printed
    assert cache.cache_key("test", "part") == base
    monkeypatch.setenv("GRAPHC_NVCC", "/opt/cuda-13/bin/nvcc")
    assert cache.cache_key("test", "part") != base
