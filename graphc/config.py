"""Every GRAPHC_* environment variable, declared once.

Each knob has a type, a default, a one-line description and whether it
changes generated code. Modules read them through `get(name)`, never
through `os.environ`, so this table is the complete list (docs/config.md
prints it; a test checks both). The knobs that change generated code make
up `code_settings()`, which runtime/cache.py puts into every cache key.

Values are read on every `get`, so a change to the environment takes effect
at the next read. An unset or empty variable means the default. Booleans:
"0" is false, any other value true. A number that does not parse raises
ValueError naming the variable (GRAPHC_DEBUG excepted: it reads as 0, so a
stray value never breaks a program).

This module is part of the base layer: it imports only the standard
library, so every layer (the IR, passes, codegen, runtime, the frontend)
may read its settings here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Knob:
    """One environment variable: how to read it and what it does."""

    name: str
    type: str  # int | bool | float | path, as the docs show it
    default: Any
    doc: str
    changes_code: bool = False
    shown_default: str = ""  # the default as docs show it, when not `repr(default)`

    def parse(self, text: str) -> Any:
        """The value of this knob set to `text` (not empty)."""
        return _PARSERS[self.type](self, text)


def _int(knob: Knob, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{knob.name}={text!r} is not an integer") from None


def _level(knob: Knob, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return knob.default


def _float(knob: Knob, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{knob.name}={text!r} is not a number") from None


_PARSERS: dict[str, Callable[[Knob, str], Any]] = {
    "int": _int,
    "level": _level,
    "bool": lambda knob, text: text != "0",
    "float": _float,
    "path": lambda knob, text: text,
}

KNOBS: dict[str, Knob] = {
    k.name: k
    for k in (
        Knob(
            "GRAPHC_DEBUG",
            "level",
            0,
            "debug output to stderr, levels 0..5 (graphc/debug.py): recompiles and pass timeline, IR dumps "
            "and per-call profiles, memory plans, generated code, assembly",
        ),
        Knob(
            "GRAPHC_VERIFY",
            "bool",
            False,
            "run the IR verifier after every pass and the kernel-form verifier on every lowered program",
        ),
        Knob("GRAPHC_CACHE", "bool", True, "the disk cache of compiled code; 0 turns it off"),
        Knob(
            "GRAPHC_CACHE_DIR",
            "path",
            None,
            "folder of the disk cache of compiled code",
            shown_default="~/.cache/graphc",
        ),
        Knob(
            "GRAPHC_COMPILE_WORKERS",
            "int",
            None,
            "processes that run LLVM for cold CPU compiles beside this one (runtime/compile_pool.py); 0: none",
            shown_default="cores - 1, at most 8",
        ),
        Knob(
            "GRAPHC_NVCC",
            "path",
            None,
            "the nvcc that compiles CUDA C (its cubins differ by compiler)",
            changes_code=True,
            shown_default="nvcc on PATH, then $CUDA_HOME/bin, $CUDA_PATH/bin, /usr/local/cuda/bin",
        ),
        Knob(
            "GRAPHC_CUDA_SYNC",
            "bool",
            False,
            "synchronize after every CUDA kernel launch, so a failing launch names its kernel",
        ),
        Knob(
            "GRAPHC_HOME",
            "path",
            None,
            "graphc.hub's folder is $GRAPHC_HOME/hub",
            shown_default="$XDG_CACHE_HOME/graphc (~/.cache/graphc)",
        ),
        Knob(
            "GRAPHC_MPIEXEC",
            "path",
            None,
            "the mpiexec `graphc run` launches ranks with",
            shown_default="the one beside Python, then PATH",
        ),
        Knob(
            "GRAPHC_DIST_TIMEOUT",
            "float",
            1800.0,
            "seconds a collective or rendezvous of graphc.distributed waits before failing",
        ),
        Knob(
            "GRAPHC_DATA",
            "path",
            None,
            "folder the examples read MNIST from",
            shown_default="../shared/data/mnist beside the checkout, else ./data",
        ),
    )
}


def knob(name: str) -> Knob:
    """The declaration of `name`; KeyError names the known knobs."""
    try:
        return KNOBS[name]
    except KeyError:
        raise KeyError(f"unknown setting {name!r} (known: {', '.join(KNOBS)})") from None


def get(name: str) -> Any:
    """The current value of knob `name` (its default when unset or empty)."""
    k = knob(name)
    text = os.environ.get(name, "")
    return k.default if text == "" else k.parse(text)


def code_settings() -> str:
    """`NAME=value` of every knob that changes generated code, one per line:
    part of every compile-cache key (runtime/cache.py)."""
    return "\n".join(f"{k.name}={get(k.name)!r}" for k in KNOBS.values() if k.changes_code)


def table() -> str:
    """The knobs as a Markdown table (docs/config.md holds a copy)."""
    rows = [
        "| variable | type | default | changes code | what it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for k in KNOBS.values():
        default = k.shown_default or repr(k.default)
        kind = "int" if k.type == "level" else k.type
        rows.append(f"| `{k.name}` | {kind} | {default} | {'yes' if k.changes_code else 'no'} | {k.doc} |")
    return "\n".join(rows)


__all__ = ["KNOBS", "Knob", "code_settings", "get", "knob", "table"]
