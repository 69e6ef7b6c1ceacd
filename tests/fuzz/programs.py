"""Random programs built the same way for graphc and PyTorch from a seed.

A `Program` is plain data: its inputs (name, shape) and a list of `Step`s,
each one entry of `OPS` applied to earlier values with fixed parameters.
`Program.run(m, inputs)` evaluates it with the module `m` (graphc or torch:
the table only uses the API both share), and `Program.listing()` prints it
one step per line, so a failing seed reads as a small program.

Numerics are kept well-conditioned on purpose, so a difference is a bug and
not rounding: every value carries a bound on its magnitude, and ops that
could overflow (exp, powers, products) are only applied below a bound;
log/sqrt/division see operands kept away from their poles (`log(|x| + 0.5)`).
Ties: `max(dim)`/`min(dim)` (whose gradient goes to one index PyTorch picks
by an unspecified rule) are not generated; `amax`/`amin`, `maximum`/
`minimum` and `where` are, since their tie rules are defined (gradient shared
evenly, or split half/half) and graphc must follow them. `std` is not applied
to values that may hold equal elements (`_Builder.tied`): at a variance that
is 0 in one framework and an ulp in the other its gradient is 0 vs
(x - mean) / std, both right to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Largest magnitude a value may reach; ops that could exceed it are skipped.
_BOUND = 1e4
_MAX_NUMEL = 120


def _f(m):
    """m.nn.functional for graphc or torch."""
    return m.nn.functional


# name -> (function of (m, *tensors, **params), template for the listing).
# Templates name the operands {0}, {1}, ... and the parameters by name.
OPS: dict[str, tuple[Callable[..., Any], str]] = {
    # unary elementwise
    "sin": (lambda m, x: m.sin(x), "sin({0})"),
    "cos": (lambda m, x: m.cos(x), "cos({0})"),
    "tanh": (lambda m, x: m.tanh(x), "tanh({0})"),
    "sigmoid": (lambda m, x: m.sigmoid(x), "sigmoid({0})"),
    "erf": (lambda m, x: m.erf(x), "erf({0})"),
    "exp": (lambda m, x: m.exp(x), "exp({0})"),
    "neg": (lambda m, x: -x, "-{0}"),
    "abs": (lambda m, x: m.abs(x), "abs({0})"),
    "square": (lambda m, x: x * x, "{0} * {0}"),
    "cube": (lambda m, x: x**3, "{0} ** 3"),
    "log": (lambda m, x: m.log(m.abs(x) + 0.5), "log(abs({0}) + 0.5)"),
    "sqrt": (lambda m, x: m.sqrt(x * x + 0.25), "sqrt({0} * {0} + 0.25)"),
    "rsqrt": (lambda m, x: m.rsqrt(m.abs(x) + 0.5), "rsqrt(abs({0}) + 0.5)"),
    "recip": (lambda m, x: 1.0 / (x * x + 1.0), "1 / ({0} * {0} + 1)"),
    "pow_frac": (lambda m, x: (m.abs(x) + 0.5) ** 1.5, "(abs({0}) + 0.5) ** 1.5"),
    "scale": (lambda m, x, c: x * c, "{0} * {c}"),
    "shift": (lambda m, x, c: x + c, "{0} + {c}"),
    "rsub": (lambda m, x, c: c - x, "{c} - {0}"),
    "clamp": (lambda m, x, lo, hi: m.clamp(x, lo, hi), "clamp({0}, {lo}, {hi})"),
    # activations
    "relu": (lambda m, x: m.relu(x), "relu({0})"),
    "gelu": (lambda m, x, approximate: _f(m).gelu(x, approximate=approximate), "gelu({0}, {approximate!r})"),
    "silu": (lambda m, x: _f(m).silu(x), "silu({0})"),
    "softplus": (lambda m, x, beta: _f(m).softplus(x, beta=beta), "softplus({0}, beta={beta})"),
    "elu": (lambda m, x, alpha: _f(m).elu(x, alpha=alpha), "elu({0}, alpha={alpha})"),
    "leaky_relu": (lambda m, x, slope: _f(m).leaky_relu(x, slope), "leaky_relu({0}, {slope})"),
    "hardtanh": (lambda m, x: _f(m).hardtanh(x), "hardtanh({0})"),
    "relu6": (lambda m, x: _f(m).relu6(x), "relu6({0})"),
    "logsigmoid": (lambda m, x: _f(m).logsigmoid(x), "logsigmoid({0})"),
    # binary elementwise (broadcasting)
    "add": (lambda m, a, b: a + b, "{0} + {1}"),
    "sub": (lambda m, a, b: a - b, "{0} - {1}"),
    "mul": (lambda m, a, b: a * b, "{0} * {1}"),
    "div": (lambda m, a, b: a / (b * b + 1.0), "{0} / ({1} * {1} + 1)"),
    "maximum": (lambda m, a, b: m.maximum(a, b), "maximum({0}, {1})"),
    "minimum": (lambda m, a, b: m.minimum(a, b), "minimum({0}, {1})"),
    "where": (lambda m, a, b: m.where(a > b, a, b * 0.5), "where({0} > {1}, {0}, {1} * 0.5)"),
    # reductions (dim None: over everything, no keepdim)
    "sum": (lambda m, x, **kw: x.sum(**kw), "{0}.sum({kw})"),
    "mean": (lambda m, x, **kw: x.mean(**kw), "{0}.mean({kw})"),
    "amax": (lambda m, x, **kw: x.amax(**kw), "{0}.amax({kw})"),
    "amin": (lambda m, x, **kw: x.amin(**kw), "{0}.amin({kw})"),
    "logsumexp": (lambda m, x, **kw: m.logsumexp(x, **kw), "logsumexp({0}, {kw})"),
    "var": (lambda m, x, **kw: x.var(**kw), "{0}.var({kw})"),
    "std": (lambda m, x, **kw: x.std(**kw), "{0}.std({kw})"),
    "prod": (lambda m, x, **kw: x.prod(**kw), "{0}.prod({kw})"),
    "softmax": (lambda m, x, dim: m.softmax(x, dim), "softmax({0}, {dim})"),
    "log_softmax": (lambda m, x, dim: m.log_softmax(x, dim), "log_softmax({0}, {dim})"),
    # movement
    "reshape": (lambda m, x, shape: x.reshape(shape), "{0}.reshape({shape})"),
    "transpose": (lambda m, x, d0, d1: x.transpose(d0, d1), "{0}.transpose({d0}, {d1})"),
    "permute": (lambda m, x, perm: x.permute(*perm), "{0}.permute{perm}"),
    "slice": (lambda m, x, index: x[index], "{0}[{index_text}]"),
    "unsqueeze": (lambda m, x, dim: x.unsqueeze(dim), "{0}.unsqueeze({dim})"),
    "squeeze": (lambda m, x, dim: x.squeeze(dim), "{0}.squeeze({dim})"),
    "expand": (lambda m, x, shape: x.expand(*shape), "{0}.expand{shape}"),
    "flip": (lambda m, x, dims: m.flip(x, dims), "flip({0}, {dims})"),
    # contraction and joins
    "matmul": (lambda m, a, b: a @ b, "{0} @ {1}"),
    "sdpa": (
        lambda m, q, k, v, causal: _f(m).scaled_dot_product_attention(q, k, v, is_causal=causal),
        "scaled_dot_product_attention({0}, {1}, {2}, is_causal={causal})",
    ),
    "cat": (lambda m, *xs, dim: m.cat(list(xs), dim), "cat([{all}], {dim})"),
    "stack": (lambda m, *xs, dim: m.stack(list(xs), dim), "stack([{all}], {dim})"),
    # sorting and running (scan) operations
    "sort": (
        lambda m, x, dim, descending: m.sort(x, dim=dim, descending=descending, stable=True).values,
        "sort({0}, {dim}, descending={descending}, stable=True).values",
    ),
    "cumprod": (lambda m, x, dim: m.cumprod(x, dim), "cumprod({0}, {dim})"),
    "cummax": (lambda m, x, dim: m.cummax(x, dim).values, "cummax({0}, {dim}).values"),
    "logcumsumexp": (lambda m, x, dim: m.logcumsumexp(x, dim), "logcumsumexp({0}, {dim})"),
}

UNARY = [
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "erf",
    "exp",
    "neg",
    "abs",
    "square",
    "cube",
    "log",
    "sqrt",
    "rsqrt",
    "recip",
    "pow_frac",
    "scale",
    "shift",
    "rsub",
    "clamp",
    "relu",
    "gelu",
    "silu",
    "softplus",
    "elu",
    "leaky_relu",
    "hardtanh",
    "relu6",
    "logsigmoid",
]
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "where"]
REDUCTIONS = ["sum", "mean", "amax", "amin", "logsumexp", "var", "std", "prod"]
MOVEMENT = ["reshape", "transpose", "permute", "slice", "unsqueeze", "squeeze", "expand", "flip"]
SCANS = ["sort", "cumprod", "cummax", "logcumsumexp"]

# Ops whose result may hold exactly equal elements (saturations, selects,
# broadcasts); ops on several operands do too when one operand repeats.
_TIE_MAKERS = {"relu", "clamp", "hardtanh", "relu6", "maximum", "minimum", "where", "expand", "amax", "amin", "cummax"}

# Ops that are exact on small dyadic values (the rounded inputs): no rounding,
# so both frameworks get the same bits in any evaluation order.
_EXACT_OPS = {"neg", "abs", "square", "relu", "clamp", "hardtanh", "relu6", "add", "sub", "mul", "maximum", "minimum"}
_EXACT_OPS |= {"where", "amax", "amin", "sum", "matmul", "cat", "stack", "sort", "cummax"} | set(MOVEMENT)
# Ops whose gradient jumps at a tie or kink: in programs with rounded inputs
# they only see exact values, where ties are the same in both frameworks.
_TIE_SENSITIVE = {"abs", "relu", "clamp", "hardtanh", "relu6", "leaky_relu", "elu", "maximum", "minimum", "where"}
_TIE_SENSITIVE |= {"amax", "amin", "sort", "cummax"}

# Relative frequency of each family in a program.
FAMILIES = {
    "unary": 6,
    "binary": 4,
    "reduction": 2,
    "softmax": 1,
    "movement": 3,
    "matmul": 1,
    "attention": 1,
    "join": 1,
    "scan": 1,
}


@dataclass(frozen=True)
class Step:
    """out = OPS[op](*args, **params)."""

    out: str
    op: str
    args: tuple[str, ...]
    params: tuple[tuple[str, Any], ...] = ()
    shape: tuple[int, ...] = ()

    def text(self) -> str:
        params = dict(self.params)
        params["kw"] = ", ".join(f"{k}={v!r}" for k, v in self.params)
        if self.op == "slice":
            params["index_text"] = _index_text(params["index"])
        template = OPS[self.op][1]
        expr = template.format(*self.args, all=", ".join(self.args), **params)
        return f"{self.out} = {expr}  # {list(self.shape)}"


@dataclass
class Program:
    """A random program: inputs, steps, and the value it returns."""

    seed: int
    # Inputs rounded to multiples of 0.5: exact zeros and ties, where the
    # gradient conventions (abs at 0, clamp at its bounds, maximum of
    # equals) must be PyTorch's.
    quantized: bool = False
    inputs: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    output: str = ""

    def arrays(self) -> list[np.ndarray]:
        """The inputs' data (float64; cast by the caller), from the seed."""
        rng = np.random.default_rng([self.seed, 1])
        arrays = [np.clip(rng.standard_normal(shape), -3.0, 3.0) for _, shape in self.inputs]
        return [np.round(a * 2.0) / 2.0 for a in arrays] if self.quantized else arrays

    def weights(self, shape) -> np.ndarray:
        """Fixed weights of the loss sum(out * w), so every output element's
        gradient path counts (a plain sum of a softmax has gradient 0)."""
        rng = np.random.default_rng([self.seed, 2])
        return rng.uniform(0.5, 1.5, size=shape)

    def run(self, m, tensors):
        """Evaluate with module m (graphc or torch) on its input tensors."""
        env = {name: t for (name, _), t in zip(self.inputs, tensors)}
        for step in self.steps:
            fn = OPS[step.op][0]
            env[step.out] = fn(m, *(env[a] for a in step.args), **dict(step.params))
        return env[self.output]

    def listing(self) -> str:
        lines = [f"# seed {self.seed}" + (" (inputs rounded to multiples of 0.5)" if self.quantized else "")]
        lines += [f"{name} = input({list(shape)})" for name, shape in self.inputs]
        lines += [s.text() for s in self.steps]
        lines.append(f"return {self.output}")
        return "\n".join(lines)


