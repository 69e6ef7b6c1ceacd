"""The import structure docs/internals.md promises, checked on the source.

Layers, lowest first: the IR (graphc.ir, with graphc.errors, graphc.debug and
graphc.config beside it), graphc.passes, graphc.codegen, graphc.runtime, and
the frontend (every other graphc module). A module may import its own layer
and the ones below, never above, at module level or inside a function. No
module-level import cycle exists anywhere, and the op modules build on the
tensor core, never on the public class assembled from them.
"""

from __future__ import annotations

import ast
import functools
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "graphc"
LAYERS = ("base", "graphc.passes", "graphc.codegen", "graphc.runtime", "frontend")
BASE = ("graphc.ir", "graphc.errors", "graphc.debug", "graphc.config")


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (graphc/passes etc. link
    to the top-level folders, so the walk follows links)."""
    found = {}
    for folder, _, files in os.walk(PACKAGE, followlinks=True):
        for f in files:
            if f.endswith(".py"):
                path = Path(folder) / f
                name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def layer(module: str) -> int:
    for i, prefix in enumerate(LAYERS[1:4], start=1):
        if module == prefix or module.startswith(prefix + "."):
            return i
    if any(module == b or module.startswith(b + ".") for b in BASE):
        return 0
    return len(LAYERS) - 1


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.If) and ast.unparse(stmt.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _import_nodes(tree: ast.Module, scope: str) -> list:
    """The import statements of a module in `scope`: "module" (run at import:
    top level, including inside top-level if/try but not `if TYPE_CHECKING:`),
    "typing" (inside `if TYPE_CHECKING:`, never run) or "anywhere"."""
    is_import = (ast.Import, ast.ImportFrom)
    if scope == "anywhere":
        return [n for n in ast.walk(tree) if isinstance(n, is_import)]
    nodes = []
    for stmt in tree.body:
        if _is_type_checking(stmt) != (scope == "typing"):
            continue
        if isinstance(stmt, (ast.If, ast.Try)):
            nodes += [n for n in ast.walk(stmt) if isinstance(n, is_import)]
        elif isinstance(stmt, is_import):
            nodes.append(stmt)
    return nodes


@functools.cache
def imports(module: str, scope: str = "module") -> frozenset[str]:
    """The package modules `module` imports in `scope` (see _import_nodes).
    `from a.b import c` counts as importing a.b.c when that is a module,
    else a.b. The package uses absolute imports only."""
    path = MODULES[module]
    found = set()
    for n in _import_nodes(ast.parse(path.read_text(), str(path)), scope):
        if isinstance(n, ast.Import):
            names = [a.name for a in n.names]
        else:
            assert not n.level, f"{module}: relative import (the package imports absolutely)"
            base = n.module or ""
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in n.names]
        found.update(r for r in map(_resolve, names) if r and r != module)
    return frozenset(found)


@functools.cache
def module_level_graph() -> nx.DiGraph:
    """Module -> the modules it imports as it loads."""
    return nx.DiGraph((m, t) for m in MODULES for t in imports(m))


def test_the_walk_sees_every_layer():
    for prefix in ("graphc.ir", "graphc.passes", "graphc.codegen", "graphc.runtime", "graphc.nn"):
        assert any(m.startswith(prefix + ".") for m in MODULES), prefix


def test_no_module_level_import_cycle():
    graph = module_level_graph()
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"modules importing each other at module level: {cycles}"


def test_no_import_goes_up_a_layer():
    # The package's __init__ is the lazy public namespace: it loads the
    # frontend on first attribute access, on purpose.
    upward = [
        f"{m} ({LAYERS[layer(m)]}) imports {t} ({LAYERS[layer(t)]})"
        for m in MODULES
        if m != "graphc"
        for t in imports(m, "anywhere")
        if layer(t) > layer(m)
    ]
    assert not upward, "\n".join(upward)


def test_the_package_init_imports_only_the_ir_at_load():
    assert {layer(t) for t in imports("graphc")} <= {0}


def test_op_modules_build_on_the_tensor_core_not_the_public_class():
    below = nx.descendants(module_level_graph(), "graphc._methods")
    assert "graphc._tensor_core" in below
    users = sorted(m for m in below if "graphc._tensor" in imports(m, "anywhere"))
    assert not users, f"below graphc/_tensor.py yet importing it: {users}"


def test_layers_import_only_under_the_graphc_name():
    # passes/, codegen/ and runtime/ are importable from a checkout as
    # top-level packages too; importing them that way would load a second
    # copy of every module.
    bad = sorted(
        f"{m} imports {a.name if isinstance(a, ast.alias) else a}"
        for m, path in MODULES.items()
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in (n.names if isinstance(n, ast.Import) else [n.module or ""])
        if (a.name if isinstance(a, ast.alias) else a).split(".")[0] in ("passes", "codegen", "runtime")
    )
    assert not bad, bad


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(m for m in sys.modules if m.startswith('graphc'))))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ("import graphc.ir", (0,)),
        ("import graphc.passes.pipeline", (0, 1)),
        ("import graphc.codegen.fusion", (0, 1, 2)),
    ],
)
def test_importing_a_layer_loads_nothing_above_it(statement, allowed):
    loaded = _loaded_after(statement)
    above = [m for m in loaded if m != "graphc" and layer(m) not in allowed]
    assert not above, f"{statement} loaded {above}"


def test_the_public_namespace_loads_on_first_use():
    loaded = _loaded_after("import graphc; graphc.float32")
    assert "graphc._tensor" not in loaded
    loaded = _loaded_after("import graphc; graphc.zeros(2)")
    assert {"graphc._tensor", "graphc._api"} <= set(loaded)


def test_no_public_name_is_also_a_submodule_name():
    # Importing such a submodule would rebind graphc.<name> to the module
    # (how graphc.compile once could become a module object).
    import types

    import graphc._api as api

    clashes = sorted(
        n
        for n, v in vars(api).items()
        if f"graphc.{n}" in MODULES and not isinstance(v, types.ModuleType) and not n.startswith("_")
    )
    assert not clashes, clashes


# Function-level imports of a module that (at module level, perhaps through
# others) imports the importer: a cycle postponed to run time. The one kept
# on purpose, with its reason.
DEFERRED = {
    ("graphc.ir.graph", "graphc.ir.printer"): "str(graph) prints through the printer, which builds on graphs",
}


def test_no_import_inside_a_function_closes_a_cycle():
    graph = module_level_graph()
    late = [
        (m, t)
        for m in MODULES
        for t in imports(m, "anywhere") - imports(m) - imports(m, "typing")
        if t in graph and m in graph and nx.has_path(graph, t, m) and (m, t) not in DEFERRED
    ]
    assert not late, f"imports inside functions that close an import cycle: {sorted(late)}"
