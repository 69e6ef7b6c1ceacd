"""Split a program's LLVM module into parts that compile separately.

LLVM optimises and emits one module on one core, and it is most of a cold
compile (the MLP Adam step: 0.2 s of 0.27 s). Kernels are `noinline`
functions the entry calls once each, so a module splits cleanly at kernel
boundaries: one part keeps `entry` and `entry_ctx`, every part gets whole
kernels (a kernel with the internal helpers it references: its GEMM
epilogue, the barrier), and the parts compile in parallel
(runtime/compile_pool.py), each to its own object. The engine loads them
together and resolves the entry's calls across objects.

A kernel called from another part loses `internal` linkage (it must be
visible to the linker); helpers stay internal and are copied into each
part that uses them. Declarations (intrinsics, the GEMM library, libm)
and metadata are copied into every part; unused ones cost nothing.
"""

from __future__ import annotations

import re

from llvmlite import ir

# The entry points the runtime looks up: always together, in one part.
ROOTS = ("entry", "entry_ctx")
_REF = re.compile(r'@"?([\w.$-]+)"?')

# LLVM's time for a function, roughly, in microseconds (fitted on the MLP
# step's kernels on a 2-core Xeon: 2-32 ms each): a part's fixed cost, its
# text, and its loops (a phi per loop header), which the vectorizer and
# unroller multiply.
PART_COST = 2000
LOOP_COST = 5000
# A part must be worth at least this much LLVM time: each part repeats
# LLVM's fixed costs (the MLP step, ~0.2 s: 2 parts cost 4% more LLVM time
# than one, 4 parts 14% more) and is one more object to send and load.
MIN_PART_COST = 100_000


def cost(text: str) -> int:
    """Estimated LLVM time (us) of a function's unoptimised IR text."""
    return len(text) + LOOP_COST * text.count(" phi ")


def split_module(module: ir.Module, parts: int) -> list[str]:
    """The module's text as up to `parts` modules (fewer when it has too
    few kernels, or too little work for that many parts: MIN_PART_COST),
    costliest first. Kernels are dealt, costliest first, to the part with
    the least estimated work so far; the entry's part starts with the
    entry's."""
    defined = {f.name: f for f in module.functions if f.blocks}
    if parts <= 1 or any(r not in defined for r in ROOTS) or _has_global_variables(module):
        return [str(module)]
    text = {name: str(f) for name, f in defined.items()}
    weight = {name: cost(t) for name, t in text.items()}
    parts = min(parts, sum(weight.values()) // max(MIN_PART_COST, 1))
    if parts <= 1:
        return [str(module)]
    refs = {name: {m for m in _REF.findall(t) if m in defined and m != name} for name, t in text.items()}
    # Kernels: what the roots call and no other function does. Everything
    # else a part needs (a kernel's epilogue, the barrier the entry and the
    # K-split GEMMs share) is an internal helper copied into each part that
    # references it; only kernels are referenced across parts.
    called_elsewhere = {r for name, rs in refs.items() if name not in ROOTS for r in rs}
    kernels = sorted({k for r in ROOTS for k in refs[r]} - set(ROOTS) - called_elsewhere)
    helpers = set(defined) - set(ROOTS) - set(kernels)
    if len(kernels) < 2 or any(defined[h].linkage != "internal" for h in helpers):
        return [str(module)]
    stop = set(ROOTS) | set(kernels)
    units = {k: _closure(k, refs, stop) for k in kernels}
    root_unit = set().union(*(_closure(r, refs, stop) for r in ROOTS))
    loads = [PART_COST + sum(weight[f] for f in root_unit)] + [0] * (parts - 1)
    members: list[set[str]] = [set(root_unit)] + [set() for _ in range(parts - 1)]
    for k in sorted(units, key=lambda k: (-sum(weight[f] for f in units[k]), k)):
        i = min(range(parts), key=lambda i: loads[i])
        loads[i] += sum(weight[f] for f in units[k] - members[i]) + (PART_COST if not members[i] else 0)
        members[i] |= units[k]
    # A kernel referenced from a part other than its own needs external linkage.
    exported = {r for names in members for f in names for r in refs[f] if r not in names}
    assert exported <= set(kernels) | set(ROOTS), "a helper referenced across parts"
    order = sorted((i for i in range(parts) if members[i]), key=lambda i: -loads[i])
    return [_module_text(module, defined, members[i], exported, text) for i in order]


def _closure(name: str, refs: dict[str, set[str]], stop: set[str]) -> set[str]:
    """`name` and the functions it references, directly or not, without
    going through the functions in `stop`."""
    seen, todo = {name}, [name]
    while todo:
        for r in refs[todo.pop()]:
            if r not in seen and r not in stop:
                seen.add(r)
                todo.append(r)
    return seen


def _has_global_variables(module: ir.Module) -> bool:
    return any(isinstance(g, ir.GlobalVariable) for g in module.globals.values())


def _module_text(module: ir.Module, defined: dict, names: set[str], exported: set[str], text: dict) -> str:
    """Module text defining `names` and declaring every other function;
    the functions in `exported` are defined with external linkage. `text`:
    each defined function's text, as printed."""
    lines = [
        f'; ModuleID = "{module.name}"',
        f'target triple = "{module.triple}"',
        f'target datalayout = "{module.data_layout}"',
        "",
    ]
    lines += [t.get_declaration() for t in module.get_identified_types().values()]
    for g in module.globals.values():
        if not isinstance(g, ir.Function):
            continue
        if g.name in names:
            t = text[g.name]
            # The prototype is the text's start: "define internal void @...".
            lines.append(t.replace("define internal ", "define ", 1) if g.name in exported else t)
        elif g.name in defined:
            lines.append(_declaration(g))
        else:
            lines.append(str(g))
    lines += module._get_metadata_lines()
    return "\n".join(lines)


def _declaration(fn: ir.Function) -> str:
    scratch = ir.Module()
    decl = ir.Function(scratch, fn.function_type, fn.name)
    return str(decl)
