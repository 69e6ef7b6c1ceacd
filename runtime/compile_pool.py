"""Compile workers: LLVM work of a cold compile on the other cores.

LLVM is most of a cold compile (ResNet-18's training step: 6 of 7 s) and
llvmlite runs one LLVM call at a time per process. So the CPU backend
splits a big program's module at kernel boundaries (codegen/llvm/split.py),
and this process and idle worker processes (codegen/llvm/compile_worker.py)
take the parts in turn until none is left (`compile_objects`); the GEMM
library's cold build goes to a worker too (`compile_elsewhere`). Each part
becomes its own object; runtime/native.py loads them into one engine.

Workers are started on demand (`warm`, when a compile misses the caches,
so that their ~65 ms start overlaps lowering; not earlier: a booting
worker takes a core from the caller's threads), serve one request
at a time, and live until the process exits: later compiles find them
ready. There are at most GRAPHC_COMPILE_WORKERS of them (default: one less
than the cores, at most 8; 0 turns them off). A worker that fails (it died,
or LLVM reported an error) is dropped and its part compiled here, so a
compile never depends on one. A forked child does not use its parent's
workers; it starts its own.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from graphc import config, debug

_SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "codegen", "llvm", "compile_worker.py"
)
STATS = {"started": 0, "jobs": 0, "failures": 0}


# How long a worker may take to start, and to answer one request, before
# it counts as failed (killed, its part compiled here): a backstop against
# a stuck process, far above any real part (ResNet-18's step: ~1 s each).
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 600.0


class Worker:
    """One worker process and its pipes (unbuffered: reads wait with a
    deadline)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, _SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            bufsize=0,
        )
        self.ready = False
        self._buf = bytearray()
        _LIVE[self.proc.pid] = self
        STATS["started"] += 1

    def send(self, text: str, level: int) -> bool:
        data = text.encode()
        view = memoryview(b"%d %d\n" % (level, len(data)) + data)
        try:
            while view:  # a raw pipe may take part of a write
                view = view[self.proc.stdin.write(view) :]
        except OSError:
            return False
        return True

    def wait_ready(self) -> bool:
        """Wait for the worker's start-up; False if it failed."""
        if not self.ready:
            try:
                self.ready = self._readline(time.monotonic() + START_TIMEOUT_S) == b"ready\n"
            except (OSError, TimeoutError):
                self.ready = False
        return self.ready

    def receive(self) -> bytes | None:
        """The object code of the request sent, or None (the worker failed)."""
        if not self.wait_ready():
            return None
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        try:
            status, _, size = self._readline(deadline).partition(b" ")
            payload = self._read(int(size), deadline)
        except (OSError, ValueError, TimeoutError):
            return None
        if status != b"ok" or not payload:
            debug.dump(1, f"compile worker: {payload[:300].decode(errors='replace')}; compiling here")
            return None
        return payload

    def _readline(self, deadline: float) -> bytes:
        while b"\n" not in self._buf:
            if not self._fill(deadline):
                break
        line, sep, rest = bytes(self._buf).partition(b"\n")
        self._buf = bytearray(rest)
        return line + sep

    def _read(self, n: int, deadline: float) -> bytes:
        more = True
        while len(self._buf) < n and more:
            more = self._fill(deadline)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _fill(self, deadline: float) -> bool:
        """Read what the pipe has; False at end of input. TimeoutError past
        the deadline."""
        fd = self.proc.stdout.fileno()
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
        chunk = os.read(fd, 1 << 20)
        self._buf += chunk
        return bool(chunk)

    def close(self) -> None:
        _LIVE.pop(self.proc.pid, None)
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_LOCK = threading.Lock()
_FREED = threading.Condition()  # notified when a worker is released
_IDLE: list[Worker] = []
_LIVE: dict[int, Worker] = {}  # pid -> every running worker, idle or busy
_pid = os.getpid()


def max_workers() -> int:
    n = config.get("GRAPHC_COMPILE_WORKERS")
    if n is None:
        n = min((os.cpu_count() or 1) - 1, 8)
    return max(int(n), 0)


def _forked() -> None:
    """In a fork's child: the parent's workers and pipes are not ours."""
    global _IDLE, _LIVE, _pid, _LOCK, _FREED
    for w in _LIVE.values():
        # Our copies of its pipes: closed, so that the worker sees the end
        # of its input when the parent closes its own, not when we exit.
        for pipe in (w.proc.stdin, w.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
    _LOCK, _FREED = threading.Lock(), threading.Condition()
    _IDLE, _LIVE, _pid = [], {}, os.getpid()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forked)


def available() -> int:
    """How many workers could help with a compile starting now (running,
    busy or idle, or not yet started), each with a core to run on. A busy
    one joins when its job is done (`compile_objects`)."""
    n = max_workers()
    return min(n, idle_cores()) if n else 0


