"""graphc.func (grad, grad_and_value, vjp, jacrev, jacfwd, hessian, vmap,
functional_call) against torch.func on the same functions, eagerly and
under graphc.compile."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from frontend_helpers import assert_same  # noqa: E402

import graphc  # noqa: E402
import graphc.func as gf  # noqa: E402

RNG = np.random.default_rng(5)
A = RNG.standard_normal((4, 3)).astype(np.float32)
B = RNG.standard_normal(3).astype(np.float32)


def f(lib, x, w):
    """A scalar function of two tensors, written for either library."""
    return ((x @ w).tanh() * x.sum(1)).sum() + (w * w).sum()


def test_grad_matches_torch_func_grad():
    g = gf.grad(lambda x, w: f(graphc, x, w))(graphc.tensor(A), graphc.tensor(B))
    t = torch.func.grad(lambda x, w: f(torch, x, w))(torch.tensor(A), torch.tensor(B))
    assert_same(g, t, rtol=1e-5, atol=1e-6)
    assert not g.requires_grad


def test_grad_argnums_tuple_and_has_aux():
    def gfun(x, w):
        return f(graphc, x, w), {"norm": w.norm()}

    def tfun(x, w):
        return f(torch, x, w), {"norm": w.norm()}

    (gx, gw), gaux = gf.grad(gfun, argnums=(0, 1), has_aux=True)(graphc.tensor(A), graphc.tensor(B))
    (tx, tw), taux = torch.func.grad(tfun, argnums=(0, 1), has_aux=True)(torch.tensor(A), torch.tensor(B))
    assert_same((gx, gw), (tx, tw), rtol=1e-5, atol=1e-6)
    assert_same(gaux["norm"], taux["norm"])


def test_grad_and_value_and_unused_argument_gives_zeros():
    (gg, gv) = gf.grad_and_value(lambda x, w: (x * 2).sum(), argnums=1)(graphc.tensor(A), graphc.tensor(B))
    (tg, tv) = torch.func.grad_and_value(lambda x, w: (x * 2).sum(), argnums=1)(torch.tensor(A), torch.tensor(B))
    assert_same(gg, tg)
    assert_same(gv, tv)


def test_nested_grad_gives_second_derivative():
    def gcube(x):
        return (x * x * x).sin().sum()

    def tcube(x):
        return (x * x * x).sin().sum()

    x = B.astype(np.float64)
    g2 = gf.grad(lambda x: gf.grad(gcube)(x).sum())(graphc.tensor(x))
    t2 = torch.func.grad(lambda x: torch.func.grad(tcube)(x).sum())(torch.tensor(x))
    assert_same(g2, t2, rtol=1e-10, atol=1e-10)


def test_grad_over_a_tensor_that_requires_grad_keeps_history():
    x = graphc.tensor(B, requires_grad=True)
    g = gf.grad(lambda x: (x**3).sum())(x)  # 3 x^2, still a function of x
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * B, rtol=1e-6)


def test_vjp_matches_torch():
    gout, gfn = gf.vjp(lambda x: (x.sin() * 2, x.sum(0)), graphc.tensor(A))
    tout, tfn = torch.func.vjp(lambda x: (x.sin() * 2, x.sum(0)), torch.tensor(A))
    assert_same(gout, tout)
    cot = (np.ones_like(A) * 0.5, B)
    assert_same(
        gfn(tuple(graphc.tensor(c) for c in cot)),
        tfn(tuple(torch.tensor(c) for c in cot)),
    )


@pytest.mark.parametrize("name", ["jacrev", "jacfwd"])
def test_jacobians_match_torch(name):
    gj = getattr(gf, name)(lambda x, w: (x @ w).sin(), argnums=(0, 1))(graphc.tensor(A), graphc.tensor(B))
    tj = getattr(torch.func, name)(lambda x, w: (x @ w).sin(), argnums=(0, 1))(torch.tensor(A), torch.tensor(B))
    assert gj[0].shape == (4, 4, 3) and gj[1].shape == (4, 3)
    assert_same(gj, tj, rtol=1e-5, atol=1e-6)


def test_hessian_matches_torch():
    x = B.astype(np.float64)
    gh = gf.hessian(lambda x: (x.exp() * x.roll(1, 0)).sum())(graphc.tensor(x))
    th = torch.func.hessian(lambda x: (x.exp() * x.roll(1, 0)).sum())(torch.tensor(x))
    assert_same(gh, th, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("in_dims", "out_dims", "shapes"),
    [
        ((0, None), 0, [(5, 4, 3), (3, 2)]),
        (1, 0, [(4, 5, 3), (3, 5, 2)]),
        ((0, 0), (1, 0), [(5, 4, 3), (5, 3, 2)]),
    ],
)
def test_vmap_matches_torch_vmap(in_dims, out_dims, shapes):
    arrays = [RNG.standard_normal(s).astype(np.float32) for s in shapes]

    def body(x, w):
        return (x @ w).relu(), x.sum()

    g = graphc.vmap(body, in_dims, out_dims)(*[graphc.tensor(a) for a in arrays])
    t = torch.vmap(body, in_dims, out_dims)(*[torch.tensor(a) for a in arrays])
    assert_same(g, t, rtol=1e-5, atol=1e-5)
    assert graphc.vmap is gf.vmap


def test_per_sample_gradients_with_vmap_of_grad_and_functional_call():
    torch.manual_seed(0)
    tmodel = torch.nn.Linear(3, 2)
    gmodel = graphc.nn.Linear(3, 2)
    gmodel.load_state_dict({k: graphc.tensor(v.detach().numpy()) for k, v in tmodel.state_dict().items()})
    xs = RNG.standard_normal((6, 3)).astype(np.float32)
    ys = RNG.standard_normal((6, 2)).astype(np.float32)

    def loss(lib, func, model):
        def one(params, x, y):
            out = func.functional_call(model, params, (x.unsqueeze(0),))
            return ((out - y.unsqueeze(0)) ** 2).mean()

        return one

    gparams = {k: v.detach() for k, v in gmodel.named_parameters()}
    tparams = {k: v.detach() for k, v in tmodel.named_parameters()}
    g = graphc.vmap(gf.grad(loss(graphc, gf, gmodel)), in_dims=(None, 0, 0))(
        gparams, graphc.tensor(xs), graphc.tensor(ys)
    )
    t = torch.vmap(torch.func.grad(loss(torch, torch.func, tmodel)), in_dims=(None, 0, 0))(
        tparams, torch.tensor(xs), torch.tensor(ys)
    )
    assert set(g) == {"weight", "bias"} and g["weight"].shape == (6, 2, 3)
    for k in g:
        assert_same(g[k], t[k], rtol=1e-5, atol=1e-6)
    # The module keeps its own parameters afterwards.
    assert gmodel.weight is not gparams["weight"] and isinstance(gmodel.weight, graphc.nn.Parameter)


def test_functional_call_with_buffers_and_tied_weights():
    class Tied(graphc.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = graphc.nn.Linear(2, 2, bias=False)
            self.b = graphc.nn.Linear(2, 2, bias=False)
            self.b.weight = self.a.weight
            self.register_buffer("shift", graphc.ones(2))

        def forward(self, x):
            return self.b(self.a(x)) + self.shift

    m = Tied()
    w = graphc.eye(2) * 2
    out = gf.functional_call(m, ({"a.weight": w}, {"shift": graphc.zeros(2)}), graphc.ones(1, 2))
    assert out.tolist() == [[4.0, 4.0]]  # b.weight is tied to a.weight: replaced too
    out = gf.functional_call(m, {"a.weight": w}, (graphc.ones(1, 2),), tie_weights=False)
    assert out.tolist() != [[5.0, 5.0]]
    with pytest.raises(RuntimeError, match="missing keys"):
        gf.functional_call(m, {"a.weight": w}, (graphc.ones(1, 2),), strict=True)


def test_errors_name_the_problem():
    with pytest.raises(RuntimeError, match="Expected f\\(\\*args\\) to return a scalar Tensor"):
        gf.grad(lambda x: x * 2)(graphc.ones(3))
    with pytest.raises(ValueError, match="same size in the mapped dimension, got sizes \\[3, 4\\]"):
        graphc.vmap(lambda a, b: a + b)(graphc.ones(3), graphc.ones(4))
    with pytest.raises(ValueError, match="At least one of the inputs must be batched"):
        graphc.vmap(lambda a: a, in_dims=None)(graphc.ones(3))
    with pytest.raises(RuntimeError, match="argnums=2, but only 1 positional inputs"):
        gf.grad(lambda x: x.sum(), argnums=2)(graphc.ones(3))


def test_transforms_under_compile_equal_eager():
    w = graphc.tensor(B)

    def fn(xs):
        per_row = graphc.vmap(lambda x: gf.grad(lambda v: (v * w).tanh().sum())(x))(xs)
        return per_row * 2

    eager = fn(graphc.tensor(A))
    compiled = graphc.compile(fn)
    for _ in range(3):
        out = compiled(graphc.tensor(A))
    np.testing.assert_allclose(out.numpy(), eager.numpy(), rtol=1e-5, atol=1e-6)
    t = torch.vmap(torch.func.grad(lambda v: (v * torch.tensor(B)).tanh().sum()))(torch.tensor(A)) * 2
    assert_same(out, t, rtol=1e-5, atol=1e-6)


def test_functional_call_under_compile():
    model = graphc.nn.Linear(3, 2)
    w = graphc.tensor(RNG.standard_normal((2, 3)).astype(np.float32))

    def fn(weight, x):
        return gf.functional_call(model, {"weight": weight}, (x,))

    eager = fn(w, graphc.tensor(A))
    compiled = graphc.compile(fn)
    for _ in range(3):
        out = compiled(w, graphc.tensor(A))
    np.testing.assert_allclose(out.detach().numpy(), eager.detach().numpy(), rtol=1e-5, atol=1e-6)
    expected = A @ w.numpy().T + model.bias.detach().numpy()
    np.testing.assert_allclose(eager.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    assert isinstance(model.weight, graphc.nn.Parameter) and not np.allclose(model.weight.detach().numpy(), w.numpy())
