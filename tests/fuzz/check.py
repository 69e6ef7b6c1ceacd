"""Run one random program with PyTorch, graphc eagerly and graphc.compile,
and compare values and gradients.

Each run computes the program's output and the gradients of
`sum(output * w)` (fixed weights w, see `Program.weights`) with respect to
every input. The reference is PyTorch in the same dtype. The tolerance is
the dtype's (`RTOL`, relative to each value plus the largest magnitude
among the program's results, so a gradient that cancels to ~0 is not held
to a relative bound) plus an allowance for the program's conditioning:
the difference between PyTorch's own float32 and float64 results, scaled to
the dtype's epsilon, so a program whose result rounding legitimately
amplifies (a cancellation) is not reported, while a wrong value is.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

import graphc
import graphc.nn.functional  # noqa: F401  (graphc.nn.functional used by the op table)

from .programs import Program

DTYPES = ("float32", "float64")
RTOL = {"float32": 2e-5, "float64": 1e-10}
# How many times PyTorch's own float32-vs-float64 difference (scaled to the
# dtype's epsilon) a result may differ by.
CONDITION_FACTOR = 8.0
_EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}


@contextlib.contextmanager
def small_thresholds():
    """Compile with the GEMM and multi-threading thresholds at their minimum,
    so the fuzzer's small programs take the packed-GEMM, split-K and
    threaded code paths that real sizes take. (The thresholds are part of
    the compile-cache key.)"""
    from graphc.codegen.llvm import gemm, module

    names = [(gemm, "GEMM_MIN_WORK"), (gemm, "GEMM_MIN_ROWS"), (gemm, "GEMM_MIN_COLS"), (gemm, "K_SPLIT_MIN_BLOCKS")]
    names.append((module, "PARALLEL_MIN_WORK"))
    saved = [getattr(mod, name) for mod, name in names]
    try:
        for mod, name in names:
            setattr(mod, name, 1)
        yield
    finally:
        for (mod, name), value in zip(names, saved):
            setattr(mod, name, value)


@dataclass
class Mismatch:
    """One disagreement: which run, which result, and how."""

    seed: int
    dtype: str
    mode: str  # eager | compiled
    what: str  # output | grad x0 | error
    detail: str
    listing: str

    def report(self) -> str:
        head = f"MISMATCH seed={self.seed} dtype={self.dtype} mode={self.mode} {self.what}: {self.detail}"
        return f"{head}\n{self.listing}"


def _torch_results(program: Program, dtype: str):
    """(output, grads) with PyTorch; grads[i] is None where the input does
    not reach the output."""
    arrays = program.arrays()
    tensors = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in arrays]
    out = program.run(torch, tensors)
    weights = torch.tensor(program.weights(tuple(out.shape)), dtype=out.dtype)
    if out.requires_grad:
        (out * weights).sum().backward()
    return out.detach().numpy(), [None if t.grad is None else t.grad.numpy() for t in tensors]


def _graphc_eager(program: Program, dtype: str):
    tensors = [graphc.tensor(a, dtype=getattr(graphc, dtype), requires_grad=True) for a in program.arrays()]
    out = program.run(graphc, tensors)
    weights = graphc.tensor(program.weights(tuple(out.shape)), dtype=out.dtype)
    if out.requires_grad:
        (out * weights).sum().backward()
    return out.detach().numpy(), [None if t.grad is None else t.grad.numpy() for t in tensors]


def _graphc_compiled(program: Program, dtype: str):
    tensors = [graphc.tensor(a, dtype=getattr(graphc, dtype), requires_grad=True) for a in program.arrays()]

    def step(*inputs):
        for t in inputs:
            t.grad = None
        out = program.run(graphc, list(inputs))
        weights = graphc.tensor(program.weights(tuple(out.shape)), dtype=out.dtype)
        (out * weights).sum().backward()
        return out.detach()

    compiled = graphc.compile(step)
    compiled(*tensors)  # the first call runs eagerly
    out = compiled(*tensors)  # the second traces, compiles and runs the program
    return out.numpy(), [None if t.grad is None else t.grad.numpy() for t in tensors]


def _magnitude(results) -> float:
    """The largest finite magnitude among a run's output and gradients (at
    least 1): rounding errors scale with the terms summed, so a result
    that cancels to ~0 is compared with this as its absolute floor."""
    out, grads = results
    finite = [np.abs(a[np.isfinite(a)]).max(initial=0.0) for a in [out] + [g for g in grads if g is not None]]
    return max([1.0] + [float(f) for f in finite])


def _compare(got, want, want32, want64, dtype: str, floor: float) -> str | None:
    """None if `got` matches `want` (PyTorch in `dtype`), else why not."""
    got = np.asarray(got)
    if got.shape != want.shape:
        return f"shape {got.shape} != torch {want.shape}"
    if got.dtype != want.dtype:
        return f"dtype {got.dtype} != torch {want.dtype}"
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    if (nan_got != nan_want).any():
        i = np.argwhere(nan_got != nan_want)[0]
        return f"nan at {tuple(i)}: got {got[tuple(i)]}, torch {want[tuple(i)]}"
    ok = ~nan_want
    g, w = got[ok].astype(np.float64), want[ok].astype(np.float64)
    inf = np.isinf(w) | np.isinf(g)
    if (g[inf] != w[inf]).any():
        return f"inf mismatch: got {g[inf]}, torch {w[inf]}"
    g, w = g[~inf], w[~inf]
    if not g.size:
        return None
    cond = np.abs(want32[ok][~inf].astype(np.float64) - want64[ok][~inf]) * (_EPS[dtype] / _EPS["float32"])
    cond = np.nan_to_num(cond, nan=np.inf, posinf=np.inf)
    allowed = RTOL[dtype] * (np.abs(w) + floor) + CONDITION_FACTOR * cond
    bad = np.abs(g - w) > allowed
    if bad.any():
        i = int(np.argmax(np.abs(g - w) - allowed))
        return (
            f"{int(bad.sum())}/{g.size} elements differ; worst: got {g[i]!r}, torch {w[i]!r} "
            f"(|diff| {abs(g[i] - w[i]):.3g} > allowed {allowed[i]:.3g})"
        )
    return None


def check(program: Program, dtypes=DTYPES, modes=("eager", "compiled")) -> list[Mismatch]:
    """Every disagreement of graphc with PyTorch on `program`."""
    found = []
    ref = {dt: _torch_results(program, dt) for dt in ("float32", "float64")}
    floor = _magnitude(ref["float64"])
    runners = {"eager": _graphc_eager, "compiled": _graphc_compiled}
    for dtype in dtypes:
        want_out, want_grads = ref[dtype]
        for mode in modes:

            def miss(what, detail, dtype=dtype, mode=mode):
                found.append(Mismatch(program.seed, dtype, mode, what, detail, program.listing()))

            try:
                out, grads = runners[mode](program, dtype)
            except Exception as e:  # a crash is a finding too, reported with the program
                miss("error", f"{type(e).__name__}: {e}")
                continue
            why = _compare(out, want_out, ref["float32"][0], ref["float64"][0], dtype, floor)
            if why:
                miss("output", why)
            for i, (g, w) in enumerate(zip(grads, want_grads)):
                name = program.inputs[i][0]
                if (g is None) != (w is None):
                    miss(f"grad {name}", f"graphc grad is {'None' if g is None else 'set'}, torch's is not")
                    continue
                if w is None:
                    continue
                why = _compare(g, w, ref["float32"][1][i], ref["float64"][1][i], dtype, floor)
                if why:
                    miss(f"grad {name}", why)
    return found
