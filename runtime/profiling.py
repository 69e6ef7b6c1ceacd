"""The profiler's engine: what is being recorded, the generated code's clock,
the machine's peak, and the per-name averages table.

`ACTIVE` is the recording `Session` or None. Compiled CPU calls
(runtime/executable.py) and eager ops (graphc/_tensor.py) check it once each and do
nothing more when it is None. The user API (`graphc.profiler`) starts and
stops sessions; `GRAPHC_DEBUG=2` uses a session of its own per compiled
call to print the table.

Times are `time.perf_counter` seconds. Events are flat records; nesting
(a kernel inside its program call, ops inside a `record_function` range)
is recovered from the intervals when averaging, so "self" time is an
event's time less that of the events directly inside it.
"""

from __future__ import annotations

import ctypes
import threading
import time
from dataclasses import dataclass, field

ACTIVE: Session | None = None


@dataclass
class Event:
    """One timed thing: a kernel, a compiled call, an eager op, a range."""

    name: str
    cat: str  # kernel | cuda kernel | program | eager | range | compile
    start: float  # perf_counter seconds
    end: float
    flops: int = 0
    bytes: int = 0
    thread: int = 0
    shapes: tuple = ()

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Session:
    """The events recorded while a profiler is active."""

    record_shapes: bool = False
    events: list[Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)


def start(session: Session) -> Session | None:
    """Make `session` the recording one; returns the one it replaces."""
    global ACTIVE
    previous, ACTIVE = ACTIVE, session
    return previous


def stop(previous: Session | None) -> None:
    global ACTIVE
    ACTIVE = previous


def record_eager(session: Session, op, srcs: list, value, start: float) -> None:
    """An eager op that ran from `start` until now (graphc/_tensor.py)."""
    end = time.perf_counter()
    flops, nbytes = eager_cost(op, srcs, value)
    shapes = tuple(tuple(getattr(s, "shape", ())) for s in srcs) if session.record_shapes else ()
    session.add(Event(f"eager {op.value}", "eager", start, end, flops, nbytes, threading.get_ident(), shapes))


def eager_cost(op, srcs: list, value) -> tuple[int, int]:
    """(FLOPs, bytes) of one eager op on arrays `srcs` giving `value`: the
    same conventions as codegen/cost.py (a view moves no bytes)."""
    import numpy as np

    from graphc.ir.ops import ELEMENTWISE, REDUCE, Op

    out_numel = int(np.prod(getattr(value, "shape", ()), dtype=np.int64))
    if op is Op.DOT:
        flops = 2 * out_numel * int(srcs[0].shape[-1])
    elif op in REDUCE:
        flops = int(np.prod(srcs[0].shape, dtype=np.int64))
    elif op in ELEMENTWISE:
        flops = out_numel
    else:
        flops = 0
    arrays = [a for a in srcs if isinstance(a, np.ndarray)]
    if not any(getattr(a, "dtype", np.dtype(bool)).kind == "f" for a in [value, *srcs]):
        flops = 0  # integer or boolean work: not floating-point operations
    if isinstance(value, np.ndarray) and any(np.may_share_memory(value, a) for a in arrays):
        return flops, 0  # a view: nothing copied
    nbytes = sum(a.nbytes for a in arrays) + getattr(value, "nbytes", 0)
    return flops, int(nbytes)


# ---------------------------------------------------------------------------
# the generated code's clock (codegen/llvm/timing.py) in perf_counter seconds


class Clock:
    """The generated code's tick length in seconds, measured once per process
    by reading the ticks and perf_counter around a short busy wait. Each
    reading keeps the tightest of a few tries, so that a thread switch in
    the middle of one (common on a loaded machine) does not skew the fit.
    Callers place tick counts on the perf_counter timeline by anchoring a
    tick read at a known perf_counter time: only differences of ticks are
    converted, so drift between the two clocks never accumulates."""

    def __init__(self, read_ticks, calibrate_s: float = 0.02):
        self.read_ticks = read_ticks
        c0, t0 = self._pair()
        end = t0 + calibrate_s
        while time.perf_counter() < end:
            pass
        c1, t1 = self._pair()
        if c1 <= c0:
            raise RuntimeError("the generated code's clock does not advance")
        self.seconds_per_tick = (t1 - t0) / (c1 - c0)

    def _pair(self, tries: int = 7) -> tuple[int, float]:
        best = None
        for _ in range(tries):
            before = time.perf_counter()
            ticks = self.read_ticks()
            after = time.perf_counter()
            if best is None or after - before < best[0]:
                best = (after - before, ticks, (before + after) / 2)
        return best[1], best[2]

    def seconds(self, ticks: int) -> float:
        """`ticks` (a difference of tick counts) in seconds."""
        return ticks * self.seconds_per_tick