def idle_cores() -> int:
    """Cores a worker could have beside this process's compiling thread:
    the cores less one, less the threads of other processes running now
    (Linux: /proc/loadavg's count of runnable threads less this process's
    own, which may be spinning briefly after a call, and its workers'),
    else less the one-minute load average. On busy cores a worker's start
    and its share only add work (measured on 2 loaded cores: no gain,
    sometimes a loss)."""
    cores = os.cpu_count() or 1
    try:
        others = min(_others_running() for _ in range(3))  # a snapshot is noisy: short tasks come and go
    except (OSError, ValueError, IndexError):
        try:
            others = int(os.getloadavg()[0])
        except OSError:
            return 0
    return max(cores - 1 - max(others, 0), 0)


def _others_running() -> int:
    with open("/proc/loadavg") as f:
        running = int(f.read().split()[3].split("/")[0])
    return running - _own_running_threads() - sum(_running(f"/proc/{pid}/stat") for pid in list(_LIVE))


def _own_running_threads() -> int:
    return sum(_running(f"/proc/self/task/{tid}/stat") for tid in os.listdir("/proc/self/task"))


def _running(stat_path: str) -> bool:
    """Whether the thread or process of a /proc stat file is runnable."""
    try:
        with open(stat_path) as f:
            # "pid (comm) state ...": comm may hold spaces and parentheses.
            return f.read().rpartition(")")[2].split()[0] == "R"
    except (OSError, IndexError):
        return False


def warm(count: int = 1) -> None:
    """Have `count` workers (at most GRAPHC_COMPILE_WORKERS) running:
    start the missing ones and return at once; each is ready ~65 ms
    later."""
    with _LOCK:
        for _ in range(min(count, max_workers(), idle_cores()) - len(_LIVE)):
            w = _start()
            if w is None:
                break
            _IDLE.append(w)


def _start() -> Worker | None:
    try:
        return Worker()
    except OSError as e:  # no fork, no memory: compile here
        debug.dump(1, f"compile worker: cannot start one ({e}); compiling here")
        return None


def _acquire() -> Worker | None:
    """A worker free now: an idle one, else a new one if allowed."""
    with _LOCK:
        if _IDLE:
            return _IDLE.pop()
        return _start() if len(_LIVE) < max_workers() else None


def _acquire_when_free(done) -> Worker | None:
    """A worker as soon as one is free (a busy one finishing its job), or
    None once `done()` says it is no longer needed."""
    while not done():
        w = _acquire()
        if w is not None:
            return w
        with _FREED:
            _FREED.wait(0.01)
    return None


def _release(w: Worker, ok: bool) -> None:
    with _LOCK:
        if ok and os.getpid() == _pid:
            _IDLE.append(w)
            w = None
    if w is not None:
        STATS["failures"] += not ok
        w.close()
    with _FREED:
        _FREED.notify_all()


def compile_objects(texts: Sequence[str], level: int | None = None) -> list[bytes]:
    """Object code of each LLVM module text, at optimisation `level`
    (default target.OPT_LEVEL). This thread and up to `available()`
    workers (each as soon as it is free) take the texts in order (the
    caller puts the costliest first) until none is left, so the work
    balances itself; a failed worker's text is compiled here."""
    from graphc.codegen.llvm import target  # llvmlite: not needed to start workers

    level = target.OPT_LEVEL if level is None else level
    objs: list[bytes | None] = [None] * len(texts)
    todo = list(range(len(texts)))
    taking = threading.Lock()

    def take() -> int | None:
        with taking:
            return todo.pop(0) if todo else None

    def done() -> bool:
        with taking:
            return not todo

    feeders = [
        threading.Thread(target=_feed, args=(take, done, texts, level, objs), name="graphc-compile-feed", daemon=True)
        for _ in range(min(len(texts) - 1, available()))
    ]
    for t in feeders:
        t.start()
    try:
        while (i := take()) is not None:
            objs[i] = target.emit_object(target.optimize(texts[i], level))
    except BaseException:
        with taking:
            todo.clear()  # the workers stop after their current part
        raise
    for t in feeders:
        t.join()
    return [o if o is not None else target.emit_object(target.optimize(t, level)) for o, t in zip(objs, texts)]


def _feed(take, done, texts: Sequence[str], level: int, objs: list) -> None:
    """Give a worker (the first free one) texts until none is left, or it
    fails."""
    w = _acquire_when_free(done)
    if w is None:
        return
    ok = w.wait_ready()
    while ok and (i := take()) is not None:
        obj = w.receive() if w.send(texts[i], level) else None
        STATS["jobs"] += 1
        ok = obj is not None
        objs[i] = obj
    _release(w, ok)


def compile_elsewhere(text: str, level: int) -> bytes | None:
    """Object code of one module compiled by a worker (the caller waits on
    a thread while its own thread compiles something else), or None where
    no worker is free or it failed."""
    w = _acquire()
    if w is None:
        return None
    obj = w.receive() if w.send(text, level) else None
    _release(w, obj is not None)
    STATS["jobs"] += 1
    return obj


@atexit.register
def _shutdown() -> None:
    with _LOCK:
        idle, _IDLE[:] = list(_IDLE), []
    for w in idle:
        w.close()
