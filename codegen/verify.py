"""The kernel-form verifier: checks a planned Program before any backend
renders it.

`verify_program(prog)` checks that
1. every buffer a kernel loads or stores, and every graph input, output and
   constant, is declared in `prog.buffers`, and a load's dtype is its
   buffer's;
2. each kernel has the fields its kind needs (a dot has both operands, a
   reduce a known reducer and a value, a scatter its target buffer and
   index, an attention its views) and its expressions name only its own
   loop variables (and `acc` only where the kind has an accumulator);
3. every index whose range is statically known (`kernel.bounds` under the
   kernel's loop extents) and every dot/attention view stays inside its
   buffer (guarded reads clamp their own index and are skipped, being
   unknown; a kernel with an empty loop runs nothing and is skipped);
4. the memory plan (codegen/memory.py) gives every buffer a slot of the
   right kind and size, and no two arena buffers live at the same time
   share bytes (except the in-place pairs the plan lists).

On the first failure it raises `KernelVerifyError`, whose message names the
program, the kernel and the buffer. codegen/lower.py runs it under its
`verify` flag (GRAPHC_VERIFY=1); tests run it on real models' programs.
"""

from __future__ import annotations

from graphc.codegen.kernel import Expr, Kernel, Operand, Program, bounds, loop_ranges, walk
from graphc.codegen.memory import ALIGN

KINDS = ("elementwise", "reduce", "dot", "scatter", "attention")
REDUCERS = ("sum", "max", "prod", "argmax")


class KernelVerifyError(ValueError):
    """A Program breaks an invariant of the kernel form or its memory plan."""


def verify_program(prog: Program) -> Program:
    """Check `prog` (see the module docstring); returns it unchanged."""
    _check_io(prog)
    for k in prog.kernels:
        where = f"program @{prog.name}, kernel {k.name}"
        _check_fields(k, where)
        _check_buffers(prog, k, where)
        _check_vars(k, where)
        _check_bounds(prog, k, where)
    _check_plan(prog)
    return prog


def _op(e: Expr) -> str:
    """The name of e's op (its enum value, when ops are enum members)."""
    return getattr(e.op, "value", e.op)


def _fail(where: str, what: str) -> None:
    raise KernelVerifyError(f"{where}: {what}")


def _check_io(prog: Program) -> None:
    where = f"program @{prog.name}"
    for role, names in (("input", prog.inputs), ("output", prog.outputs), ("constant", list(prog.constants))):
        for name in names:
            if name not in prog.buffers:
                _fail(where, f"{role} buffer {name} is not declared")
    for name, buf in prog.buffers.items():
        if buf.name != name:
            _fail(where, f"buffer {name} is declared under the name {buf.name}")


def _check_fields(k: Kernel, where: str) -> None:
    if k.kind not in KINDS:
        _fail(where, f"unknown kind {k.kind!r} (kinds: {', '.join(KINDS)})")
    if not k.outputs:
        _fail(where, "writes no buffer")
    if k.kind == "reduce":
        if k.reducer not in REDUCERS:
            _fail(where, f"reduce kernel has reducer {k.reducer!r} (reducers: {', '.join(REDUCERS)})")
        if k.value is None:
            _fail(where, "reduce kernel has no value to reduce")
        if k.reducer == "argmax" and len(k.red_shape) != 1:
            _fail(where, f"argmax reduces exactly one dim, not {len(k.red_shape)}")
    elif k.row_stores or k.red_shape or k.reducer:
        _fail(where, f"{k.kind} kernel has reduce fields (reducer, reduced dims or row stores)")
    if k.kind == "dot":
        if k.a is None or k.b is None:
            _fail(where, "dot kernel lacks an operand (a and b are both required)")
        if len(k.shape) < 2:
            _fail(where, f"dot kernel loops {list(k.shape)} lack the row and column dims")
        nb = len(k.shape) - 2
        for side, op in (("a", k.a), ("b", k.b)):
            assert op is not None
            if len(op.batch_strides) != nb:
                _fail(
                    where, f"operand {side} ({op.buffer}) has {len(op.batch_strides)} batch strides for {nb} batch dims"
                )
    elif k.a is not None or k.b is not None:
        _fail(where, f"{k.kind} kernel has dot operands")
    if k.kind == "scatter" and (not k.out or k.target is None or k.value is None):
        _fail(where, "scatter kernel needs its target buffer (out), index (target) and value")
    if k.kind == "attention":
        if k.attention is None:
            _fail(where, "attention kernel has no attention views")
        if len(k.shape) < 2:
            _fail(where, f"attention kernel loops {list(k.shape)} lack the row and column dims")
    elif k.attention is not None:
        _fail(where, f"{k.kind} kernel has attention views")
    if k.kind in ("elementwise", "dot", "attention") and not k.stores:
        _fail(where, f"{k.kind} kernel has no store")
    if any(d < 0 for d in k.shape + k.red_shape) or k.k < 0:
        _fail(where, f"negative loop extent in {list(k.shape)} / {list(k.red_shape)} / k={k.k}")


