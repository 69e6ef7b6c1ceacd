"""`graphc.compile`: trace a function or Module once per signature, compile
the graph with a backend, and run the compiled program on later calls.

The lifecycle of one signature (shapes, dtypes, devices and requires_grad
of the tensor arguments, other arguments by value, grad mode, the module's
train/eval flags and its parameters):

1. The first call runs eagerly. Lazily created state (optimizer moment
   buffers, `.grad`) then exists as concrete tensors, so the trace captures
   it instead of creating it inside the graph.
2. The second call traces (graphc/_trace.py), compiles with
   `runtime.backends.compile_graph(graph, backend, aliases)` and caches.
3. Later calls feed the arguments and captured state to the compiled
   program, write the state back (in-place updates are aliased into the
   state arrays; new `.grad` tensors replace the old ones) and return the
   results as eager tensors.

A cached program is reused only while its captured tensors keep their
shapes and dtypes, the `.grad` objects it read are still in place, the
modules it called keep their train/eval modes, and the Python globals and
closure variables the function reads (and tensors whose values the trace
read with `.item()` and the like) are unchanged (guards, graphc/_guards.py);
otherwise it retraces, keeping up to MAX_PROGRAMS_PER_SIGNATURE programs
per signature (GRAPHC_DEBUG=1 says why: "recompiling f: global 'scale'
changed from 2.0 to 3.0").

Devices: with the default backend a program whose arguments or state live
on the GPU compiles with the "cuda" backend and runs on the tensors'
device storage (graphc/_device_storage.py): in-place state updates are
written into the state's device buffers, results come back as CUDA
tensors, and CPU 0-d values among the inputs (the RNG state, optimizer
step counters) are uploaded per call and written back when updated. A
program on CPU tensors uses "llvm".

Autograd: a function that calls backward() itself (a whole training step)
is one program whose results carry no autograd history. A function whose
results require grad (a forward pass under grad mode, to be differentiated
later) compiles a forward and a backward program
(graphc/_compiled_autograd.py): its results' grad_fn runs the compiled
backward.
"""

from __future__ import annotations

import functools

import numpy as np

import graphc.runtime.backends as backends
from graphc import _compiled_autograd, _guards, _tensor_core, autograd
from graphc._device import get_default_device
from graphc._program_entry import _Entry, _on_device
from graphc._tensor import Tensor
from graphc._trace import _ACTIVE as _TRACES
from graphc._trace import trace_program
from graphc.debug import dump
from graphc.errors import DeviceError, GraphcError, at_user_line

_NO_KWARGS = ("dict", ())
# Compiled programs kept per call signature (programs for other values of
# guarded globals, other train/eval modes, ...).
MAX_PROGRAMS_PER_SIGNATURE = 8


def _creation_defaults() -> tuple:
    """The default dtype and device: tensors a traced function creates depend on them."""
    return _tensor_core.get_default_dtype().name, str(get_default_device())


def _check_backend(backend: str) -> None:
    if backend not in backends.BACKENDS:
        backends.load_backend(backend)
    if backend not in backends.BACKENDS:
        raise GraphcError(
            f"graphc.compile: backend {backend!r} is not available (registered: {sorted(backends.BACKENDS)}). "
            "Use backend='interp' for the reference interpreter."
        )


# numpy dtype -> graphc dtype name, filled on first sight (a pure function
# of the dtype, so caching it cannot change a key).
_DTYPE_NAMES: dict = {}


def _tensor_key(v) -> tuple:
    """`("T", shape, dtype name, device, requires_grad)` of a tensor; the
    same tuple as `(tuple(v.shape), v.dtype.name, str(v.device), ...)`
    without the property calls."""
    value = v._value
    if type(value) is np.ndarray:
        dt = value.dtype
        name = _DTYPE_NAMES.get(dt)
        if name is None:
            name = _DTYPE_NAMES[dt] = v.dtype.name
        dev = v._device
        return ("T", value.shape, name, "cpu" if dev is None else str(dev), v._requires_grad)
    return ("T", tuple(v.shape), v.dtype.name, str(v.device), v.requires_grad)