def _index_text(index) -> str:
    parts = []
    for s in index:
        if isinstance(s, int):
            parts.append(str(s))
            continue
        start = "" if s.start is None else s.start
        stop = "" if s.stop is None else s.stop
        parts.append(f"{start}:{stop}" + ("" if s.step in (None, 1) else f":{s.step}"))
    return ", ".join(parts)


def _numel(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


class _Builder:
    """Grows one program; values are (name, shape, bound)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng([seed, 0])
        self.program = Program(seed)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.bounds: dict[str, float] = {}
        # Whether a value may hold exactly equal elements (see _TIE_MAKERS).
        self.tied: dict[str, bool] = {}
        # Whether a value is computed without rounding (see _EXACT_OPS).
        self.exact: dict[str, bool] = {}
        self.order: list[str] = []

    # -- values ------------------------------------------------------------
    def new_input(self, shape) -> str:
        name = f"x{len(self.program.inputs)}"
        self.program.inputs.append((name, tuple(shape)))
        quantized = self.program.quantized
        self._add(name, tuple(shape), 3.0, tied=quantized, exact=quantized)
        return name

    def _add(self, name: str, shape, bound: float, tied: bool = False, exact: bool = False) -> None:
        self.tied[name] = tied
        self.exact[name] = exact
        self.shapes[name] = tuple(shape)
        self.bounds[name] = float(bound)
        self.order.append(name)

    def emit(self, op: str, operands, result_shape, bound: float, **params) -> str | None:
        exact = all(self.exact[a] for a in operands)
        if self.program.quantized and op in _TIE_SENSITIVE and not exact:
            # An exact tie or kink hit by a rounded value: which side it
            # lands on depends on rounding (a reassociated product, libm's
            # last bit), and the gradient jumps with it.
            return None
        name = f"v{len(self.program.steps)}"
        step = Step(name, op, tuple(operands), tuple(params.items()), tuple(result_shape))
        self.program.steps.append(step)
        tied = op in _TIE_MAKERS or len(set(operands)) < len(operands) or any(self.tied[a] for a in operands)
        self._add(name, result_shape, bound, tied, exact and op in _EXACT_OPS)
        return name

    def random_shape(self, max_rank: int = 3) -> tuple[int, ...]:
        rank = int(self.rng.integers(1, max_rank + 1))
        return tuple(int(d) for d in self.rng.integers(1, 6, size=rank))

    def pick(self) -> str:
        """Mostly the newest value (programs are chains), sometimes older."""
        if self.rng.random() < 0.75:
            return self.order[-1]
        return self.order[int(self.rng.integers(len(self.order)))]

    def const(self, lo: float, hi: float) -> float:
        return round(float(self.rng.uniform(lo, hi)), 2)

    # -- families ----------------------------------------------------------
    def unary(self, x: str):
        shape, b = self.shapes[x], self.bounds[x]
        op = UNARY[int(self.rng.integers(len(UNARY)))]
        params: dict[str, Any] = {}
        if op in ("exp", "square", "cube", "pow_frac") and b > 8:
            return None
        bound = _unary_bound(op, b)
        if op in ("scale", "shift", "rsub"):
            params["c"] = self.const(-2.0, 2.0)
            bound = b * 2.0 if op == "scale" else b + 2.0
        if op == "clamp":
            lo = self.const(-1.5, 0.0)
            params.update(lo=lo, hi=round(lo + self.const(0.2, 2.0), 2))
            bound = 2.0
        if op == "gelu":
            params["approximate"] = "tanh" if self.rng.random() < 0.5 else "none"
        if op == "softplus":
            params["beta"] = float(self.rng.choice([0.5, 1.0, 2.0]))
        if op == "elu":
            params["alpha"] = float(self.rng.choice([0.5, 1.0]))
            bound = max(b, 1.0)
        if op == "leaky_relu":
            params["slope"] = float(self.rng.choice([0.01, 0.2]))
        if op in ("hardtanh", "relu6"):
            bound = 6.0
        if bound > _BOUND:
            return None
        return self.emit(op, [x], shape, bound, **params)

    def partner(self, shape) -> str:
        """A value broadcastable with `shape`: an existing one, or a new input
        whose shape drops leading dims and sets some dims to 1."""
        fits = [v for v in self.order if _broadcasts(self.shapes[v], shape)]
        if fits and self.rng.random() < 0.5:
            return fits[int(self.rng.integers(len(fits)))]
        keep = int(self.rng.integers(0, len(shape) + 1)) if shape else 0
        sub = [1 if self.rng.random() < 0.3 else d for d in shape[len(shape) - keep :]]
        return self.new_input(sub)

    def binary(self, x: str):
        op = BINARY[int(self.rng.integers(len(BINARY)))]
        y = self.partner(self.shapes[x])
        if self.rng.random() < 0.5:
            x, y = y, x
        shape = tuple(np.broadcast_shapes(self.shapes[x], self.shapes[y]))
        bx, by = self.bounds[x], self.bounds[y]
        bound = {"mul": bx * by, "div": bx, "where": max(bx, by)}.get(op, bx + by)
        return self.emit(op, [x, y], shape, bound)

    def _dims(self, shape):
        """dim= for a reduction: None, one dim, or a tuple of dims."""
        r = self.rng.random()
        if r < 0.2 or len(shape) == 0:
            return None
        if r < 0.7 or len(shape) == 1:
            return int(self.rng.integers(-len(shape), len(shape)))
        k = int(self.rng.integers(2, len(shape) + 1))
        return tuple(int(d) for d in sorted(self.rng.choice(len(shape), size=k, replace=False)))

    def reduction(self, x: str):
        shape, b = self.shapes[x], self.bounds[x]
        if not shape:
            return None
        op = REDUCTIONS[int(self.rng.integers(len(REDUCTIONS)))]
        if op == "std" and self.tied[x]:
            # std's gradient is 0 where the variance is exactly 0 and
            # (x - mean) / std where it is an ulp off 0; whether the rounded
            # variance of equal elements is exactly 0 differs between
            # PyTorch's kernels and graphc (both correct to rounding), so
            # std only sees values whose elements are distinct.
            return None
        dim = self._dims(shape)
        if op == "prod" and isinstance(dim, tuple):
            dim = dim[0]  # torch.prod takes one dim
        if op == "logsumexp" and dim is None:
            dim = tuple(range(len(shape)))  # torch.logsumexp needs dim
        params: dict[str, Any] = {}
        if dim is None:
            axes = list(range(len(shape)))
        else:
            axes = sorted({d % len(shape) for d in ((dim,) if isinstance(dim, int) else dim)})
            params.update(dim=dim, keepdim=bool(self.rng.random() < 0.4))
        n = _numel([shape[a] for a in axes])
        if op in ("var", "std"):
            params["correction"] = int(self.rng.integers(0, 2)) if n > 1 else 0
        bound = _reduction_bound(op, b, n)
        if bound > _BOUND:
            return None
        if params.get("keepdim"):
            out = [1 if i in axes else d for i, d in enumerate(shape)]
        else:
            out = [d for i, d in enumerate(shape) if i not in axes]
        return self.emit(op, [x], out, bound, **params)

    def softmax(self, x: str):
        shape = self.shapes[x]
        if not shape:
            return None
        dim = int(self.rng.integers(-len(shape), len(shape)))
        if self.rng.random() < 0.5:
            return self.emit("softmax", [x], shape, 1.0, dim=dim)
        return self.emit("log_softmax", [x], shape, 2 * self.bounds[x] + math.log(shape[dim]) + 1, dim=dim)

    def movement(self, x: str):
        shape, b = self.shapes[x], self.bounds[x]
        op = MOVEMENT[int(self.rng.integers(len(MOVEMENT)))]
        nd = len(shape)
        if op == "reshape":
            new = _factor(_numel(shape), int(self.rng.integers(1, 4)), self.rng)
            if self.rng.random() < 0.3 and len(new) > 1:
                shape_arg = (-1,) + tuple(new[1:])
            else:
                shape_arg = tuple(new)
            return self.emit(op, [x], new, b, shape=shape_arg)
        if nd == 0:
            return self.emit("unsqueeze", [x], (1,), b, dim=0)
        if op == "transpose":
            d0, d1 = (int(d) for d in self.rng.integers(-nd, nd, size=2))
            new = list(shape)
            new[d0], new[d1] = new[d1], new[d0]
            return self.emit(op, [x], new, b, d0=d0, d1=d1)
        if op == "permute":
            perm = tuple(int(p) for p in self.rng.permutation(nd))
            return self.emit(op, [x], [shape[p] for p in perm], b, perm=perm)
        if op == "slice":
            index, new = [], []
            for d in shape:
                if self.rng.random() < 0.15:  # an integer index drops the dim
                    index.append(int(self.rng.integers(-d, d)))
                    continue
                start = int(self.rng.integers(0, d))
                stop = int(self.rng.integers(start + 1, d + 1))
                step = int(self.rng.choice([1, 1, 2]))
                index.append(slice(start or None, stop if stop < d else None, step))
                new.append(len(range(start, stop, step)))
            return self.emit(op, [x], new, b, index=tuple(index))
        if op == "squeeze":
            dim = int(self.rng.integers(-nd, nd))  # a no-op unless shape[dim] == 1
            new = [d for i, d in enumerate(shape) if i != dim % nd or d != 1]
            return self.emit(op, [x], new, b, dim=dim)
        if op == "unsqueeze":
            dim = int(self.rng.integers(-nd - 1, nd + 1))
            new = list(shape)
            new.insert(dim % (nd + 1), 1)
            return self.emit(op, [x], new, b, dim=dim)
        if op == "expand":
            new = tuple(int(self.rng.integers(2, 4)) if d == 1 else d for d in shape)
            if self.rng.random() < 0.4:
                new = (int(self.rng.integers(2, 4)),) + new
            if _numel(new) > _MAX_NUMEL:
                return None
            return self.emit(op, [x], new, b, shape=new)
        dims = tuple(int(d) for d in sorted(self.rng.choice(nd, size=int(self.rng.integers(1, nd + 1)), replace=False)))
        return self.emit("flip", [x], shape, b, dims=dims)

    def matmul(self, x: str):
        shape, b = self.shapes[x], self.bounds[x]
        if not shape:
            return None
        if len(shape) >= 2 and self.rng.random() < 0.3:
            # x @ x^T: the same value on both sides.
            t = self.emit("transpose", [x], shape[:-2] + (shape[-1], shape[-2]), b, d0=-1, d1=-2)
            bound = b * b * shape[-1]
            return self.emit("matmul", [x, t], _matmul_shape(shape, self.shapes[t]), bound) if bound < _BOUND else None
        n = int(self.rng.integers(1, 5))
        r = self.rng.random()
        if r < 0.2 and len(shape) >= 2:  # x @ w, w a batch [nb, k, n] broadcast against x's batch
            if len(shape) >= 3:
                nb = shape[-3] if self.rng.random() < 0.7 else 1
            else:
                nb = int(self.rng.integers(2, 4))
            a, w = x, self.new_input((nb, shape[-1], n))
            k = shape[-1]
        elif r < 0.8:  # x @ w, w a new [k, n] or [k] input
            a, w = x, self.new_input((shape[-1], n) if self.rng.random() < 0.8 else (shape[-1],))
            k = shape[-1]
        else:  # w @ x, w a new [n, rows of x] input
            rows = shape[-2] if len(shape) >= 2 else shape[0]
            a, w = self.new_input((n, rows)), x
            k = rows
        bound = b * 3.0 * k
        out = _matmul_shape(self.shapes[a], self.shapes[w])
        if bound > _BOUND or _numel(out) > _MAX_NUMEL:
            return None
        return self.emit("matmul", [a, w], out, bound)

    def attention(self, x: str):
        """scaled_dot_product_attention with x as the queries and new keys
        and values (the output is a weighted mean of the values)."""
        shape = self.shapes[x]
        if len(shape) < 2 or shape[-1] == 0 or self.bounds[x] > 10:
            return None
        s, ev = int(self.rng.integers(1, 5)), int(self.rng.integers(1, 4))
        k = self.new_input(shape[:-2] + (s, shape[-1]))
        v = self.new_input(shape[:-2] + (s, ev))
        out = shape[:-1] + (ev,)
        if _numel(out) > _MAX_NUMEL:
            return None
        return self.emit("sdpa", [x, k, v], out, self.bounds[v], causal=bool(self.rng.random() < 0.4))

    def join(self, x: str):
        shape = self.shapes[x]
        if not shape:
            return None
        nd = len(shape)
        count = int(self.rng.integers(2, 4))
        if self.rng.random() < 0.5:
            dim = int(self.rng.integers(-nd, nd))
            parts, sizes = [x], [shape[dim]]
            for _ in range(count - 1):
                other = list(shape)
                other[dim] = int(self.rng.integers(1, 4))
                same = [v for v in self.order if self.shapes[v] == tuple(other)]
                reuse = same and self.rng.random() < 0.6
                parts.append(same[int(self.rng.integers(len(same)))] if reuse else self.new_input(other))
                sizes.append(other[dim])
            new = list(shape)
            new[dim] = sum(sizes)
            if _numel(new) > _MAX_NUMEL:
                return None
            bound = max(self.bounds[p] for p in parts)
            return self.emit("cat", parts, new, bound, dim=dim)
        dim = int(self.rng.integers(-nd - 1, nd + 1))
        same = [v for v in self.order if self.shapes[v] == shape]
        parts = [x] + [same[int(self.rng.integers(len(same)))] for _ in range(count - 1)]
        new = list(shape)
        new.insert(dim % (nd + 1), count)
        if _numel(new) > _MAX_NUMEL:
            return None
        return self.emit("stack", parts, new, max(self.bounds[p] for p in parts), dim=dim)

    def scan(self, x: str):
        shape, b = self.shapes[x], self.bounds[x]
        if not shape:
            return None
        op = SCANS[int(self.rng.integers(len(SCANS)))]
        dim = int(self.rng.integers(-len(shape), len(shape)))
        n = shape[dim]
        if op == "sort":
            return self.emit(op, [x], shape, b, dim=dim, descending=bool(self.rng.random() < 0.5))
        if op == "cumprod":
            bound = _reduction_bound("prod", b, n)
        else:
            bound = b + math.log(n) + 1 if op == "logcumsumexp" else b
        return self.emit(op, [x], shape, bound, dim=dim) if bound <= _BOUND else None


_SAME_BOUND = {"neg", "abs", "relu", "gelu", "silu", "leaky_relu", "elu", "hardtanh"}


def _unary_bound(op: str, b: float) -> float:
    """A bound on |op(x)| for |x| <= b (b <= 8 for the growing ones)."""
    if op == "exp":
        return math.exp(b)
    if op in ("square", "cube"):
        return b ** (2 if op == "square" else 3)
    if op == "pow_frac":
        return (b + 0.5) ** 1.5
    if op == "log":
        return abs(math.log(b + 0.5)) + 1.0
    if op in ("sqrt", "softplus", "logsigmoid"):
        return b + 1.0
    if op == "rsqrt":
        return 1.5
    return b if op in _SAME_BOUND else 1.0


def _reduction_bound(op: str, b: float, n: int) -> float:
    """A bound on |op(x)| over n elements with |x| <= b."""
    if op == "sum":
        return b * n
    if op == "prod":
        return math.inf if n * math.log(max(b, 1.0)) > math.log(_BOUND) else max(b, 1.0) ** n
    if op == "var":
        return b * b * n
    if op == "std":
        return b * math.sqrt(n)
    if op == "logsumexp":
        return b + math.log(n) + 1
    return b


def _matmul_shape(a, b) -> tuple[int, ...]:
    if len(a) == 1 and len(b) == 1:
        return ()
    if len(a) == 1:
        return tuple(b[:-2]) + (b[-1],)
    if len(b) == 1:
        return tuple(a[:-1])
    batch = tuple(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))
    return batch + (a[-2], b[-1])


def _broadcasts(small, shape) -> bool:
    if len(small) > len(shape):
        return False
    return all(s in (1, d) for s, d in zip(small[::-1], shape[::-1]))


def _factor(n: int, rank: int, rng) -> list[int]:
    """A random shape of `rank` dims with n elements."""
    dims = []
    for _ in range(rank - 1):
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        d = int(rng.choice(divisors))
        dims.append(d)
        n //= d
    return dims + [n]


def generate(seed: int, max_steps: int = 10) -> Program:
    """The program of `seed`: 1-2 inputs, then 2..max_steps random steps."""
    b = _Builder(seed)
    b.program.quantized = bool(b.rng.random() < 0.25)
    for _ in range(int(b.rng.integers(1, 3))):
        b.new_input(b.random_shape())
    families = list(FAMILIES)
    weights = np.array([FAMILIES[f] for f in families], dtype=float)
    target = int(b.rng.integers(2, max_steps + 1))
    attempts = 0
    while len(b.program.steps) < target and attempts < 10 * max_steps:
        attempts += 1
        family = families[int(b.rng.choice(len(families), p=weights / weights.sum()))]
        getattr(b, family)(b.pick())
    if not b.program.steps:
        b.unary(b.order[-1]) or b.emit("sin", [b.order[-1]], b.shapes[b.order[-1]], 1.0)
    b.program.output = b.program.steps[-1].out
    return b.program
