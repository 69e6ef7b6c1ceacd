"""`graphc.cuda`: the CUDA device namespace.

`_runtime` is the CUDA runtime CUDA tensors use: graphc's own
(runtime/cuda.py, pycuda) unless another was installed by setting
`_runtime` (the tests install a simulated one). It provides
`device_count()` and `synchronize()`, and for tensor storage and eager ops
the interface described in graphc/_device_storage.py (allocate/free, host
<-> device copies, `compile_graph` with `run_device`). Without a GPU,
CUDA is unavailable and these functions answer accordingly."""

from __future__ import annotations

_runtime = None


def _rt():
    """The registered runtime; graphc's own (runtime/cuda.py, which imports
    pycuda only when asked about a GPU) registers itself on first use."""
    global _runtime
    if _runtime is None:
        import graphc.runtime.cuda

        _runtime = graphc.runtime.cuda
    return _runtime


def is_available() -> bool:
    """True when a CUDA runtime is registered and sees at least one GPU."""
    return _rt().device_count() > 0


def unavailable_reason() -> str | None:
    """Why CUDA is unavailable (pycuda missing, no driver, no GPU), or None."""
    reason = getattr(_rt(), "unavailable_reason", None)
    return reason() if reason is not None else (None if is_available() else "no CUDA runtime is registered")


def device_count() -> int:
    """Number of visible GPUs (0 without a CUDA runtime)."""
    return int(_rt().device_count())


def current_device() -> int:
    """Index of the current GPU."""
    if not is_available():
        raise RuntimeError(f"CUDA is not available: {unavailable_reason()}")
    return 0


def synchronize(device=None) -> None:
    """Wait for queued GPU work; a no-op without a CUDA runtime."""
    _rt().synchronize()


def manual_seed(seed: int) -> None:
    """Seed the generator (one generator serves every device)."""
    from graphc import random

    random.manual_seed(seed)


manual_seed_all = manual_seed


def __getattr__(name):
    # torch.cuda.OutOfMemoryError; the class lives with the runtime, which
    # is imported only when asked for.
    if name == "OutOfMemoryError":
        from graphc.runtime.cuda import CudaOutOfMemoryError

        return CudaOutOfMemoryError
    raise AttributeError(f"module 'graphc.cuda' has no attribute {name!r}")
