"""The CPU backend's threads: how many a compiled program runs on, and the
persistent pool of worker threads that run it.

A program with at least `THREADED_MIN_WORK` work runs on
`get_num_threads()` threads (`set_num_threads(n)`, like torch's): the
calling thread and `n - 1` workers of a `_Pool`, each calling the entry
point with its thread index; generated code synchronises kernels with an
atomic barrier. The pool's hand-off routines are native code
(codegen/llvm/pool.py), which runtime/native.py builds or loads and the
caller passes in (`pool(n, fns)`).
"""

from __future__ import annotations

import ctypes
import os
import threading

_NUM_THREADS = max(1, os.cpu_count() or 1)
# Programs with less total work than this run on the calling thread only:
# waking workers costs tens of microseconds.
THREADED_MIN_WORK = 1 << 20


def set_num_threads(n: int) -> None:
    """Threads compiled programs use (like torch.set_num_threads)."""
    global _NUM_THREADS
    if int(n) < 1:
        raise ValueError(f"set_num_threads: need at least 1 thread, got {n}")
    _NUM_THREADS = int(n)


def get_num_threads() -> int:
    """Threads compiled programs use (like torch.get_num_threads)."""
    return _NUM_THREADS


class _Pool:
    """Persistent worker threads that call the entry point with their
    thread index; ctypes releases the GIL, so they run in parallel.

    Hand-off is native (codegen/llvm/pool.py): after a job a worker spins
    (GIL released) on a job counter for ~1 ms, so back-to-back calls start
    and join workers in ~1 us instead of a lock wake-up and two GIL
    hand-overs (~100 us, as much as half of a 256x256 SGEMM). An idle
    worker then blocks on its lock; the caller releases only those."""

    def __init__(self, n: int, fns):
        from graphc.codegen.llvm import pool as llvm_pool

        self.n = n
        self.fns = fns  # (worker, post, wait): runtime/native.py `_pool_fns`
        self.state = (ctypes.c_int64 * llvm_pool.state_words(n))()
        self.state_addr = ctypes.addressof(self.state)
        self.spin = llvm_pool.SPIN_CYCLES
        for t in range(1, n):
            self.state[llvm_pool.LINE * (3 + 2 * t)] = 1  # asleep: blocked on its lock
        self.go = [threading.Lock() for _ in range(n)]
        for t in range(1, n):
            self.go[t].acquire()
            threading.Thread(target=self._work, args=(t,), daemon=True).start()

    def _work(self, tid: int) -> None:
        worker = self.fns[0]
        while True:
            self.go[tid].acquire()
            worker(self.state_addr, tid, self.spin)

    def run(self, exe, fn, entry_addr: int) -> None:
        """Run entry point `fn` (at `entry_addr`) of executable `exe` on
        all `n` threads, this one included; returns when all are done."""
        ctxs = exe.__dict__.get("_ctxs")
        if ctxs is None or len(ctxs[1]) != self.n:
            arrays = [exe._ctx(t, self.n) for t in range(self.n)]
            addrs = (ctypes.c_int64 * self.n)(*[ctypes.addressof(a) for a in arrays])
            ctxs = exe._ctxs = (arrays, addrs, ctypes.addressof(addrs), arrays[0])
        _, post, wait = self.fns
        with _POOL_LOCK:
            wake = post(self.state_addr, self.n, entry_addr, ctxs[2])
            if wake:
                for t in range(1, self.n):
                    if wake >> t & 1:
                        self.go[t].release()
            fn(ctypes.addressof(ctxs[3]))
            wait(self.state_addr, self.n)


_POOLS: dict[int, _Pool] = {}
_POOL_LOCK = threading.Lock()


def pool(n: int, fns) -> _Pool:
    """The process's pool of `n` threads (started on first use), running
    the native hand-off routines `fns`."""
    found = _POOLS.get(n)
    if found is None:
        found = _POOLS[n] = _Pool(n, fns)
    return found