def _value_key(v):
    if isinstance(v, Tensor):
        return _tensor_key(v)
    static = getattr(type(v), "_graphc_static_fields", ())
    if static:  # their values, not just their shapes (see trace._arg_leaves)
        return (type(v).__name__, tuple(_static_key(x) if f in static else _value_key(x) for f, x in zip(v._fields, v)))
    if isinstance(v, (tuple, list)):
        return (type(v).__name__, tuple(_value_key(x) for x in v))
    if isinstance(v, dict):
        return ("dict", tuple((k, _value_key(x)) for k, x in v.items()))
    try:
        hash(v)
        return (type(v).__name__, v)
    except TypeError:
        return ("id", id(v))


def _static_key(v):
    return ("S", tuple(v.tolist())) if isinstance(v, Tensor) else _value_key(v)


def _module_of(fn):
    if hasattr(fn, "named_parameters"):
        return fn
    owner = getattr(fn, "__self__", None)
    return owner if owner is not None and hasattr(owner, "named_parameters") else None


def _module_key(module) -> tuple:
    if module is None:
        return ()
    modes = tuple(m.training for m in module.modules()) if hasattr(module, "modules") else ()
    params = tuple(
        (id(p), tuple(p.shape), p.dtype.name, str(p.device), p.requires_grad, p.grad is None)
        for _, p in module.named_parameters()
    )
    return (modes, params)


class CompiledFunction:
    """A function (or Module) compiled per call signature; see the module doc."""

    def __init__(self, fn, backend: str | None = None, **options):
        if backend is not None:
            _check_backend(backend)
        self.fn = fn
        self.backend = backend
        self.options = options
        self._cache: dict = {}
        self._warm: set = set()
        self._eager_only: set = set()
        # key -> its cached entries, for keys that are warm, not eager-only
        # and have a compiled program: the per-call fast path.
        self._ready: dict = {}
        self._module = _module_of(fn)
        functools.update_wrapper(self, fn, updated=())

    def reset(self) -> None:
        """Forget every compiled program (e.g. after replacing captured state)."""
        self._cache.clear()
        self._warm.clear()
        self._eager_only.clear()
        self._ready.clear()

    def signature(self, args: tuple, kwargs: dict) -> tuple:
        """The cache key of a call (see the module doc)."""
        module = self._module
        if not kwargs and module is None:
            # The common case, same key: positional tensors, no module.
            keys = []
            for a in args:
                if not isinstance(a, Tensor):
                    break
                keys.append(_tensor_key(a))
            else:
                return (("tuple", tuple(keys)), _NO_KWARGS, autograd._grad_enabled, _creation_defaults(), ())
        return (
            _value_key(args),
            _value_key(kwargs),
            autograd.is_grad_enabled(),
            _creation_defaults(),
            _module_key(module),
        )

    def __call__(self, *args, **kwargs):
        if _TRACES:
            # Called from inside another trace: inline into that graph.
            return self.fn(*args, **kwargs)
        key = self.signature(args, kwargs)
        entries = self._ready.get(key)
        if entries is not None:
            if PRE_CALL_HOOKS:
                _sync_python_state()
            for entry in entries:
                if entry.static or entry.stale_reason() is None:
                    return entry.run(args, kwargs)
            return self._retrace(key, args, kwargs)
        if key not in self._warm or key in self._eager_only:
            result = self.fn(*args, **kwargs)
            self._warm.add(key)
            return result
        _sync_python_state()
        return self._retrace(key, args, kwargs)

    def _retrace(self, key, args: tuple, kwargs: dict):
        """The call of a warm key (hooks already run): the first cached
        program that is not stale, or a new trace."""
        entries = self._cache.setdefault(key, [])
        reasons = []
        for entry in entries:
            reason = entry.stale_reason()
            if reason is None:
                return entry.run(args, kwargs)
            reasons.append(reason)
        name = getattr(self.fn, "__name__", type(self.fn).__name__)
        if reasons:
            dump(1, f"recompiling {name}: {'; '.join(reasons)}")
        else:
            dump(1, f"compile {name}: new signature: tracing")
        entry = self._build(args, kwargs)
        if entry is None:
            self._eager_only.add(key)
            self._ready.pop(key, None)
            dump(
                1,
                f"compile {name}: results require grad but no gradient reaches an input: running eagerly",
            )
            return self.fn(*args, **kwargs)
        if len(entries) >= MAX_PROGRAMS_PER_SIGNATURE:
            # A value that changes on every call (a global step counter)
            # would otherwise keep every program it ever compiled.
            dump(1, f"compile {name}: {len(entries)} programs for one signature already: dropping the oldest")
            del entries[0]
        entries.append(entry)
        self._ready[key] = entries
        return entry.run(args, kwargs)

    def _build(self, args: tuple, kwargs: dict):
        guards = _guards.record(self.fn)  # before the trace: the values it reads
        program = trace_program(self.fn, args, kwargs)
        guards.versions = list(program.concrete_reads)
        guards = guards if len(guards) else None
        device = _on_device(program, args, kwargs)
        if device is not None and self.backend not in (None, "cuda"):
            raise DeviceError(
                f"graphc.compile: backend {self.backend!r} runs on the CPU but the inputs are on {device}; "
                "leave the backend unset (or pass backend='cuda'), or move the tensors with .cpu()"
            )
        if program.needs_autograd and not any(w.kind == "grad" for w in program.state_writes):
            # A forward to differentiate later (not a whole training step).
            return _compiled_autograd.build_entry(program, self.backend or "llvm", device, guards)
        if device is not None:
            from graphc._device_storage import runtime

            executable = runtime().compile_graph(program.graph, program.aliases)
            return _Entry(program, executable, device, guards)
        executable = backends.compile_graph(program.graph, self.backend or "llvm", program.aliases)
        return _Entry(program, executable, guards=guards)


