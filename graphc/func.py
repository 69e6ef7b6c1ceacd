"""`graphc.func`: function transforms with torch.func's names.

`grad`, `grad_and_value`, `vjp`, `jacrev`, `jacfwd` and `hessian` are built
on graphc's reverse-mode autograd (`graphc.autograd.grad`): each call runs
the function once on inputs that require grad and differentiates it. The
transforms nest (`grad(grad(f))`): the inner one keeps the autograd history
when its inputs already carry one. `jacfwd` computes the same Jacobian as
`jacrev` (graphc has no forward-mode AD): one reverse pass per output
element.

`vmap` is a loop: it calls the function once per index of the mapped
dimension and stacks the results. It gives the same values as torch.vmap
for functions without side effects, at the speed of a Python loop (under
graphc.compile the loop is traced into one program).

`functional_call` runs a module with some parameters and buffers replaced.
"""

from __future__ import annotations

import functools

from graphc import autograd


def _tensor_class():
    from graphc._tensor import Tensor

    return Tensor


# ---------------------------------------------------------------------------
# pytrees of tensors: tuples, lists and dicts


def _flatten(obj) -> tuple[list, object]:
    """The tensor leaves of `obj` and a spec to rebuild it."""
    Tensor = _tensor_class()
    if isinstance(obj, Tensor):
        return [obj], None
    if isinstance(obj, (tuple, list)):
        leaves, specs = [], []
        for v in obj:
            lv, s = _flatten(v)
            leaves += lv
            specs.append((len(lv), s))
        return leaves, (type(obj), specs)
    if isinstance(obj, dict):
        leaves, specs = [], []
        for k, v in obj.items():
            lv, s = _flatten(v)
            leaves += lv
            specs.append((k, len(lv), s))
        return leaves, (dict, specs)
    raise TypeError(f"expected a Tensor or a tuple, list or dict of Tensors, got {type(obj).__name__}")


def _unflatten(leaves: list, spec):
    if spec is None:
        return leaves[0]
    kind, specs = spec
    if kind is dict:
        out, i = {}, 0
        for k, n, s in specs:
            out[k] = _unflatten(leaves[i : i + n], s)
            i += n
        return out
    items, i = [], 0
    for n, s in specs:
        items.append(_unflatten(leaves[i : i + n], s))
        i += n
    return kind(items)


def _argnums(argnums, n_args: int, api: str) -> tuple:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise RuntimeError(f"{api}: argnums must be non-empty")
    for a in nums:
        if not isinstance(a, int):
            raise RuntimeError(f"{api}: argnums must be int or Tuple[int, ...], got: {type(a).__name__}")
        if not -n_args <= a < n_args:
            raise RuntimeError(
                f"{api}: Got argnums={a}, but only {n_args} positional inputs. Please pass argnums < {n_args}"
            )
    return nums


def _prepare(x):
    """`x` as a differentiable input: itself when it already carries
    autograd history (a nested transform, a user's leaf), else a detached
    copy that requires grad."""
    if x.requires_grad:
        return x.view_as(x) if x.is_leaf else x
    if not x.dtype.is_float:
        raise RuntimeError(f"only Tensors of floating point dtype can require gradients (got {x.dtype!r})")
    return x.detach().requires_grad_(True)


def _diff_inputs(args: tuple, nums: tuple):
    """(new args, per argnum (leaves, spec), flat leaves, create_graph)."""
    args = list(args)
    parts, flat, create = [], [], False
    for a in nums:
        leaves, spec = _flatten(args[a])
        create = create or any(t.requires_grad for t in leaves)
        leaves = [_prepare(t) for t in leaves]
        args[a] = _unflatten(leaves, spec)
        parts.append((len(leaves), spec))
        flat += leaves
    return tuple(args), parts, flat, create


def _split(grads, parts: list, single: bool):
    out, i = [], 0
    for n, spec in parts:
        out.append(_unflatten(list(grads[i : i + n]), spec))
        i += n
    return out[0] if single else tuple(out)


def _maybe_detach(obj, create: bool):
    if create:
        return obj
    leaves, spec = _flatten(obj)
    return _unflatten([t.detach() for t in leaves], spec)


