"""graphc.autograd.Function against torch.autograd.Function: the same class
bodies (written once, built for each library) give the same values and
gradients, eagerly and under graphc.compile."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from frontend_helpers import assert_same  # noqa: E402

import graphc  # noqa: E402
from graphc.errors import GraphcError  # noqa: E402

RNG = np.random.default_rng(3)


def functions(lib):
    """The custom Functions of the tests, built on `lib` (graphc or torch)."""
    F = lib.autograd.Function

    class Exp(F):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    class LinearFunction(F):
        # PyTorch's documentation example, in the setup_context form.
        @staticmethod
        def forward(x, weight, bias=None):
            out = x.mm(weight.t())
            if bias is not None:
                out = out + bias.unsqueeze(0).expand_as(out)
            return out

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, weight, bias = inputs
            ctx.save_for_backward(x, weight, bias)

        @staticmethod
        def backward(ctx, grad_output):
            x, weight, bias = ctx.saved_tensors
            gx = gw = gb = None
            if ctx.needs_input_grad[0]:
                gx = grad_output.mm(weight)
            if ctx.needs_input_grad[1]:
                gw = grad_output.t().mm(x)
            if bias is not None and ctx.needs_input_grad[2]:
                gb = grad_output.sum(0)
            return gx, gw, gb

    class StraightThroughClamp(F):
        # Forward clamps; backward passes the gradient straight through.
        @staticmethod
        def forward(ctx, x, lo, hi):
            return x.clamp(lo, hi)

        @staticmethod
        def backward(ctx, g):
            return g, None, None

    class MulAdd(F):
        # Two outputs, a non-tensor argument, and a double-differentiable backward.
        @staticmethod
        def forward(ctx, a, b, scale):
            ctx.save_for_backward(a, b)
            ctx.scale = scale
            return a * b * scale, a + b

        @staticmethod
        def backward(ctx, g_prod, g_sum):
            a, b = ctx.saved_tensors
            return g_prod * b * ctx.scale + g_sum, g_prod * a * ctx.scale + g_sum, None

    class MaxWithIndex(F):
        # An index output marked non-differentiable; grads not materialized.
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            values, idx = x.max(dim=-1)
            ctx.mark_non_differentiable(idx)
            ctx.save_for_backward(x, idx)
            return values, idx

        @staticmethod
        def backward(ctx, g, g_idx):
            assert g_idx is None
            if g is None:
                return None
            x, idx = ctx.saved_tensors
            return x.new_zeros(x.shape).scatter(-1, idx.unsqueeze(-1), g.unsqueeze(-1))

    return Exp, LinearFunction, StraightThroughClamp, MulAdd, MaxWithIndex


G = dict(zip(["Exp", "Linear", "Clamp", "MulAdd", "Max"], functions(graphc)))
T = dict(zip(["Exp", "Linear", "Clamp", "MulAdd", "Max"], functions(torch)))


def _pair(*shape, requires_grad=True, dtype=np.float32):
    a = RNG.standard_normal(shape).astype(dtype)
    return graphc.tensor(a, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad)


def test_exp_value_grad_and_grad_fn_name():
    gx, tx = _pair(3, 4)
    gy, ty = G["Exp"].apply(gx), T["Exp"].apply(tx)
    assert_same(gy, ty)
    assert gy.grad_fn.name() == "ExpBackward" and gy.requires_grad
    (gy * gy).sum().backward()
    (ty * ty).sum().backward()
    assert_same(gx.grad, tx.grad)


def test_linear_function_docs_example_with_and_without_bias():
    gx, tx = _pair(5, 3)
    gw, tw = _pair(4, 3)
    gb, tb = _pair(4)
    assert_same(G["Linear"].apply(gx, gw, gb), T["Linear"].apply(tx, tw, tb))
    G["Linear"].apply(gx, gw, gb).pow(2).sum().backward()
    T["Linear"].apply(tx, tw, tb).pow(2).sum().backward()
    for g, t in [(gx, tx), (gw, tw), (gb, tb)]:
        assert_same(g.grad, t.grad, rtol=1e-5, atol=1e-5)
    gw.grad = None
    tw.grad = None
    G["Linear"].apply(gx.detach(), gw).sum().backward()
    T["Linear"].apply(tx.detach(), tw).sum().backward()
    assert_same(gw.grad, tw.grad)


def test_needs_input_grad_and_kwargs():
    seen = {}

    class Probe(graphc.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, k=2.0):
            seen["needs"] = ctx.needs_input_grad
            return a * b * k

        @staticmethod
        def backward(ctx, g):
            return g, None, None

    a = graphc.ones(2, requires_grad=True)
    out = Probe.apply(a, graphc.ones(2), k=3.0)
    assert seen["needs"] == (True, False, False)
    assert out.tolist() == [3.0, 3.0]


def test_straight_through_clamp():
    gx, tx = _pair(10)
    gx.data.mul_(3)
    tx.data.mul_(3)
    gy, ty = G["Clamp"].apply(gx, -1.0, 1.0), T["Clamp"].apply(tx, -1.0, 1.0)
    assert_same(gy, ty)
    (gy * graphc.arange(10.0)).sum().backward()
    (ty * torch.arange(10.0)).sum().backward()
    assert_same(gx.grad, tx.grad)
    np.testing.assert_array_equal(gx.grad.numpy(), np.arange(10.0))


def test_two_outputs_one_used_and_double_backward():
    ga, ta = _pair(3, dtype=np.float64)
    gb, tb = _pair(3, dtype=np.float64)
    gp, gs = G["MulAdd"].apply(ga, gb, 2.0)
    tp, ts = T["MulAdd"].apply(ta, tb, 2.0)
    assert_same((gp, gs), (tp, ts))
    # Only the first output reaches the loss: the other's gradient is zeros.
    (gga,) = graphc.autograd.grad(gp.sum(), ga, create_graph=True)
    (tga,) = torch.autograd.grad(tp.sum(), ta, create_graph=True)
    assert_same(gga, tga)
    # The backward is made of differentiable ops: a second order gradient.
    (g2,) = graphc.autograd.grad((gga * gga).sum(), gb)
    (t2,) = torch.autograd.grad((tga * tga).sum(), tb)
    assert_same(g2, t2)


def test_mark_non_differentiable_and_no_materialized_grads():
    gx, tx = _pair(2, 5)
    gv, gi = G["Max"].apply(gx)
    tv, ti = T["Max"].apply(tx)
    assert_same((gv, gi), (tv, ti))
    assert not gi.requires_grad and gv.requires_grad
    assert gv.grad_fn.name() == "MaxWithIndexBackward"
    (gv * graphc.arange(2.0)).sum().backward()
    (tv * torch.arange(2.0)).sum().backward()
    assert_same(gx.grad, tx.grad)


def test_no_grad_inputs_give_plain_results():
    out = G["Exp"].apply(graphc.zeros(2))
    assert out.grad_fn is None and not out.requires_grad
    with graphc.no_grad():
        out = G["Exp"].apply(graphc.zeros(2, requires_grad=True))
    assert out.grad_fn is None


def test_input_returned_as_is_is_a_new_tensor():
    class Identity(graphc.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 5

    x = graphc.ones(3, requires_grad=True)
    y = Identity.apply(x)
    assert y is not x and x.grad_fn is None
    y.sum().backward()
    assert x.grad.tolist() == [5.0, 5.0, 5.0]


def test_once_differentiable_backward_runs_without_grad():
    class Square(graphc.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @graphc.autograd.function.once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    x = graphc.tensor([3.0], requires_grad=True)
    (g,) = graphc.autograd.grad(Square.apply(x).sum(), x, create_graph=True)
    assert g.tolist() == [6.0] and not g.requires_grad


def test_wrong_number_of_gradients_names_the_function():
    class Bad(graphc.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g

    a, b = graphc.ones(2, requires_grad=True), graphc.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"function BadBackward returned an incorrect number of gradients"):
        Bad.apply(a, b).sum().backward()


def test_gradient_of_wrong_shape_and_broadcastable_gradient():
    class Shape(graphc.autograd.Function):
        @staticmethod
        def forward(ctx, x, mode):
            ctx.mode = mode
            return x * 1

        @staticmethod
        def backward(ctx, g):
            if ctx.mode == "bad":
                return graphc.ones(7), None
            return g.unsqueeze(0).expand(4, *g.shape), None  # summed back down, as torch does

    x = graphc.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"ShapeBackward returned an invalid gradient at index 0 - got \[7\]"):
        Shape.apply(x, "bad").sum().backward()
    Shape.apply(x, "ok").sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 4.0))


def test_saved_tensors_freed_after_backward_and_inplace_check():
    x = graphc.ones(2, requires_grad=True)
    y = G["Exp"].apply(x)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.sum().backward()
    y = G["Exp"].apply(x)
    with graphc.no_grad():
        y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_instantiating_and_missing_backward_raise():
    with pytest.raises(RuntimeError, match=r"\.apply"):
        G["Exp"]()

    class NoBackward(graphc.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    with pytest.raises(NotImplementedError, match="backward"):
        NoBackward.apply(graphc.ones(1, requires_grad=True)).sum().backward()


def test_gradcheck_passes_and_catches_a_wrong_backward():
    x = graphc.tensor(RNG.standard_normal(4), dtype=graphc.float64, requires_grad=True)
    w = graphc.tensor(RNG.standard_normal((3, 4)), dtype=graphc.float64, requires_grad=True)
    assert graphc.autograd.gradcheck(lambda a, b: G["Linear"].apply(a.unsqueeze(0), b), (x, w))
    assert graphc.autograd.gradcheck(G["Exp"].apply, (x,))

    class WrongExp(graphc.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.exp()

        @staticmethod
        def backward(ctx, g):
            return g  # should be g * exp(x)

    with pytest.raises(graphc.autograd.GradcheckError, match="Jacobian mismatch for output 0 with respect to input 0"):
        graphc.autograd.gradcheck(WrongExp.apply, (x,))
    assert graphc.autograd.gradcheck(WrongExp.apply, (x,), raise_exception=False) is False


# ---------------------------------------------------------------------------
# under graphc.compile


def _run_compiled(fn, *args):
    """The third call: the first runs eagerly, the second traces and compiles."""
    for _ in range(3):
        out = fn(*args)
    return out


def test_compiled_forward_uses_the_custom_backward():
    gx, tx = _pair(4, 3)
    gw, tw = _pair(2, 3)
    gb, tb = _pair(2)

    def g_fn(x, w, b):
        return G["Clamp"].apply(G["Linear"].apply(G["Exp"].apply(x), w, b), -0.5, 0.5)

    compiled = graphc.compile(g_fn)
    gy = _run_compiled(compiled, gx, gw, gb)
    assert gy.grad_fn.name() == "CompiledFunctionBackward"
    ty = T["Clamp"].apply(T["Linear"].apply(T["Exp"].apply(tx), tw, tb), -0.5, 0.5)
    assert_same(gy, ty, rtol=1e-5, atol=1e-5)
    for t in (gx, gw, gb):
        t.grad = None
    (gy * gy).sum().backward()
    (ty * ty).sum().backward()
    for g, t in [(gx, tx), (gw, tw), (gb, tb)]:
        assert_same(g.grad, t.grad, rtol=1e-4, atol=1e-5)


def test_compiled_two_outputs_and_non_differentiable_output():
    ga, ta = _pair(3, 4)
    gb, tb = _pair(3, 4)

    def g_fn(a, b):
        p, s = G["MulAdd"].apply(a, b, 0.5)
        return G["Max"].apply(p + s)

    gv, gi = _run_compiled(graphc.compile(g_fn), ga, gb)
    assert gv.grad_fn.name() == "CompiledFunctionBackward"
    tp, ts = T["MulAdd"].apply(ta, tb, 0.5)
    tv, ti = T["Max"].apply(tp + ts)
    assert_same((gv, gi), (tv, ti))
    assert not gi.requires_grad
    ga.grad = gb.grad = None
    (gv * graphc.arange(3.0)).sum().backward()
    (tv * torch.arange(3.0)).sum().backward()
    assert_same(ga.grad, ta.grad)
    assert_same(gb.grad, tb.grad)


def test_compiled_training_step_with_custom_function():
    gw, tw = _pair(2, 3)
    gx, tx = _pair(4, 3, requires_grad=False)
    opt = graphc.optim.SGD([gw], lr=0.1)
    topt = torch.optim.SGD([tw], lr=0.1)

    @graphc.compile
    def step(x):
        opt.zero_grad()
        loss = G["Exp"].apply(G["Linear"].apply(x, gw)).mean()
        loss.backward()
        opt.step()
        return loss

    for _ in range(4):
        loss = step(gx)
        topt.zero_grad()
        tloss = T["Exp"].apply(T["Linear"].apply(tx, tw)).mean()
        tloss.backward()
        topt.step()
        assert_same(loss, tloss.detach(), rtol=1e-5, atol=1e-6)
    assert_same(gw, tw.detach(), rtol=1e-5, atol=1e-6)


def test_compiled_backward_reading_an_unseen_tensor_raises():
    outside = graphc.full((3,), 2.0)

    class UsesGlobal(graphc.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g * outside

    def fn(x):
        return UsesGlobal.apply(x)

    compiled = graphc.compile(fn)
    x = graphc.ones(3, requires_grad=True)
    compiled(x)  # eager first call
    with pytest.raises(GraphcError, match="the backward of custom Function UsesGlobal reads a tensor"):
        compiled(x)


def _custom_linear_module(lib, fn):
    class CustomLinear(lib.nn.Module):
        def __init__(self):
            super().__init__()
            rng = np.random.default_rng(1)
            self.weight = lib.nn.Parameter(lib.tensor(rng.standard_normal((2, 3)).astype(np.float32)))
            self.bias = lib.nn.Parameter(lib.tensor(rng.standard_normal(2).astype(np.float32)))

        def forward(self, x):
            # The parameters reach apply() before the trace has touched them.
            return fn.apply(x, self.weight, self.bias)

    return CustomLinear()


def test_compiled_module_whose_parameters_go_through_a_custom_function():
    gm, tm = _custom_linear_module(graphc, G["Linear"]), _custom_linear_module(torch, T["Linear"])
    gx, tx = _pair(4, 3)
    compiled = graphc.compile(gm)
    for _ in range(3):
        gm.zero_grad()
        gx.grad = None
        gy = compiled(gx)
        (gy * gy).sum().backward()
    assert gy.grad_fn.name() == "CompiledFunctionBackward"
    ty = tm(tx)
    (ty * ty).sum().backward()
    assert_same(gy, ty, rtol=1e-5, atol=1e-5)
    for g, t in [(gx, tx), (gm.weight, tm.weight), (gm.bias, tm.bias)]:
        assert_same(g.grad, t.grad, rtol=1e-5, atol=1e-5)
