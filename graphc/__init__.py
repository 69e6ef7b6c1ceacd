# ruff: noqa: F401 -- this module re-exports the public API.
"""graphc: PyTorch's user API on a static-graph compiler.

`import graphc as torch` and tutorial code runs eagerly (numpy reference
semantics, define-by-run autograd). Wrap a function or module in
`graphc.compile` and it is traced into one IR graph, optimized and compiled.

The submodules with the op implementations are internal (`graphc._*`);
everything public is re-exported here under PyTorch's names.
"""

from __future__ import annotations

# The IR must import without the frontend (passes import graphc.ir), so
# nothing here runs at graphc.ir import time beyond this package's own.
from graphc.ir import dtypes as _dtypes
from graphc.ir.dtypes import DType as dtype

float32 = float = _dtypes.float32
float64 = double = _dtypes.float64
float16 = half = _dtypes.float16
int64 = long = _dtypes.int64
int32 = int = _dtypes.int32
int16 = short = _dtypes.int16
int8 = _dtypes.int8
uint8 = _dtypes.uint8
bool = _dtypes.bool_

from graphc import accelerator, autograd, backends, cuda, errors, random
from graphc._creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    logspace,
    ones,
    ones_like,
    scalar_tensor,
    tensor,
    zeros,
    zeros_like,
)
from graphc._elementwise import (
    abs,
    absolute,
    add,
    addcdiv,
    addcmul,
    allclose,
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    broadcast_shapes,
    ceil,
    clamp,
    clip,
    cos,
    cosh,
    div,
    divide,
    eq,
    equal,
    erf,
    exp,
    exp2,
    expm1,
    fix,
    float_power,
    floor,
    floor_divide,
    fmax,
    fmin,
    fmod,
    frac,
    ge,
    greater,
    greater_equal,
    gt,
    heaviside,
    hypot,
    isclose,
    isfinite,
    isinf,
    isnan,
    le,
    lerp,
    less,
    less_equal,
    log,
    log1p,
    log2,
    log10,
    logaddexp,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    logsigmoid,
    lt,
    maximum,
    minimum,
    mul,
    multiply,
    nan_to_num,
    ne,
    neg,
    negative,
    not_equal,
    pow,
    reciprocal,
    relu,
    remainder,
    result_type,
    round,
    rsqrt,
    sgn,
    sigmoid,
    sign,
    sin,
    sinh,
    sqrt,
    square,
    sub,
    subtract,
    tan,
    tanh,
    true_divide,
    trunc,
    where,
)
from graphc._indexing import (
    argwhere,
    gather,
    index_select,
    masked_fill,
    masked_select,
    nonzero,
    scatter,
    scatter_add,
    take_along_dim,
)
from graphc._linalg import dist, norm
from graphc._more_api import (
    are_deterministic_algorithms_enabled,
    asarray,
    bartlett_window,
    blackman_window,
    can_cast,
    frombuffer,
    get_num_interop_threads,
    hamming_window,
    hann_window,
    is_deterministic_algorithms_warn_only_enabled,
    is_storage,
    kaiser_window,
    promote_types,
    range,
    set_num_interop_threads,
    set_printoptions,
    use_deterministic_algorithms,
)
from graphc._more_linalg import (
    addbmm,
    addmv,
    addr,
    aminmax,
    baddbmm,
    bincount,
    cdist,
    chain_matmul,
    corrcoef,
    cov,
    cross,
    cumulative_trapezoid,
    ger,
    gradient,
    histc,
    isin,
    matrix_power,
    renorm,
    trapezoid,
    trapz,
    vander,
)
from graphc._more_math import (
    acos,
    acosh,
    angle,
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    bitwise_left_shift,
    bitwise_right_shift,
    conj,
    conj_physical,
    copysign,
    deg2rad,
    digamma,
    erfc,
    imag,
    is_complex,
    is_conj,
    is_neg,
    is_nonzero,
    isneginf,
    isposinf,
    isreal,
    ldexp,
    lgamma,
    logaddexp2,
    logit,
    mvlgamma,
    positive,
    rad2deg,
    real,
    resolve_conj,
    resolve_neg,
    signbit,
    sinc,
    xlogy,
)
from graphc._more_methods import layout, strided
from graphc._more_shape import (
    adjoint,
    alias_copy,
    cartesian_prod,
    combinations,
    detach_copy,
    diag_embed,
    diagflat,
    diagonal_copy,
    diagonal_scatter,
    dsplit,
    expand_copy,
    hsplit,
    index_put,
    masked_scatter,
    meshgrid,
    narrow_copy,
    permute_copy,
    ravel,
    select_copy,
    select_scatter,
    slice_copy,
    slice_scatter,
    split_copy,
    split_with_sizes_copy,
    squeeze_copy,
    t_copy,
    take,
    tensor_split,
    transpose_copy,
    tril_indices,
    triu_indices,
    unbind_copy,
    unfold_copy,
    unravel_index,
    unsafe_chunk,
    unsafe_split,
    unsqueeze_copy,
    view_copy,
    vsplit,
)
from graphc._reductions import (
    addmm,
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    bmm,
    count_nonzero,
    cumsum,
    dot,
    einsum,
    inner,
    log_softmax,
    logsumexp,
    matmul,
    max,
    mean,
    min,
    mm,
    mv,
    nanmean,
    nansum,
    outer,
    prod,
    softmax,
    std,
    std_mean,
    sum,
    var,
    var_mean,
    vdot,
)
from graphc._shape import (
    atleast_1d,
    atleast_2d,
    atleast_3d,
    block_diag,
    broadcast_tensors,
    broadcast_to,
    cat,
    chunk,
    clone,
    column_stack,
    concat,
    concatenate,
    diag,
    diagonal,
    diff,
    dstack,
    flatten,
    flip,
    fliplr,
    flipud,
    hstack,
    kron,
    moveaxis,
    movedim,
    narrow,
    permute,
    repeat_interleave,
    reshape,
    roll,
    rot90,
    select,
    split,
    squeeze,
    stack,
    swapaxes,
    swapdims,
    t,
    tensordot,
    tile,
    transpose,
    tril,
    triu,
    unbind,
    unflatten,
    unsqueeze,
    vstack,
)
from graphc.autograd import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from graphc.compile import compile
from graphc.device import device, get_default_device, set_default_device
from graphc.random import (
    Generator,
    bernoulli,
    get_rng_state,
    initial_seed,
    manual_seed,
    multinomial,
    normal,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    seed,
    set_rng_state,
)
from graphc.tensor import Size, Tensor, get_default_dtype, set_default_dtype
from graphc.trace import TracedProgram, trace, trace_program