def _aux_detached(aux, create: bool):
    try:
        return _maybe_detach(aux, create)
    except TypeError:
        return aux  # non-tensor auxiliary data is returned as is


# ---------------------------------------------------------------------------
# grad, grad_and_value, vjp


def grad_and_value(func, argnums=0, has_aux: bool = False):
    """A function returning `(gradient, value)` of scalar-valued `func`
    with respect to the positional arguments `argnums` (torch.func.grad_and_value).
    With `has_aux`, `func` returns `(value, aux)` and the result is
    `(gradient, (value, aux))`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        Tensor = _tensor_class()
        nums = _argnums(argnums, len(args), "grad_and_value(f)(*args)")
        with autograd.enable_grad():
            args, parts, flat, create = _diff_inputs(args, nums)
            out = func(*args, **kwargs)
            aux = None
            if has_aux:
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise RuntimeError(
                        "grad_and_value(f)(*args): output of function f should be a tuple: (output, aux) "
                        "if has_aux is True"
                    )
                out, aux = out
            if not isinstance(out, Tensor):
                raise RuntimeError(
                    f"grad_and_value(f)(*args): Expected f(*args) to return a Tensor, got {type(out).__name__}"
                )
            if out.numel() != 1 or out.dim() != 0:
                raise RuntimeError(
                    f"grad_and_value(f)(*args): Expected f(*args) to return a scalar Tensor, got tensor with "
                    f"{out.dim()} dims. Maybe you wanted to use the vjp or jacrev APIs instead?"
                )
            if out.requires_grad:
                grads = autograd.grad(out, flat, create_graph=create, allow_unused=True, materialize_grads=True)
            else:
                grads = tuple(t.new_zeros(t.shape) for t in flat)
        g = _split(grads, parts, isinstance(argnums, int))
        value = out if create else out.detach()
        if has_aux:
            return g, (value, _aux_detached(aux, create))
        return g, value

    return wrapper


def grad(func, argnums=0, has_aux: bool = False):
    """A function computing the gradient of scalar-valued `func` with
    respect to its positional arguments `argnums` (torch.func.grad); with
    `has_aux`, `func` returns `(value, aux)` and the result is `(grad, aux)`.

    >>> import graphc
    >>> from graphc.func import grad
    >>> grad(lambda x: (x * x).sum())(graphc.tensor([1.0, 2.0]))
    tensor([2., 4.])
    """
    gv = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(func, *primals, has_aux: bool = False):
    """`(output, vjp_fn)` (with `has_aux`: `(output, vjp_fn, aux)`):
    `vjp_fn(cotangents)` returns the vector-Jacobian product, one gradient
    per primal, as a tuple (torch.func.vjp)."""
    with autograd.enable_grad():
        args, parts, flat, create = _diff_inputs(primals, tuple(range(len(primals))))
        out = func(*args)
        aux = None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise RuntimeError("vjp(f, *primals): output of function f should be a tuple: (output, aux)")
            out, aux = out
    outs, out_spec = _flatten(out)

    def vjp_fn(cotangents):
        cots, cot_spec = _flatten(cotangents)
        if len(cots) != len(outs):
            raise RuntimeError(
                f"Expected pytree structure of cotangents to be the same as pytree structure of outputs to the "
                f"function: {len(outs)} tensors, got {len(cots)}"
            )
        for o, c in zip(outs, cots):
            if tuple(o.shape) != tuple(c.shape):
                raise RuntimeError(
                    f"Mismatch in shape: grad_output has a shape of {list(c.shape)} and output has a shape of "
                    f"{list(o.shape)}"
                )
        pairs = [(o, c) for o, c in zip(outs, cots) if o.requires_grad]
        with autograd.enable_grad():
            if pairs:
                grads = autograd.grad(
                    [o for o, _ in pairs],
                    flat,
                    [c for _, c in pairs],
                    retain_graph=True,
                    create_graph=create,
                    allow_unused=True,
                    materialize_grads=True,
                )
            else:
                grads = tuple(t.new_zeros(t.shape) for t in flat)
        return tuple(_split(grads, parts, False))

    result = _maybe_detach(out, create)
    if has_aux:
        return result, vjp_fn, _aux_detached(aux, create)
    return result, vjp_fn


# ---------------------------------------------------------------------------
# Jacobians


def jacrev(func, argnums=0, has_aux: bool = False):
    """A function computing the Jacobian of `func` (one Tensor output) with
    respect to the arguments `argnums`, of shape `output.shape +
    input.shape`, by one reverse pass per output element (torch.func.jacrev)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import graphc

        nums = _argnums(argnums, len(args), "jacrev(f)(*args)")
        with autograd.enable_grad():
            args, parts, flat, create = _diff_inputs(args, nums)
            out = func(*args, **kwargs)
            aux = None
            if has_aux:
                out, aux = out
            if not isinstance(out, _tensor_class()):
                raise RuntimeError("jacrev(f)(*args): f must return a single Tensor (or (Tensor, aux) with has_aux)")
            n = out.numel()
            rows = [[] for _ in flat]
            basis = graphc.eye(n, dtype=out.dtype, device=out.device) if n else None
            for k in range(n):
                e = basis[k].reshape(out.shape)
                gs = autograd.grad(
                    out, flat, e, retain_graph=True, create_graph=create, allow_unused=True, materialize_grads=True
                )
                for r, g in zip(rows, gs):
                    r.append(g)
            jac = []
            for t, r in zip(flat, rows):
                if r:
                    j = graphc.stack(r).reshape(tuple(out.shape) + tuple(t.shape))
                else:
                    j = t.new_zeros(tuple(out.shape) + tuple(t.shape))
                jac.append(j if create else j.detach())
        result = _split(jac, parts, isinstance(argnums, int))
        return (result, _aux_detached(aux, create)) if has_aux else result

    return wrapper


