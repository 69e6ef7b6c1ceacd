"""Memory planning: where every buffer of a Program lives.

What it does:

1. Liveness: a temp buffer is live from the kernel that first writes it to
   the last kernel that reads it.
2. Arena placement: temps share one arena (64-byte aligned slots), placed
   first-fit by offset among the slots live at the same time, so buffers
   whose lifetimes do not overlap reuse memory.
3. In place: an elementwise kernel whose output has the byte size of an
   input temp that dies in this kernel, and which reads that input only at
   the element it writes, writes over the input (same slot). (A dot or
   reduce kernel counts as reading a buffer only at the element it writes
   when only its epilogue stores read it.)
4. Aliased outputs (`Program.aliases`: output index -> input index) are
   written straight into the input's array when that is safe: the producing
   kernel reads the input only at the element it writes and no later kernel
   reads it. Otherwise the output is a fresh array and the runtime copies it
   back after the run.

Graph inputs and constants live in their own arrays; other outputs are
fresh arrays per call. `plan.peak_bytes` is the arena size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphc.codegen.kernel import Kernel, KOp, Program, loads_of, walk

ALIGN = 64


@dataclass(frozen=True)
class Slot:
    """Where one buffer lives. kind: arena (offset) | input (index) |
    output (index of the first graph output it is) | const."""

    kind: str
    index: int = 0
    offset: int = 0
    nbytes: int = 0


@dataclass(frozen=True)
class MemoryPlan:
    """Where every buffer of one Program lives; built once by `plan_memory`
    and never changed after (the runtimes and code generators only read it).
    Buffer names are the Program's; kernel positions index `Program.kernels`."""

    slots: dict[str, Slot]
    """Every buffer the kernels touch, and every graph input, output and
    constant -> its Slot."""
    peak_bytes: int
    """The arena's size: the end of the highest arena slot (0 with no temps)."""
    in_place: tuple[tuple[str, str], ...] = ()
    """(output, input) pairs where an elementwise kernel writes its output
    over a temp input that dies in that kernel (the two share one slot)."""
    direct_aliases: dict[int, int] = field(default_factory=dict)
    """Aliased outputs written straight into their input's array
    (output index -> input index)."""
    copy_aliases: dict[int, int] = field(default_factory=dict)
    """Aliased outputs the runtime copies back into the input after the run
    (output index -> input index)."""
    live: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Buffer -> (first, last) kernel position that writes or reads it."""


def _round(n: int) -> int:
    return max(ALIGN, (n + ALIGN - 1) // ALIGN * ALIGN)


def _liveness(prog: Program) -> dict[str, tuple[int, int]]:
    live: dict[str, list[int]] = {}
    for i, k in enumerate(prog.kernels):
        for name in k.outputs + k.inputs:
            span = live.setdefault(name, [i, i])
            span[0], span[1] = min(span[0], i), max(span[1], i)
    return {n: (a, b) for n, (a, b) in live.items()}


def reads_only_at(k: Kernel, buf: str, index) -> bool:
    """Whether kernel k reads `buf` only at flat `index` (the element the
    kernel's store writes), so overwriting it in place is safe. In a dot or
    reduce kernel that means only in its epilogue `stores` (they run once
    per output element, after the element's dot or reduction): an operand,
    the reduced value or a row epilogue reads other elements."""
    if k.kind == "dot":
        assert k.a is not None and k.b is not None
        if buf in (k.a.buffer, k.b.buffer):
            return False
    elif k.kind == "reduce":
        assert k.value is not None
        if buf in loads_of(k.value) or any(buf in loads_of(s.value) or buf in loads_of(s.index) for s in k.row_stores):
            return False
    elif k.kind != "elementwise":
        return False
    for s in k.stores:
        for e in walk(s.value):
            if e.op is KOp.LOAD and e.arg == buf and e.args[0] != index:
                return False
        if buf in loads_of(s.index):
            return False
    return True


def _place(size: int, span: tuple[int, int], placed: list[tuple[int, int, int, int]]) -> int:
    """First offset where `size` bytes fit beside every overlapping slot."""
    busy = sorted((off, off + sz) for off, sz, a, b in placed if not (b < span[0] or a > span[1]))
    offset = 0
    for lo, hi in busy:
        if offset + size <= lo:
            break
        offset = max(offset, hi)
    return offset


def plan_memory(prog: Program) -> MemoryPlan:
    """Assign every buffer a slot (see the module docstring); sets prog.plan."""
    live = _liveness(prog)
    slots: dict[str, Slot] = {}
    for i, name in enumerate(prog.inputs):
        slots.setdefault(name, Slot("input", i))
    for name in prog.constants:
        slots[name] = Slot("const")
    direct, copies = _plan_aliases(prog, live)
    for out_i, name in enumerate(prog.outputs):
        if name in slots:
            continue
        if out_i in direct:
            slots[name] = Slot("input", direct[out_i])
        else:
            slots[name] = Slot("output", out_i)
    in_place: list[tuple[str, str]] = []
    peak = _place_temps(prog, live, slots, in_place)
    plan = MemoryPlan(slots, peak, tuple(in_place), direct_aliases=direct, copy_aliases=copies, live=live)
    prog.plan = plan
    return plan


def _plan_aliases(prog: Program, live) -> tuple[dict[int, int], dict[int, int]]:
    direct, copies = {}, {}
    claimed: set[str] = set()
    writer = {o: i for i, k in enumerate(prog.kernels) for o in k.outputs}
    for out_i, in_i in sorted(prog.aliases.items()):
        name, target = prog.outputs[out_i], prog.inputs[in_i]
        if name == target:
            continue  # the output is that input, unchanged
        ok = name in writer and name not in claimed and prog.buffers[name].kind == "output"
        ok = ok and prog.outputs.count(name) == 1 and target not in prog.outputs
        if ok:
            k = prog.kernels[writer[name]]
            store = next((s for s in k.stores if s.buffer == name), None)
            later_reads = live.get(target, (-1, -1))[1] > writer[name]
            ok = (
                store is not None
                and not later_reads
                and (target not in k.inputs or reads_only_at(k, target, store.index))
            )
        if ok:
            direct[out_i] = in_i
            claimed.add(name)
        else:
            copies[out_i] = in_i
    return direct, copies


def _place_temps(prog: Program, live, slots: dict[str, Slot], in_place: list[tuple[str, str]]) -> int:
    """Give every temp an arena slot (added to `slots`, in-place reuses to
    `in_place`); returns the arena's size."""
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    peak = 0
    for i, k in enumerate(prog.kernels):
        for name in k.outputs:
            buf = prog.buffers[name]
            if name in slots or buf.kind != "temp":
                continue
            size = _round(buf.nbytes)
            span = live[name]
            offset = _reuse_in_place(prog, k, i, name, size, live, slots, in_place)
            if offset is None:
                offset = _place(size, span, placed)
            placed.append((offset, size, span[0], span[1]))
            slots[name] = Slot("arena", offset=offset, nbytes=size)
            peak = max(peak, offset + size)
    return peak


def _reuse_in_place(prog, k, i, name, size, live, slots, in_place):
    """The arena offset of an input of k that dies here and k may overwrite."""
    store = next((s for s in k.stores if s.buffer == name), None)
    if store is None or len(k.stores) != 1:
        return None
    for src in k.inputs:
        slot = slots.get(src)
        if slot is None or slot.kind != "arena" or slot.nbytes != size or live[src][1] != i:
            continue
        if reads_only_at(k, src, store.index) and prog.buffers[src].dtype is prog.buffers[name].dtype:
            in_place.append((name, src))
            return slot.offset
    return None


def _placement(slot: Slot | None) -> str:
    if slot is None:
        return "-"
    if slot.kind == "arena":
        return f"arena+{slot.offset}"
    if slot.kind == "const":
        return "const"
    return f"{slot.kind}[{slot.index}]"


def format_plan(prog: Program) -> str:
    """The plan as a table, one buffer per line: its type, byte size,
    lifetime (first and last kernel) and placement (arena offset, input or
    output index, constant); then in-place reuses, aliases and the peak
    arena bytes. What GRAPHC_DEBUG=3 and `graphc ir --stage plan` print."""
    plan = prog.plan
    if plan is None:
        raise ValueError(f"program @{prog.name} has no memory plan (run codegen.memory.plan_memory first)")
    lines = [f"{'buffer':<10} {'type':<16} {'bytes':>10} {'live':<10} placement"]
    for name, buf in prog.buffers.items():
        span = plan.live.get(name)
        typ = f"{buf.dtype.short}{list(buf.shape)}"
        lines.append(
            f"{name:<10} {typ:<16} {buf.nbytes:>10} {str(span) if span else '-':<10} {_placement(plan.slots.get(name))}"
        )
    for out, src in plan.in_place:
        lines.append(f"in place: {out} overwrites {src}")
    for o, i in plan.direct_aliases.items():
        lines.append(f"alias: output {o} written into input {i}")
    for o, i in plan.copy_aliases.items():
        lines.append(f"alias: output {o} copied into input {i} after the run")
    lines.append(f"peak arena bytes: {plan.peak_bytes}")
    return "\n".join(lines)
