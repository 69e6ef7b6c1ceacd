"""Random numbers from a counter-based generator whose state is a tensor.

A `Generator` keeps its state in an int64 scalar Tensor (`_state`). Each
random op reads the state as the key of one RANDOM primitive (uniform f32 in
[0, 1)) and then increments the state in place. Eagerly that is a plain
counter; under `graphc.compile` the state tensor is captured like a
parameter and its increment is a state write, so a compiled step draws
fresh numbers on every call. Numbers differ from PyTorch's, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from graphc import _creation, _trace, autograd
from graphc import _elementwise as ew
from graphc import _tensor_core as _t
from graphc.errors import at_user_line
from graphc.ir import dtypes
from graphc.ir.dtypes import DType
from graphc.ir.ops import Op

Tensor = _t.Tensor


def _key_of(seed: int) -> int:
    # Seeds are 2**20 draws apart; +1 keeps key 0 (all-zero bits) unused.
    return ((int(seed) + 1) << 20) % 2**63


class Generator:
    """A random number generator. `Generator().manual_seed(0)`."""

    def __init__(self, device="cpu"):
        self._seed = 67280421310721
        self._state_tensor: Tensor | None = None

    @property
    def _state(self) -> Tensor:
        """The state: an int64 scalar tensor, updated in place by each draw."""
        # Made on first use: the default generator exists from import time,
        # before graphc/_tensor.py has registered the public Tensor class.
        if self._state_tensor is None:
            self._state_tensor = Tensor._wrap(np.array(_key_of(self._seed), dtype=np.int64))
        return self._state_tensor

    def manual_seed(self, seed: int) -> Generator:
        """Reset the state to `seed` (in place, so compiled functions see it)."""
        self._seed = int(seed)
        with autograd.no_grad():
            self._state.fill_(_key_of(self._seed))
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy % (2**62))
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> Tensor:
        return self._state.clone()

    def set_state(self, state: Tensor) -> None:
        with autograd.no_grad():
            self._state.copy_(state)

    def _next_key(self) -> Tensor:
        key = self._state.clone()
        with autograd.no_grad():
            self._state.add_(1)
        return key


default_generator = Generator()
_trace.name_state(lambda: default_generator._state, "rng_state")


def manual_seed(seed: int) -> Generator:
    """Seed the default generator."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    return default_generator.get_state()


def set_rng_state(state: Tensor) -> None:
    default_generator.set_state(state)


def _gen(generator) -> Generator:
    return default_generator if generator is None else generator


def _uniform01(shape: tuple, generator=None) -> Tensor:
    key = _gen(generator)._next_key()
    with autograd.no_grad():
        return Tensor._emit(Op.RANDOM, [key], {"shape": tuple(shape)})


def _float_dtype(dtype) -> DType:
    dtype = dtype or _t.get_default_dtype()
    if not dtype.is_float:
        raise TypeError(f"random floats need a floating-point dtype, got {dtype!r}")
    return dtype


def _finish(x: Tensor, dtype: DType, requires_grad: bool) -> Tensor:
    x = ew.cast(x, dtype)
    x._requires_grad = False
    return x.requires_grad_(requires_grad) if requires_grad else x


@_creation.placed
def rand(
    *size,
    generator=None,
    dtype=None,
    device=None,
    requires_grad: bool = False,
    out=None,
) -> Tensor:
    """Uniform random numbers in [0, 1)."""
    _creation._check_device(device)
    with autograd.no_grad():
        x = _uniform01(_creation._size(size, "rand"), generator)
    return _finish(x, _float_dtype(dtype), requires_grad)


def _normal01(shape: tuple, generator=None) -> Tensor:
    # Box-Muller: two uniforms give one standard normal. 1 - u lies in
    # (0, 1], so the log is finite.
    u1 = _uniform01(shape, generator)
    u2 = _uniform01(shape, generator)
    radius = ew.sqrt(ew.mul(ew.log(ew.sub(1.0, u1)), -2.0))
    return ew.mul(radius, ew.cos(ew.mul(u2, 2 * math.pi)))


@_creation.placed
def randn(
    *size,
    generator=None,
    dtype=None,
    device=None,
    requires_grad: bool = False,
    out=None,
) -> Tensor:
    """Standard normal random numbers."""
    _creation._check_device(device)
    with autograd.no_grad():
        x = _normal01(_creation._size(size, "randn"), generator)
    return _finish(x, _float_dtype(dtype), requires_grad)