def jacfwd(func, argnums=0, has_aux: bool = False, *, randomness: str = "error"):
    """The Jacobian of `func` as torch.func.jacfwd gives it; graphc has no
    forward-mode AD, so this computes it in reverse mode (as `jacrev`)."""
    return jacrev(func, argnums, has_aux)


def hessian(func, argnums=0):
    """The Hessian of scalar-valued `func` with respect to `argnums`
    (torch.func.hessian): the Jacobian of its gradient."""
    return jacrev(jacrev(func, argnums), argnums)


# ---------------------------------------------------------------------------
# vmap


def _dims_for(in_dims, args: tuple) -> list:
    if isinstance(in_dims, int) or in_dims is None:
        return [in_dims] * len(args)
    in_dims = tuple(in_dims)
    if len(in_dims) != len(args):
        raise ValueError(
            f"vmap(f, in_dims={in_dims}, ...)(<inputs>): in_dims is not compatible with the structure of "
            f"`inputs`. in_dims has structure of length {len(in_dims)} but inputs has {len(args)} elements."
        )
    return list(in_dims)


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """`func` mapped over dimension `in_dims` of its positional arguments,
    results stacked along `out_dims` (torch.vmap). `in_dims` is an int or
    None for all arguments, or one per argument (an int or None; a tuple,
    list or dict argument maps all of its tensors over that dim).

    This version runs `func` once per index and stacks the results: same
    values as torch.vmap, without batching the ops themselves. Random ops
    draw fresh numbers for every index (torch's `randomness="different"`);
    `randomness` and `chunk_size` are accepted and ignored."""
    Tensor = _tensor_class()

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import graphc

        dims = _dims_for(in_dims, args)
        flat_args = []
        for a, d in zip(args, dims):
            if d is not None and not isinstance(d, int):
                raise ValueError(f"vmap: in_dims must be ints or None, got {d!r}")
            if d is None:
                flat_args.append((None, a, None))
                continue
            leaves, spec = _flatten(a)
            for t in leaves:
                if not -t.dim() <= d < max(t.dim(), 1) or t.dim() == 0:
                    raise ValueError(
                        f"vmap(f, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for an input but the input is "
                        f"of type {type(t).__name__} with {t.dim()} dims"
                    )
            flat_args.append((d, leaves, spec))
        sizes = {t.shape[d] for d, leaves, _ in flat_args if d is not None for t in leaves}
        if not sizes:
            raise ValueError(
                f"vmap(f, in_dims={in_dims}, ...)(<inputs>): At least one of the inputs must be batched "
                "(e.g. in_dims not None)"
            )
        if len(sizes) != 1:
            raise ValueError(
                f"vmap(f, in_dims={in_dims}, ...)(<inputs>): Expected all tensors to have the same size in the "
                f"mapped dimension, got sizes {sorted(sizes)} for the mapped dimension"
            )
        (n,) = sizes
        results = []
        for i in range(n):
            call = []
            for d, leaves, spec in flat_args:
                if d is None:
                    call.append(leaves)
                else:
                    call.append(_unflatten([t.select(d, i) for t in leaves], spec))
            results.append(func(*call, **kwargs))
        return _stack_results(results, out_dims, graphc, Tensor)

    return wrapper