def _exprs_of(k: Kernel) -> list[tuple[str, Expr]]:
    """(what, expression) for every expression of k, for messages."""
    out: list[tuple[str, Expr]] = []
    for s in k.stores + k.row_stores:
        out += [(f"the store to {s.buffer}", s.index), (f"the store to {s.buffer}", s.value)]
    if k.value is not None:
        out.append(("the reduced value" if k.kind == "reduce" else "the scattered value", k.value))
    if k.target is not None:
        out.append((f"the scatter index into {k.out}", k.target))
    return out


def _check_buffers(prog: Program, k: Kernel, where: str) -> None:
    for name in k.inputs:
        if name not in prog.buffers:
            _fail(where, f"reads buffer {name}, which is not declared")
    for name in k.outputs:
        if name not in prog.buffers:
            _fail(where, f"writes buffer {name}, which is not declared")
        if prog.buffers[name].kind in ("input", "const") and name not in _aliased_inputs(prog):
            _fail(where, f"writes buffer {name}, a graph {prog.buffers[name].kind}")
    for what, e in _exprs_of(k):
        for x in walk(e):
            if _op(x) == "load" and x.dtype is not prog.buffers[x.arg].dtype:
                buf = prog.buffers[x.arg]
                _fail(where, f"{what} loads {x.dtype.short} from buffer {x.arg} of {buf.dtype.short}")
    for s in k.stores + k.row_stores:
        if s.value.dtype is not prog.buffers[s.buffer].dtype:
            buf = prog.buffers[s.buffer]
            _fail(where, f"stores {s.value.dtype.short} into buffer {s.buffer} of {buf.dtype.short}")


def _aliased_inputs(prog: Program) -> set[str]:
    return {prog.inputs[i] for i in prog.aliases.values() if 0 <= i < len(prog.inputs)}


def _check_vars(k: Kernel, where: str) -> None:
    outer = {name for name, _ in k.loop_vars()}
    inner = outer | {name for name, _ in k.red_vars()}
    has_acc = k.kind in ("reduce", "dot", "attention")
    for what, e in _exprs_of(k):
        allowed = inner if (k.kind == "reduce" and what == "the reduced value") else outer
        if k.kind == "reduce" and any(e is s.index or e is s.value for s in k.row_stores):
            allowed = inner
        for x in walk(e):
            if _op(x) == "var" and x.arg not in allowed:
                _fail(where, f"{what} reads loop variable {x.arg}, not one of {sorted(allowed)}")
            if _op(x) == "acc" and (not has_acc or what == "the reduced value"):
                _fail(where, f"{what} reads acc, which a {k.kind} kernel does not have there")


def _check_bounds(prog: Program, k: Kernel, where: str) -> None:
    extents = k.loop_vars() + k.red_vars()
    if any(n == 0 for _, n in extents) or (k.kind == "dot" and k.k == 0):
        return  # the kernel runs no iteration
    with loop_ranges(dict(extents)):
        for what, e in _exprs_of(k):
            for x in walk(e):
                if _op(x) == "load":
                    _check_index(prog, x.arg, x.args[0], f"{what}, loading", where)
                elif _op(x) == "check":
                    _check_index(prog, None, x, what, where)
        for s in k.stores + k.row_stores:
            _check_index(prog, s.buffer, s.index, "a store", where)
        if k.kind == "scatter" and k.target is not None:
            _check_index(prog, k.out, k.target, "the scatter", where)
    batch = [n for _, n in k.loop_vars()[:-2]] if k.kind in ("dot", "attention") else []
    if k.kind == "dot":
        m, n = k.shape[-2], k.shape[-1]
        _check_view(prog, k.a, batch, m, k.k, "operand a", where)
        _check_view(prog, k.b, batch, k.k, n, "operand b", where)
    if k.kind == "attention" and k.attention is not None:
        at = k.attention
        _check_view(prog, at.q, batch, at.L, at.E, "the queries", where)
        _check_view(prog, at.k, batch, at.S, at.E, "the keys", where)
        _check_view(prog, at.v, batch, at.S, at.Ev, "the values", where)
        if at.mask is not None:
            _check_view(prog, at.mask, batch, at.L, at.S, "the mask", where)