@_creation.placed
def randint(
    low=0,
    high=None,
    size=None,
    *,
    generator=None,
    dtype=None,
    device=None,
    requires_grad: bool = False,
) -> Tensor:
    """Random integers in [low, high): `randint(high, size)` or `randint(low, high, size)`."""
    _creation._check_device(device)
    if size is None:
        if not isinstance(high, (tuple, list)):
            raise TypeError(at_user_line("randint() missing required argument 'size'"))
        low, high, size = 0, low, high
    elif high is None:  # randint(10, size=(3,))
        low, high = 0, low
    if high <= low:
        raise RuntimeError(
            at_user_line(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
        )
    with autograd.no_grad():
        u = ew.cast(
            _uniform01(
                _creation._size((size,), "randint"),
                generator,
            ),
            dtypes.float64,
        )
        x = ew.add(ew.floor(ew.mul(u, float(high - low))), float(low))
        return ew.cast(x, dtype or dtypes.int64)


@_creation.placed
def rand_like(x: Tensor, *, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    return rand(
        tuple(x.shape),
        generator=generator,
        dtype=dtype or x.dtype,
        requires_grad=requires_grad,
    )


@_creation.placed
def randn_like(x: Tensor, *, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    return randn(
        tuple(x.shape),
        generator=generator,
        dtype=dtype or x.dtype,
        requires_grad=requires_grad,
    )


@_creation.placed
def randint_like(x: Tensor, low, high=None, *, dtype=None, device=None, generator=None) -> Tensor:
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(x.shape), generator=generator, dtype=dtype or x.dtype)


@_creation.placed
def randperm(n: int, *, generator=None, dtype=None, device=None) -> Tensor:
    """A random permutation of 0..n-1 (eager: it sorts random keys with numpy)."""
    keys = rand(n, generator=generator, dtype=dtypes.float32)
    order = np.argsort(keys.numpy(), kind="stable")
    return Tensor._wrap(order.astype((dtype or dtypes.int64).np))


def bernoulli(p: Tensor, generator=None, *, p_scalar=None) -> Tensor:
    """1.0 with probability `p` (elementwise), else 0.0."""
    with autograd.no_grad():
        u = _uniform01(tuple(p.shape), generator)
        return ew.cast(ew.lt(u, p), p.dtype)


@_creation.placed
def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None) -> Tensor:
    """Normal samples; `mean`/`std` may be tensors (their shape is used)."""
    if size is None:
        shape = ew.broadcast_shapes(
            *[tuple(v.shape) for v in (mean, std) if isinstance(v, Tensor)],
            opname="normal",
        )
    else:
        shape = _creation._size((size,), "normal")
    with autograd.no_grad():
        z = _normal01(shape, generator)
        x = ew.add(ew.mul(z, std), mean)
    return ew.cast(x, dtype) if dtype is not None else x


def uniform_(x: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    """Fill `x` in place with uniform numbers in [a, b)."""
    with autograd.no_grad():
        u = _uniform01(tuple(x.shape), generator)
        return x._assign(ew.cast(ew.add(ew.mul(u, b - a), a), x.dtype), "uniform_")


def normal_(x: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    """Fill `x` in place with normal numbers."""
    with autograd.no_grad():
        z = _normal01(tuple(x.shape), generator)
        return x._assign(ew.cast(ew.add(ew.mul(z, std), mean), x.dtype), "normal_")


def bernoulli_(x: Tensor, p: float = 0.5, *, generator=None) -> Tensor:
    with autograd.no_grad():
        u = _uniform01(tuple(x.shape), generator)
        return x._assign(ew.cast(ew.lt(u, p), x.dtype), "bernoulli_")


def random_(x: Tensor, low: int = 0, high=None, *, generator=None) -> Tensor:
    if high is None:
        low, high = 0, low if low else 2**24
    with autograd.no_grad():
        return x._assign(
            ew.cast(randint(low, high, tuple(x.shape), generator=generator), x.dtype),
            "random_",
        )


def exponential_(x: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    with autograd.no_grad():
        u = _uniform01(tuple(x.shape), generator)
        return x._assign(
            ew.cast(ew.div(ew.neg(ew.log(ew.sub(1.0, u))), lambd), x.dtype),
            "exponential_",
        )


def multinomial(probs: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Sample indices by weight (eager only; inverse CDF with numpy)."""
    p = probs.numpy(force=True).astype(np.float64)
    rows = p.reshape(-1, p.shape[-1])
    u = rand(rows.shape[0], num_samples, generator=generator, dtype=dtypes.float64).numpy()
    out = np.empty((rows.shape[0], num_samples), np.int64)
    for r, w in enumerate(rows):
        w = w.copy()
        for s in range(num_samples):
            cdf = np.cumsum(w / w.sum())
            k = int(min(np.searchsorted(cdf, u[r, s], side="right"), len(w) - 1))
            out[r, s] = k
            if not replacement:
                w[k] = 0.0
    return Tensor._wrap(out.reshape(p.shape[:-1] + (num_samples,)))
