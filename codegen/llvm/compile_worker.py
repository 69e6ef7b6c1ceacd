"""A compile worker: a process that optimises and emits LLVM modules for its
parent (runtime/compile_pool.py), on another core.

llvmlite runs one LLVM call at a time per process, so a second core can only
help a compile from another process. The parent starts this file as a
script (`python .../compile_worker.py`); it imports llvmlite and target.py
only, not graphc, so it is ready in ~65 ms. The object code is the one the
parent would build itself: same Python, llvmlite and host target, and the
parent sends the optimisation level.

Protocol, binary, on stdin/stdout:

    worker -> parent, once at start:  b"ready\\n"
    parent -> worker:  b"<level> <nbytes>\\n" + <nbytes> of LLVM IR text
    worker -> parent:  b"ok <nbytes>\\n" + object code
                    or b"error <nbytes>\\n" + a message (bad IR, LLVM error)

The worker exits at end of input (the parent closed the pipe or exited).
"""

from __future__ import annotations

import signal
import sys

if __package__:
    from graphc.codegen.llvm import target
else:  # run as a script: target.py sits beside this file (sys.path[0])
    import target  # type: ignore[no-redef]


def compile_text(ir_text: str, level: int) -> bytes:
    """Object code of LLVM IR text, optimised at `level`."""
    return target.emit_object(target.optimize(ir_text, level))


def serve(inp, out) -> int:
    """Answer requests from binary stream `inp` on `out` until end of input."""
    out.write(b"ready\n")
    out.flush()
    while True:
        header = inp.readline()
        if not header:
            return 0
        try:
            level_text, size_text = header.split()
            level, size = int(level_text), int(size_text)
        except ValueError:
            _reply(out, b"error", f"bad request header {header[:80]!r}".encode())
            return 2
        text = inp.read(size)
        if len(text) != size:
            return 0  # the parent went away mid-request
        try:
            obj = compile_text(text.decode(), level)
        except Exception as e:  # bad IR or an LLVM error: the parent compiles it and reports
            _reply(out, b"error", f"{type(e).__name__}: {e}".encode())
            continue
        _reply(out, b"ok", obj)


def _reply(out, status: bytes, payload: bytes) -> None:
    out.write(status + b" %d\n" % len(payload))
    out.write(payload)
    out.flush()


def main() -> int:
    # Ctrl-C in a terminal reaches the whole process group: the parent
    # handles it, and closing the pipe ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return serve(sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the parent exited while this one answered
        return 0


if __name__ == "__main__":
    sys.exit(main())