_CLOCK: Clock | None = None
_CLOCK_ENGINE = None
_CLOCK_LOCK = threading.Lock()


def clock() -> Clock:
    """The calibrated clock (compiled and calibrated on first use)."""
    global _CLOCK, _CLOCK_ENGINE
    if _CLOCK is not None:
        return _CLOCK
    with _CLOCK_LOCK:
        if _CLOCK is None:
            from graphc.codegen.llvm import target, timing
            from graphc.runtime.native import _engine

            obj = target.emit_object(target.optimize(timing.clock_module_ir()))
            _CLOCK_ENGINE, addr = _engine(obj, "graphc_timestamp")
            _CLOCK = Clock(ctypes.CFUNCTYPE(ctypes.c_int64)(addr))
    return _CLOCK


# ---------------------------------------------------------------------------
# the machine's peak


@dataclass(frozen=True)
class Peak:
    gflops: float  # best float32 GEMM rate of the compiled GEMM routine
    gbps: float  # numpy copy bandwidth (bytes read + written)


_PEAK: Peak | None = None


def peak() -> Peak:
    """This machine's reference rates, measured once per process (~0.3 s on
    an idle machine): the best of 20 512x512x512 float32 matmuls compiled
    by graphc (on the threads compiled programs use) and the best of 20
    32 MiB numpy copies. "% of peak" in the table is against these, not a
    data sheet; on a busy machine they come out low (best-of-many is the
    defence) and a kernel can show more than 100%."""
    global _PEAK
    if _PEAK is None:
        _PEAK = Peak(_gemm_gflops(), _copy_gbps())
    return _PEAK


# Compiles the graph of the peak-measuring GEMM: set by graphc/runtime/cpu.py
# as it loads (the CPU backend builds on this module, so this module cannot
# import it). Unset, the GEMM peak reads 0 and the table shows no compute share.
compile_cpu_graph = None


def _gemm_gflops(n: int = 512, repeats: int = 20) -> float:
    import numpy as np

    from graphc.ir import dtypes
    from graphc.ir.graph import Graph, input_node, node
    from graphc.ir.ops import Op

    a, b = input_node("a", (n, n), dtypes.float32), input_node("b", (n, n), dtypes.float32)
    if compile_cpu_graph is None:
        return 0.0
    exe = compile_cpu_graph(Graph([a, b], [node(Op.DOT, a, b)], name="peak_gemm")).without_debug_tables()
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((n, n), dtype=np.float32) for _ in range(2)]
    saved = start(None)  # the measurement is not the user's work
    try:
        exe(arrays)  # warm up: page in the arena and output
        best = min(_timed(lambda: exe(arrays)) for _ in range(repeats))
    finally:
        stop(saved)
    return 2 * n**3 / best / 1e9


def _copy_gbps(nbytes: int = 32 << 20, repeats: int = 20) -> float:
    import numpy as np

    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeats))
    return 2 * nbytes / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------
# averages per name and the table


@dataclass
class Average:
    """All events of one name: torch's FunctionEventAvg fields (times in
    microseconds) plus FLOPs and bytes."""

    key: str
    cat: str
    count: int = 0
    cpu_time_total: float = 0.0  # us
    self_cpu_time_total: float = 0.0  # us
    flops: int = 0
    bytes: int = 0

    @property
    def cpu_time(self) -> float:
        """Average time per call (us)."""
        return self.cpu_time_total / max(self.count, 1)

    @property
    def gflops_per_s(self) -> float:
        return self.flops / (self.cpu_time_total * 1e3) if self.cpu_time_total > 0 else 0.0

    @property
    def gbytes_per_s(self) -> float:
        return self.bytes / (self.cpu_time_total * 1e3) if self.cpu_time_total > 0 else 0.0