def _check_index(prog: Program, name: str | None, index: Expr, what: str, where: str) -> None:
    """A statically known index range must lie inside buffer `name` (for a
    `check`, its size must be the buffer's it guards: checked at the load)."""
    if name is None:
        if index.arg < 0:
            _fail(where, f"{what}: check() with negative size {index.arg}")
        return
    rng = bounds(index)
    if rng is None:
        return
    size = prog.buffers[name].numel
    if rng[0] < 0 or rng[1] >= size:
        _fail(where, f"{what} buffer {name}: index range [{rng[0]}, {rng[1]}] is outside its {size} elements")


def _check_view(prog: Program, op: Operand | None, batch: list[int], rows: int, cols: int, what: str, where: str):
    """Every element an affine view reads lies inside its buffer."""
    if op is None or rows == 0 or cols == 0 or 0 in batch:
        return
    lo = hi = op.offset
    for extent, stride in [*zip(batch, op.batch_strides), (rows, op.row_stride), (cols, op.col_stride)]:
        span = (extent - 1) * stride
        lo, hi = lo + min(span, 0), hi + max(span, 0)
    size = prog.buffers[op.buffer].numel
    if lo < 0 or hi >= size:
        _fail(where, f"{what} reads buffer {op.buffer} at [{lo}, {hi}], outside its {size} elements")


def _check_plan(prog: Program) -> None:
    where = f"program @{prog.name}, memory plan"
    plan = prog.plan
    if plan is None:
        _fail(f"program @{prog.name}", "has no memory plan")
        return
    used = {n for k in prog.kernels for n in k.inputs + k.outputs}
    for name in [*prog.inputs, *prog.outputs, *prog.constants, *sorted(used)]:
        slot = plan.slots.get(name)
        if slot is None:
            _fail(where, f"buffer {name} has no slot")
            return
        _check_slot(prog, name, where)
    arena = sorted((s.offset, n) for n, s in plan.slots.items() if s.kind == "arena")
    shared = {frozenset(pair) for pair in plan.in_place}
    for i, (offset, name) in enumerate(arena):
        end = offset + plan.slots[name].nbytes
        for other_offset, other in arena[i + 1 :]:
            if other_offset >= end:
                break  # sorted by offset: no later slot overlaps this one
            if _live_together(plan.live, name, other) and frozenset((name, other)) not in shared:
                _fail(where, f"buffers {name} and {other} are live at the same time and share arena bytes")


def _check_slot(prog: Program, name: str, where: str) -> None:
    plan = prog.plan
    assert plan is not None
    slot, buf = plan.slots[name], prog.buffers[name]
    if slot.kind == "arena":
        if buf.kind != "temp":
            _fail(where, f"{buf.kind} buffer {name} is placed in the arena")
        if slot.nbytes < buf.nbytes or slot.offset % ALIGN or slot.offset + slot.nbytes > plan.peak_bytes:
            _fail(
                where,
                f"buffer {name} ({buf.nbytes} bytes) has arena slot [{slot.offset}, {slot.offset + slot.nbytes}) "
                f"(peak {plan.peak_bytes}, alignment {ALIGN})",
            )
    elif slot.kind == "input":
        if not 0 <= slot.index < len(prog.inputs):
            _fail(where, f"buffer {name} is placed in input {slot.index} of {len(prog.inputs)}")
    elif slot.kind == "output":
        if not 0 <= slot.index < len(prog.outputs) or prog.outputs[slot.index] != name:
            _fail(where, f"buffer {name} is placed in output {slot.index}, which is not it")
    elif slot.kind == "const":
        if name not in prog.constants:
            _fail(where, f"buffer {name} is placed as a constant but has no array")
    else:
        _fail(where, f"buffer {name} has slot kind {slot.kind!r}")


def _live_together(live: dict[str, tuple[int, int]], a: str, b: str) -> bool:
    if a not in live or b not in live:
        return True  # no lifetime: assume the worst
    (a0, a1), (b0, b1) = live[a], live[b]
    return not (a1 < b0 or b1 < a0)


__all__ = ["KernelVerifyError", "verify_program"]
