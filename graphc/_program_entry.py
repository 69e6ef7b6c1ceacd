"""A compiled program as graphc.compile caches it: the executable, the
state it was traced against, and how a call feeds it and writes state back.

graphc/_compile.py keeps these per call signature; graphc/_compiled_autograd.py
wraps one for the forward of a program with a compiled backward.
"""

from __future__ import annotations

import operator

import numpy as np

from graphc._tensor import Tensor
from graphc._trace import build_result
from graphc.errors import DeviceError, GraphcError

_VALUE = operator.attrgetter("_value")
_DEVICE = operator.attrgetter("_device")


class _Entry:
    """One compiled program and the state it was traced against."""

    def __init__(self, program, executable, device=None, guards=None):
        self.program = program
        self.executable = executable
        # Globals, closure variables and tensor values the trace baked in
        # (graphc/_guards.py); None when there are none.
        self.guards = guards
        # The GPU the program runs on (None: the numpy entry point).
        self.device = device
        self.captured = [(t, tuple(t.shape), t.dtype, t.device) for t in program.captured()]
        # .grad objects the trace read: a program is stale once they change.
        ids = {id(t) for t, _, _, _ in self.captured}
        # train/eval flags of the modules the trace called (and their children)
        self.modes = [(m, m.training) for top in program.modules for m in top.modules()]
        self.grads = [(t, t.grad) for t, _, _, _ in self.captured if t.grad is not None and id(t.grad) in ids]
        # Per-call fast paths: the inputs written in place, and the captured
        # tensors' value and device objects when last checked (while those
        # are the same objects, shapes, dtypes and devices are unchanged).
        self._aliased = sorted(set(program.aliases.values()))
        self._arg_inputs = [i for i, (kind, _) in enumerate(program.input_sources) if kind == "arg"]
        writes = program.state_writes
        self._value_writes = [(w.output, w.tensor) for w in writes if w.kind == "value"]
        self._grad_writes = [(w.output, w.tensor) for w in writes if w.kind != "value"]
        # .grad tensors the call replaces and the program does not read: they
        # are dropped before the call, so when nothing else holds them the
        # executable reuses their arrays for the new gradients (no fresh,
        # page-faulting allocations per step).
        read = {id(t) for t, _ in self.grads}
        self._dropped_grads = [t for o, t in self._grad_writes if o is not None and id(t) not in read]
        self._tensors = [t for t, _, _, _ in self.captured]
        self._checked = None
        # No captured tensors, .grad objects or module modes to check; and
        # static: nor guards, so nothing can make this program stale.
        self._guards_only = not self.captured and not self.grads and not self.modes
        self.static = guards is None and self._guards_only
        # The common input layout: the arguments' top-level positions
        # first, then captured state (None: some input is nested or a kwarg).
        sources = program.input_sources
        n_args = len(self._arg_inputs)
        positional = self._arg_inputs == list(range(n_args)) and all(
            len(ref) == 2 and ref[0] == 0 for _, ref in sources[:n_args]
        )
        self._positions = tuple(ref[1] for _, ref in sources[:n_args]) if positional else None
        self._state_tensors = [ref for _, ref in sources[n_args:]]
        # No write-back or alias fix-up to do after the call.
        self._no_writes = not (self._aliased or self._dropped_grads or self._value_writes or self._grad_writes)
        spec = program.out_spec
        self._single_out = spec[1] if spec[0] == "out" else None
        # Tensor._wrap for numpy results, without the generic checks.
        self._wrap = Tensor._from_numpy

    def _snapshot(self) -> tuple:
        ts = self._tensors
        return [t._value for t in ts], [t._device for t in ts]

    def stale_reason(self) -> str | None:
        guards = self.guards
        if guards is not None:
            reason = guards.check()
            if reason is not None or self._guards_only:
                return reason
        checked = self._checked
        if checked is None or not (
            all(map(operator.is_, map(_VALUE, self._tensors), checked[0]))
            and all(map(operator.is_, map(_DEVICE, self._tensors), checked[1]))
        ):
            reason = self._captured_changed()
            if reason is not None:
                return reason
            self._checked = self._snapshot()
        for t, g in self.grads:
            if t.grad is not g:
                return "a captured tensor's .grad was replaced"
        for m, training in self.modes:
            if m.training != training:
                return f"{type(m).__name__} switched to {'train' if m.training else 'eval'} mode"
        return None

    def _captured_changed(self) -> str | None:
        for t, shape, dtype, dev in self.captured:
            if tuple(t.shape) != shape or t.dtype is not dtype:
                return f"captured tensor changed from {dtype!r}{list(shape)} to {t.dtype!r}{list(t.shape)}"
            if t.device != dev:
                return f"captured tensor moved from {dev} to {t.device}"
        return None

    def run(self, args: tuple, kwargs: dict):
        if self.device is not None:
            return self._run_on_device(args, kwargs)
        program = self.program
        inputs = self._inputs(args, kwargs)
        if self._no_writes:
            outs = self.executable(inputs)
            o = self._single_out
            if o is not None:
                return self._wrap(outs[o])
            return build_result(program.out_spec, outs, self._wrap)
        return build_result(program.out_spec, self._execute(args, kwargs, inputs), self._wrap)

    def _inputs(self, args: tuple, kwargs: dict) -> list:
        """The program's input arrays for a call, in graph-input order."""
        program = self.program
        positions = self._positions
        if positions is not None:
            inputs = [args[i]._value for i in positions]
            for t in self._state_tensors:
                inputs.append(t._value)
        else:
            inputs = [ref if kind == "arg" else ref._value for kind, ref in program.input_sources]
            for i in self._arg_inputs:
                inputs[i] = _at_path(args, kwargs, inputs[i])._value
        for arr in inputs:
            if type(arr) is not np.ndarray:
                _check_concrete(program, inputs)
                break
        return inputs

    def _execute(self, args: tuple, kwargs: dict, inputs: list) -> list:
        """Run the program on `inputs` and apply its state writes; the output arrays."""
        sources = self.program.input_sources
        for i in self._aliased:
            arr = inputs[i]
            flags = arr.flags
            if not flags.writeable or not flags.c_contiguous:
                t = _at_path(args, kwargs, sources[i][1]) if sources[i][0] == "arg" else sources[i][1]
                inputs[i] = t._value = np.array(arr)
        for t in self._dropped_grads:
            t._grad = None
        outs = self.executable(inputs)
        for o, t in self._value_writes:
            if outs[o] is not t._value:
                np.copyto(t._value, outs[o])
            t._bump_version("a compiled function")
        wrap = self._wrap
        for o, t in self._grad_writes:
            t._grad = None if o is None else wrap(outs[o])
        return outs

    def _run_on_device(self, args: tuple, kwargs: dict):
        """Run on device storage: no host copies except CPU 0-d inputs."""
        outs = self._execute_on_device(self._device_inputs(args, kwargs))
        return build_result(self.program.out_spec, outs, Tensor._wrap)

    def _device_inputs(self, args: tuple, kwargs: dict) -> list:
        """The program's input device arrays; CPU 0-d values are uploaded."""
        from graphc import _device_storage as ds

        program, dev = self.program, self.device
        values = []
        for i, (kind, ref) in enumerate(program.input_sources):
            t = _at_path(args, kwargs, ref) if kind == "arg" else ref
            v = t._value
            if isinstance(v, ds.DeviceArray):
                if v.device != dev:
                    raise DeviceError(
                        f"graphc.compile: input {program.graph.inputs[i].attrs['name']} is on {v.device}, "
                        f"the program runs on {dev}"
                    )
            elif isinstance(v, np.ndarray):
                v = ds.to_device(v, dev)
            else:
                raise GraphcError(
                    f"graphc.compile: input {program.graph.inputs[i].attrs['name']} is not a concrete tensor"
                )
            values.append(v)
        return values

    def _execute_on_device(self, values: list) -> list:
        """Run the program on `values` (from _device_inputs) and apply its
        state writes; the output device arrays."""
        from graphc import _device_storage as ds

        program, dev = self.program, self.device
        buffers = self.executable.run_device([v.buffer for v in values])
        rt = ds.runtime()
        outs = [
            values[program.aliases[o]]
            if o in program.aliases
            else ds.DeviceArray(buf, node.shape, node.dtype.np, dev, rt)
            for o, (buf, node) in enumerate(zip(buffers, program.graph.outputs))
        ]
        for w in program.state_writes:
            if w.kind == "value":
                target = w.tensor._value
                if isinstance(target, np.ndarray):  # a CPU 0-d input: write it back
                    np.copyto(target, ds.to_host(outs[w.output]))
                elif outs[w.output] is not target:
                    ds.write(target, outs[w.output])
                w.tensor._bump_version("a compiled function")
            elif w.output is None:
                w.tensor._grad = None
            else:
                g = outs[w.output]
                on_host = not isinstance(w.tensor._value, ds.DeviceArray)
                w.tensor._grad = Tensor._wrap(ds.to_host(g) if on_host else g)
        return outs


def _check_concrete(program, inputs: list) -> None:
    for i, arr in enumerate(inputs):
        if not isinstance(arr, np.ndarray):
            raise GraphcError(f"graphc.compile: input {program.graph.inputs[i].attrs['name']} is not a concrete tensor")


def _on_device(program, args: tuple, kwargs: dict):
    """The GPU a traced program's tensors live on, or None (all on the host)."""
    from graphc._device_storage import DeviceArray

    for kind, ref in program.input_sources:
        t = _at_path(args, kwargs, ref) if kind == "arg" else ref
        if isinstance(t._value, DeviceArray):
            return t._value.device
    return None


def _at_path(args: tuple, kwargs: dict, path: tuple):
    obj = args if path[0] == 0 else kwargs
    for key in path[1:]:
        obj = obj[key]
    return obj