def self_times(events: list[Event]) -> list[float]:
    """Each event's duration less those of the events directly inside it
    (same thread, starting within it), in seconds."""
    own = [e.duration for e in events]
    order = sorted(range(len(events)), key=lambda i: (events[i].thread, events[i].start, -events[i].end))
    stack: list[int] = []
    for i in order:
        e = events[i]
        while stack and (events[stack[-1]].thread != e.thread or events[stack[-1]].end <= e.start):
            stack.pop()
        if stack:
            own[stack[-1]] -= e.duration
        stack.append(i)
    return [max(t, 0.0) for t in own]


def averages(events: list[Event]) -> list[Average]:
    """One `Average` per event name, in first-seen order."""
    rows: dict[str, Average] = {}
    for e, own in zip(events, self_times(events)):
        row = rows.get(e.name)
        if row is None:
            row = rows[e.name] = Average(e.name, e.cat)
        row.count += 1
        row.cpu_time_total += e.duration * 1e6
        row.self_cpu_time_total += own * 1e6
        row.flops += e.flops
        row.bytes += e.bytes
    return list(rows.values())


SORT_KEYS = {
    "self_cpu_time_total": lambda r: r.self_cpu_time_total,
    "cpu_time_total": lambda r: r.cpu_time_total,
    "cpu_time": lambda r: r.cpu_time,
    "count": lambda r: r.count,
    "flops": lambda r: r.flops,
    "bytes": lambda r: r.bytes,
}


def format_time(us: float) -> str:
    """Like torch's tables: 812.000us, 12.345ms, 1.234s."""
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _peak_text(row: Average, pk: Peak | None) -> str:
    """The rate nearest its roofline, as a share of the machine's peak."""
    if pk is None or row.cat not in ("kernel", "eager") or not (row.flops or row.bytes):
        return ""
    compute = row.gflops_per_s / pk.gflops if pk.gflops else 0.0
    memory = row.gbytes_per_s / pk.gbps if pk.gbps else 0.0
    return f"{100 * compute:.0f}% flop" if compute >= memory else f"{100 * memory:.0f}% mem"


def table(
    rows: list[Average], sort_by: str = "self_cpu_time_total", row_limit: int = 100, max_name_column_width: int = 55
) -> str:
    """The averages as a text table, largest `sort_by` first."""
    if sort_by not in SORT_KEYS:
        raise ValueError(f"table: unknown sort_by {sort_by!r}; expected one of {', '.join(SORT_KEYS)}")
    ordered = sorted(rows, key=SORT_KEYS[sort_by], reverse=True)
    if row_limit is not None and row_limit > 0:
        ordered = ordered[:row_limit]
    total_self = sum(r.self_cpu_time_total for r in rows)
    pk = peak() if any(r.flops or r.bytes for r in ordered) else None
    width = max([len("Name")] + [min(len(r.key), max_name_column_width) for r in ordered])
    head = ["Name".ljust(width), "Self CPU %", "Self CPU", "CPU total", "CPU avg", "# Calls"]
    head += ["GFLOP/s", "GB/s", "% peak"]
    widths = [width] + [max(len(h), 12) for h in head[1:]]
    rule = "  ".join("-" * w for w in widths)
    lines = [rule, "  ".join(h.rjust(w) if i else h for i, (h, w) in enumerate(zip(head, widths))), rule]
    for r in ordered:
        name = r.key if len(r.key) <= width else r.key[: width - 3] + "..."
        share = 100 * r.self_cpu_time_total / total_self if total_self else 0.0
        rated = r.flops or r.bytes
        cells = [
            f"{share:.2f}%",
            format_time(r.self_cpu_time_total),
            format_time(r.cpu_time_total),
            format_time(r.cpu_time),
            str(r.count),
            f"{r.gflops_per_s:.2f}" if rated else "",
            f"{r.gbytes_per_s:.2f}" if rated else "",
            _peak_text(r, pk),
        ]
        lines.append("  ".join([name.ljust(width)] + [c.rjust(w) for c, w in zip(cells, widths[1:])]))
    lines.append(rule)
    lines.append(f"Self CPU time total: {format_time(total_self)}")
    if pk is not None:
        lines.append(f"Peak of this machine: {pk.gflops:.1f} GFLOP/s (f32 GEMM 512), {pk.gbps:.1f} GB/s (copy)")
    return "\n".join(lines)
