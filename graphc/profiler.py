"""`graphc.profiler`: where the time goes, like `torch.profiler`.

    >>> import graphc
    >>> from graphc.profiler import profile, record_function
    >>> x = graphc.randn(64, 64)
    >>> with profile() as prof:
    ...     with record_function("two matmuls"):
    ...         y = x @ x @ x
    >>> table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)
    >>> "eager dot" in table and "two matmuls" in table
    True

While a profiler is active it records:

- every compiled CPU call, run through the program's profiled build (a
  separate compiled program whose thread 0 timestamps each kernel
  boundary): one row per kernel, named by its index, kind and the fused
  primitives (`k3_dot(dot+add+cmplt+where) @train_step`), with its FLOPs and
  bytes from the kernel form (codegen/cost.py), and a `call @name` row
  whose self time is the call's overhead outside the kernels;
- every eager op (`eager add`, ...), timed where eager ops dispatch;
- `record_function` ranges.

- compiled CUDA calls: `call @name (cuda)` and one row per launch, timed
  with a CUDA event after each launch (the call waits for the GPU).

With no profiler active, compiled calls run the plain build and eager ops
do one check of a global. See docs/profiler.md for reading the table.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import threading
import time

from graphc.runtime import profiling
from graphc.runtime.cache import atomic_write

__all__ = ["ProfilerActivity", "profile", "record_function"]


class ProfilerActivity(enum.Enum):
    """What to profile (torch's names); accepted, and everything above is
    recorded whatever is asked."""

    CPU = "cpu"
    CUDA = "cuda"


class EventList(list):
    """`profile.key_averages()`: one `runtime.profiling.Average` per name
    (fields as torch's: key, count, cpu_time_total, self_cpu_time_total in
    microseconds, plus flops and bytes)."""

    def table(
        self,
        sort_by: str | None = "self_cpu_time_total",
        row_limit: int = 100,
        max_name_column_width: int = 55,
        **_ignored,
    ) -> str:
        """The rows as text, largest `sort_by` first (see docs/profiler.md)."""
        return profiling.table(list(self), sort_by or "self_cpu_time_total", row_limit, max_name_column_width)

    def __str__(self) -> str:
        return self.table()


class profile:
    """Records compiled kernels, eager ops and `record_function` ranges
    while active (a context manager, or `start()` / `stop()`).

    Arguments follow torch.profiler.profile; `activities`, `profile_memory`,
    `with_stack`, `with_flops` and `with_modules` are accepted for
    compatibility (FLOPs are always counted, memory and stacks never).
    `record_shapes=True` keeps the input shapes of eager ops, for
    `key_averages(group_by_input_shape=True)`. `on_trace_ready(prof)` is
    called when profiling stops."""

    def __init__(
        self,
        activities=None,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_flops: bool = True,
        with_modules: bool = False,
        on_trace_ready=None,
        schedule=None,
    ):
        if schedule is not None:
            raise NotImplementedError("graphc.profiler.profile: schedule= is not supported; profile the steps you want")
        for a in activities or ():
            if not isinstance(a, ProfilerActivity):
                raise TypeError(f"profile: activities must be ProfilerActivity values, got {a!r}")
        self.activities = set(activities or {ProfilerActivity.CPU})
        self.record_shapes = bool(record_shapes)
        self.on_trace_ready = on_trace_ready
        self._session = profiling.Session(record_shapes=self.record_shapes)
        self._previous: profiling.Session | None = None
        self._running = False
        self._t0 = 0.0

    def start(self) -> None:
        if self._running:
            raise RuntimeError("profile.start: this profiler is already running")
        self._t0 = time.perf_counter()
        self._previous = profiling.start(self._session)
        self._running = True

    def stop(self) -> None:
        if not self._running:
            raise RuntimeError("profile.stop: this profiler is not running")
        profiling.stop(self._previous)
        self._running = False
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def __enter__(self) -> profile:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def step(self) -> None:
        """Marks a step boundary (torch's schedules use it); nothing to do here."""

    def events(self) -> list[profiling.Event]:
        """The raw events, in the order they were recorded."""
        return list(self._session.events)

    def key_averages(self, group_by_input_shape: bool = False) -> EventList:
        """Events averaged per name (and per input shapes when asked)."""
        events = self._session.events
        if group_by_input_shape:
            events = [_with_shapes(e) for e in events]
        return EventList(profiling.averages(events))

    def export_chrome_trace(self, path: str | os.PathLike) -> None:
        """Write the events as Chrome trace JSON (chrome://tracing, Perfetto):
        one complete event per kernel, call, eager op and range, in
        microseconds from the profiler's start; kernels nest under their
        call. The file is replaced atomically."""
        pid = os.getpid()
        threads: dict[int, int] = {}
        trace = []
        for e in self._session.events:
            tid = threads.setdefault(e.thread, len(threads))
            item = {
                "name": e.name,
                "cat": e.cat,
                "ph": "X",
                "ts": round((e.start - self._t0) * 1e6, 3),
                "dur": round(e.duration * 1e6, 3),
                "pid": pid,
                "tid": tid,
            }
            args = {k: v for k, v in (("flops", e.flops), ("bytes", e.bytes)) if v}
            if e.shapes:
                args["input_shapes"] = [list(s) for s in e.shapes]
            if args:
                item["args"] = args
            trace.append(item)
        doc = {"traceEvents": trace, "displayTimeUnit": "ms"}
        atomic_write(path, json.dumps(doc).encode())


def _with_shapes(e: profiling.Event) -> profiling.Event:
    if not e.shapes:
        return e
    shapes = ", ".join(str(list(s)) for s in e.shapes)
    return profiling.Event(f"{e.name} [{shapes}]", e.cat, e.start, e.end, e.flops, e.bytes, e.thread, e.shapes)


class record_function:
    """A named range in the profile (a context manager or a decorator);
    records nothing when no profiler is active.

        with record_function("data loading"):
            x, y = next(batches)
    """

    def __init__(self, name: str, args: str | None = None):
        if not isinstance(name, str):
            raise TypeError(f"record_function: name must be a str, got {type(name).__name__}")
        self.name = name
        self._session: profiling.Session | None = None
        self._start = 0.0

    def __enter__(self) -> record_function:
        self._session = profiling.ACTIVE
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        session = self._session
        if session is not None:
            end = time.perf_counter()
            session.add(profiling.Event(self.name, "range", self._start, end, thread=threading.get_ident()))
        self._session = None

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with record_function(self.name):
                return fn(*args, **kwargs)

        return wrapper