def is_inference(x: Tensor) -> builtins.bool:  # noqa: F821
    """False: graphc's inference_mode is no_grad, so no tensor is an inference tensor."""
    return x.is_inference()


def is_tensor(obj):
    return isinstance(obj, Tensor)


row_stack = vstack
FloatTensor = DoubleTensor = LongTensor = IntTensor = BoolTensor = ByteTensor = Tensor


def is_floating_point(x: Tensor) -> builtins.bool:  # noqa: F821
    return x.is_floating_point()


def numel(x: Tensor) -> builtins.int:  # noqa: F821
    return x.numel()


def detach(x: Tensor) -> Tensor:
    return x.detach()


def _lazy(name: str):
    import importlib

    return importlib.import_module(f"graphc.{name}")


def __getattr__(name: str):
    # Heavier subsystems load on first use, keeping `import graphc` light and
    # free of import cycles with passes/ and runtime/.
    if name in ("linalg", "nn", "optim", "utils", "vision", "serialization", "onnx", "hub", "profiler"):
        return _lazy(name)
    if name in ("celu", "hardshrink", "prelu", "selu", "threshold"):
        # torch.selu and friends: the activations of graphc.nn.functional.
        return getattr(_lazy("nn.functional"), name)
    if name in ("save", "load"):
        return getattr(_lazy("serialization"), name)
    if name in ("cosine_similarity", "pairwise_distance", "pixel_shuffle", "pixel_unshuffle"):
        # torch.* aliases of these torch.nn.functional functions.
        return getattr(_lazy("nn").functional, name)
    if name in ("func", "vmap"):
        # torch.func's transforms; torch.vmap is torch.func.vmap.
        module = _lazy("func")
        return module if name == "func" else module.vmap
    if name in ("set_num_threads", "get_num_threads"):
        # Threads of compiled CPU programs, like torch.set_num_threads.
        import runtime.cpu

        return getattr(runtime.cpu, name)
    from graphc._missing import missing

    raise missing("torch", name, globals())


__version__ = "0.1.0"

# Sorting, order statistics, running (scan) operations and index updates;
# `out=` on the common functions (graphc/_out.py): the result is written
# into the given tensor(s).
from graphc._out import accepts_out as _accepts_out
from graphc._scans import cummax, cummin, cumprod, logcumsumexp
from graphc._scatter import index_add, index_copy, index_fill, scatter_reduce
from graphc._sorting import (
    argsort,
    bucketize,
    kthvalue,
    median,
    mode,
    msort,
    nanmedian,
    searchsorted,
    sort,
    topk,
    unique,
)

for _name in (
    "abs", "add", "addmm", "amax", "amin", "arange", "argmax", "argmin", "bmm", "bucketize", "cat", "clamp",
    "concat", "concatenate", "cos", "cummax", "cummin", "cumprod", "cumsum", "div", "dot", "exp", "floor_divide",
    "full", "gather", "index_select", "kthvalue", "linspace", "log", "logcumsumexp", "logsumexp", "matmul",
    "max", "maximum", "mean", "median", "min", "minimum", "mm", "msort", "mul", "mv", "nanmedian", "neg", "ones",
    "pow", "prod", "remainder", "searchsorted", "sigmoid", "sin", "sort", "sqrt", "stack", "std", "sub", "sum",
    "tanh", "topk", "true_divide", "var", "where", "zeros",
):  # fmt: skip
    globals()[_name] = _accepts_out(globals()[_name])
del _name