class CompiledModule(CompiledFunction):
    """A Module whose calls are compiled; every other attribute is the module's."""

    def __getattr__(self, name):
        fn = self.__dict__.get("fn")
        if fn is None:  # not initialized yet (copy, unpickling)
            raise AttributeError(f"'CompiledModule' object has no attribute {name!r}")
        return getattr(fn, name)

    def __setattr__(self, name, value):
        if name in (
            "fn",
            "backend",
            "options",
            "_cache",
            "_warm",
            "_eager_only",
            "_ready",
            "_module",
        ) or name.startswith("__"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.fn, name, value)

    def __repr__(self) -> str:
        return f"Compiled({self.fn!r})"


# torch.compile's keywords other than `backend`: accepted so PyTorch code
# runs unchanged, and ignored (graphc always compiles the whole graph).
_TORCH_OPTIONS = ("mode", "fullgraph", "dynamic", "options", "disable")


def compile(model=None, *, backend: str | None = None, **options):
    """Compile a function or Module into a cached static-graph program.

    Use as `graphc.compile(fn)`, `graphc.compile(module, backend="interp")`,
    or as a decorator with or without arguments. Without a backend, CPU
    tensors compile with "llvm" and CUDA tensors with "cuda". Options accepted for
    PyTorch compatibility (`mode`, `fullgraph`, `dynamic`, `options`,
    `disable`) are ignored; any other keyword is a TypeError.

    >>> import graphc
    >>> @graphc.compile(backend="interp")
    ... def f(x):
    ...     return (x * 2).sum()
    >>> [f(graphc.ones(3)).item() for _ in range(2)]
    [6.0, 6.0]
    """
    unknown = sorted(set(options) - set(_TORCH_OPTIONS))
    if unknown:
        valid = ", ".join(("backend",) + _TORCH_OPTIONS)
        raise TypeError(
            at_user_line(f"compile() got an unexpected keyword argument {unknown[0]!r} (valid keywords: {valid})")
        )
    if model is None:
        return lambda fn: compile(fn, backend=backend, **options)
    if hasattr(model, "named_parameters") and hasattr(model, "forward"):
        return CompiledModule(model, backend, **options)
    return CompiledFunction(model, backend, **options)


# Functions run before every compiled call, to copy Python-side settings that
# compiled programs read as tensors into those tensors: graphc.optim registers
# each optimizer's learning-rate refresh here (a scheduler changes the Python
# lr between calls).
PRE_CALL_HOOKS: list = []


def _sync_python_state() -> None:
    """Run the pre-call hooks (a copy: a hook may unregister itself)."""
    for hook in list(PRE_CALL_HOOKS):
        hook()