def _stack_results(results: list, out_dims, graphc, Tensor):
    if not results:
        raise ValueError("vmap: the mapped dimension has size 0")
    first = results[0]
    try:
        leaves0, spec = _flatten(first)
    except TypeError:
        raise ValueError(
            f"vmap: function must return a Tensor or a tuple, list or dict of Tensors, got {type(first).__name__}"
        ) from None
    per = [_flatten(r)[0] for r in results]
    dims = [out_dims] * len(leaves0) if isinstance(out_dims, int) else list(out_dims)
    if len(dims) != len(leaves0):
        raise ValueError(f"vmap: out_dims has {len(dims)} entries but the function returned {len(leaves0)} tensors")
    stacked = [graphc.stack([p[k] for p in per], dim=dims[k]) for k in range(len(leaves0))]
    return _unflatten(stacked, spec)


# ---------------------------------------------------------------------------
# functional_call


def _locate(module, name: str):
    *path, attr = name.split(".")
    for p in path:
        module = getattr(module, p)
    return module, attr


def functional_call(module, parameter_and_buffer_dicts, args=(), kwargs=None, *, tie_weights=True, strict=False):
    """Call `module(*args, **kwargs)` with the parameters and buffers named
    in `parameter_and_buffer_dicts` (a dict, or a tuple of dicts) replaced
    by the given tensors, then restore them (torch.func.functional_call).
    With `tie_weights`, a replaced tensor also replaces every other name of
    the same (tied) parameter or buffer."""
    dicts = parameter_and_buffer_dicts
    dicts = [dicts] if isinstance(dicts, dict) else list(dicts)
    given: dict = {}
    for d in dicts:
        for k, v in d.items():
            if k in given:
                raise ValueError(f"{k} appeared in multiple dictionaries; behavior of functional call is ambiguous")
            given[k] = v
    names: dict = {}  # id(tensor) -> every name it has
    for name, t in [
        *module.named_parameters(remove_duplicate=False),
        *module.named_buffers(remove_duplicate=False),
    ]:
        names.setdefault(id(t), []).append(name)
    known = {n for group in names.values() for n in group}
    if strict:
        missing = sorted(known - set(given))
        unexpected = sorted(set(given) - known)
        if missing or unexpected:
            raise RuntimeError(
                f"Error(s) in reloading state_dict for {type(module).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
    if tie_weights:
        for group in names.values():
            chosen = [n for n in group if n in given]
            for n in group:
                if chosen and n not in given:
                    given[n] = given[chosen[0]]
    saved = []
    try:
        for name, value in given.items():
            owner, attr = _locate(module, name)
            store = owner._parameters if attr in owner._parameters else owner._buffers
            if attr not in store:
                store = owner.__dict__
            saved.append((store, attr, store.get(attr, _MISSING)))
            store[attr] = value
        args = args if isinstance(args, tuple) else (args,)
        return module(*args, **(kwargs or {}))
    finally:
        for store, attr, old in reversed(saved):
            if old is _MISSING:
                store.pop(attr, None)
            else:
                store[attr] = old


_MISSING = object()

__all__ = ["functional_call", "grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "vjp", "vmap"]
