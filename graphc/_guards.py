"""Guards: the Python state a traced program baked in, checked per call.

A trace runs the Python function once. Python values it reads from its
globals and closure cells become constants of the graph (`x * scale` with
`scale = 2.0` multiplies by the literal 2.0; a flag picks one branch), and
the objects it reads (modules, functions, tensors) are fixed by identity: a
global tensor is captured as graph input, so rebinding the name to another
tensor must not keep feeding the old one. A tensor whose value the trace
read as Python data (`.item()`, `.tolist()`, `.numpy()`) became a constant
too, and is guarded by its in-place version counter as well.

`record(fn)` lists what may have been read: the globals the function's
code (and its nested functions and comprehensions) loads by name, its
closure cells, and recursively the same for the user-defined Python
functions those refer to; for a Module, the methods of every submodule
class defined outside graphc (`forward` and its helpers). Values of plain
immutable types (numbers, bools, strings, bytes, None and tuples or
frozensets of them) are compared by type and value; anything else by
identity. `Guards.check()` costs a dict lookup and an `is` per name while
nothing changed (about 40 ns each), and returns why the program is stale
otherwise, e.g. "global 'scale' changed from 2.0 to 3.0".

Not guarded: attributes and items of guarded objects (`cfg.scale`,
`table[0]` when `cfg` or `table` is mutated in place), and the contents of
mutable containers and numpy arrays. Keep such values in tensors, pass
them as arguments, or call `reset()` on the compiled function.
"""

from __future__ import annotations

import dis
import functools
import types

_MISSING = object()
_VALUE_TYPES = (int, float, complex, bool, str, bytes, type(None))
_LOAD_GLOBAL = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
# Python functions followed to find what they read, at most this deep.
_MAX_DEPTH = 8


class Guards:
    """The globals, closure cells and tensor versions a trace depended on."""

    __slots__ = ("globals", "cells", "versions")

    def __init__(self, globals_: list, cells: list, versions: list):
        self.globals = globals_  # (globals dict, name, value)
        self.cells = cells  # (cell, name, value)
        self.versions = versions  # (tensor, _version when read)

    def __len__(self) -> int:
        return len(self.globals) + len(self.cells) + len(self.versions)

    def check(self) -> str | None:
        """None while everything guarded is unchanged, else the reason.
        (Plain loops: faster than map/itemgetter forms for the few names a
        function reads, by measurement.)"""
        for scope, name, old in self.globals:
            new = scope.get(name, _MISSING)
            if new is not old and not _same_value(new, old):
                return _changed("global", name, old, new)
        for cell, name, old in self.cells:
            try:
                new = cell.cell_contents
            except ValueError:  # the variable was deleted
                new = _MISSING
            if new is not old and not _same_value(new, old):
                return _changed("closure variable", name, old, new)
        for tensor, version in self.versions:
            if tensor._version != version:
                return (
                    f"a tensor whose value the trace read as Python data (.item(), .tolist(), ...) was "
                    f"modified in place (version {version} -> {tensor._version})"
                )
        return None


def record(fn) -> Guards:
    """The guards of a trace of `fn` (see the module doc), holding the
    values as they are now: call it just before the trace. The caller adds
    the tensors the trace read as Python data to `versions`."""
    globals_: dict = {}
    cells: dict = {}
    seen: set = set()
    for func in _functions_of(fn):
        _visit(func, globals_, cells, seen, 0)
    return Guards(list(globals_.values()), list(cells.values()), [])


def _functions_of(obj) -> list:
    """The user-defined Python functions a call of `obj` runs first: a
    function, a method's function, a partial's, a compiled function's, or
    for a Module the methods (`forward` and its helpers) of its and its
    submodules' classes."""
    if isinstance(obj, types.FunctionType):
        found = [obj]
    elif isinstance(obj, types.MethodType):
        found = [obj.__func__]
    elif isinstance(obj, functools.partial):
        return _functions_of(obj.func)
    elif isinstance(obj, type) or isinstance(obj, types.ModuleType):
        return []
    else:
        try:  # any object: its attributes may be computed, and may fail
            if hasattr(obj, "named_parameters") and hasattr(obj, "modules"):
                classes = {cls for m in obj.modules() for cls in type(m).__mro__}
                found = [f for cls in classes for f in vars(cls).values() if isinstance(f, types.FunctionType)]
            else:
                wrapped = getattr(obj, "__wrapped__", None)  # graphc.compile's result
                return _functions_of(wrapped) if isinstance(wrapped, types.FunctionType) else []
        except Exception:
            return []
    return [f for f in dict.fromkeys(found) if isinstance(f, types.FunctionType) and not _is_graphc(f)]


def _is_graphc(func) -> bool:
    module = getattr(func, "__module__", None) or ""
    return module == "graphc" or module.startswith("graphc.")


def _visit(func, globals_: dict, cells: dict, seen: set, depth: int) -> None:
    code = func.__code__
    if code in seen or depth > _MAX_DEPTH:
        return
    seen.add(code)
    scope = func.__globals__
    found = []
    for name in _global_names(code):
        value = scope.get(name, _MISSING)
        if value is not _MISSING:  # else a builtin, or never reached by the trace
            globals_.setdefault((id(scope), name), (scope, name, value))
            found.append(value)
    for name, cell in zip(code.co_freevars, func.__closure__ or ()):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        cells.setdefault(id(cell), (cell, name, value))
        found.append(value)
    for value in found:
        for inner in _functions_of(value):
            _visit(inner, globals_, cells, seen, depth + 1)


@functools.lru_cache(maxsize=1024)
def _global_names(code) -> tuple:
    """Names `code` (and the code nested in it) loads as globals."""
    names = [ins.argval for ins in dis.get_instructions(code) if ins.opname in _LOAD_GLOBAL]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _global_names(const)
    return tuple(dict.fromkeys(names))


def _same_value(new, old) -> bool:
    """Equal plain immutable values of the same type (True == 1, but a
    trace of `x * True` differs from one of `x * 1`)."""
    if type(new) is not type(old):
        return False
    if isinstance(old, (tuple, frozenset)):
        if len(new) != len(old):
            return False
        if isinstance(old, frozenset):
            return new == old and all(isinstance(v, _VALUE_TYPES) for v in old)
        return all(a is b or _same_value(a, b) for a, b in zip(new, old))
    return isinstance(old, _VALUE_TYPES) and new == old


def _describe(value) -> str:
    if value is _MISSING:
        return "<deleted>"
    if isinstance(value, _VALUE_TYPES + (tuple, frozenset)):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, types.ModuleType):
        return f"<module {value.__name__}>"
    name = getattr(value, "__qualname__", None)
    kind = type(value).__name__
    return f"<{kind} {name}>" if isinstance(name, str) else f"<{kind} object at {id(value):#x}>"


def _changed(kind: str, name: str, old, new) -> str:
    if new is _MISSING:
        return f"{kind} {name!r} was deleted"
    return f"{kind} {name!r} changed from {_describe(old)} to {_describe(new)}"
