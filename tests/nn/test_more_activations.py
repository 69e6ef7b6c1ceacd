"""Mish, Softsign, Hardswish, Hardsigmoid, CELU, SELU, Tanhshrink, Softshrink,
Hardshrink, Threshold, GLU and PReLU against PyTorch: values in float32 and
float64, gradients (exactly at the kinks and at NaN, where PyTorch has a
convention), the compiled path, in-place forms, modules and argument errors."""

import numpy as np
import pytest
import torch

import graphc
from graphc import nn
from graphc.nn import functional as F

# Every kink of the functions below (0, +-0.5 = lambd / threshold, +-3),
# points either side of them, NaN, and a spread of ordinary values.
KINKS = [0.0, 0.5, -0.5, 3.0, -3.0, 0.4999, 0.5001, -2.9999, 2.9999, 1e-12, -1e-12, float("nan"), 25.0, -25.0]
NAN = float("nan")
POINTS = np.concatenate([np.array(KINKS), np.random.default_rng(0).standard_normal(42) * 4])

# name -> (graphc call, torch call)
ELEMENTWISE = {
    "mish": (F.mish, torch.nn.functional.mish),
    "softsign": (F.softsign, torch.nn.functional.softsign),
    "hardswish": (F.hardswish, torch.nn.functional.hardswish),
    "hardsigmoid": (F.hardsigmoid, torch.nn.functional.hardsigmoid),
    "celu": (F.celu, torch.nn.functional.celu),
    "celu-alpha": (lambda x: F.celu(x, alpha=0.5), lambda x: torch.nn.functional.celu(x, alpha=0.5)),
    "selu": (F.selu, torch.nn.functional.selu),
    "tanhshrink": (F.tanhshrink, torch.nn.functional.tanhshrink),
    "softshrink": (F.softshrink, torch.nn.functional.softshrink),
    "softshrink-0": (lambda x: F.softshrink(x, 0.0), lambda x: torch.nn.functional.softshrink(x, 0.0)),
    "hardshrink": (F.hardshrink, torch.nn.functional.hardshrink),
    "hardshrink-3": (lambda x: F.hardshrink(x, lambd=3.0), lambda x: torch.nn.functional.hardshrink(x, lambd=3.0)),
    "threshold": (lambda x: F.threshold(x, 0.5, -7.0), lambda x: torch.nn.functional.threshold(x, 0.5, -7.0)),
    "threshold-0": (lambda x: F.threshold(x, 0.0, 0.0), lambda x: torch.nn.functional.threshold(x, 0.0, 0.0)),
    "glu": (F.glu, torch.nn.functional.glu),
    "glu-dim0": (lambda x: F.glu(x, 0), lambda x: torch.nn.functional.glu(x, 0)),
}

# PyTorch's vectorised CPU kernels give these a NaN input's gradient as NaN
# or 0 depending on where it falls in a vector; graphc follows the scalar
# kernel (see test_gradient_conventions_at_the_kinks), so the comparison on
# a whole tensor leaves NaN inputs out for them.
NAN_GRAD_VARIES = {
    "hardswish",
    "celu",
    "celu-alpha",
    "selu",
    "softshrink",
    "softshrink-0",
    "hardshrink",
    "hardshrink-3",
}

# PyTorch's CPU hardsigmoid backward multiplies by a float32 1/6 even in
# float64; graphc's gradient is the exact 1/6.
GRAD_RTOL = {"hardsigmoid": 1e-7}


def _input(dtype):
    return POINTS.reshape(4, 14).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_values_match_torch(name, dtype):
    g_fn, t_fn = ELEMENTWISE[name]
    x = _input(dtype)
    out = g_fn(graphc.tensor(x))
    expected = t_fn(torch.tensor(x))
    assert out.dtype == (graphc.float32 if dtype == np.float32 else graphc.float64)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_gradients_match_torch_at_the_kinks(name):
    g_fn, t_fn = ELEMENTWISE[name]
    x = _input(np.float64)
    cot = np.random.default_rng(1).standard_normal(tuple(t_fn(torch.tensor(x)).shape))
    gx, tx = graphc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (g_fn(gx) * graphc.tensor(cot)).sum().backward()
    (t_fn(tx) * torch.tensor(cot)).sum().backward()
    got, expected = gx.grad.numpy(), tx.grad.numpy()
    if name in NAN_GRAD_VARIES:
        keep = ~np.isnan(x)
        got, expected = got[keep], expected[keep]
    # NaN where PyTorch's gradient is NaN, and nowhere else.
    np.testing.assert_allclose(got, expected, rtol=GRAD_RTOL.get(name, 1e-9), atol=1e-12)


@pytest.mark.parametrize(
    "name, kinks, grads",
    [
        ("hardswish", [-3.0, 3.0, 0.0, NAN], [0.0, 1.0, 0.5, 1.0]),
        ("hardsigmoid", [-3.0, 3.0, NAN], [0.0, 0.0, 0.0]),
        ("celu", [0.0, NAN], [1.0, 1.0]),
        ("celu-alpha", [0.0, NAN], [1.0, 1.0]),
        ("selu", [0.0, NAN], [1.6732632423543772 * 1.0507009873554805, 1.0507009873554805]),
        ("softshrink", [0.5, -0.5, NAN, 0.0], [0.0, 0.0, 1.0, 0.0]),
        ("softshrink-0", [0.0], [0.0]),
        ("hardshrink", [0.5, -0.5, NAN, 0.0], [0.0, 0.0, 1.0, 0.0]),
        ("hardshrink-3", [3.0, -3.0], [0.0, 0.0]),
        ("threshold", [0.5, NAN], [0.0, 1.0]),
        ("threshold-0", [0.0], [0.0]),
        ("softsign", [0.0], [1.0]),
    ],
)
def test_gradient_conventions_at_the_kinks(name, kinks, grads):
    """The values PyTorch's CPU kernels give one point at a time (its scalar
    path), checked on both sides so that a change on either shows."""
    g_fn, t_fn = ELEMENTWISE[name]
    for point, grad in zip(kinks, grads):
        gx = graphc.tensor([point], dtype=graphc.float64, requires_grad=True)
        tx = torch.tensor([point], dtype=torch.float64, requires_grad=True)
        g_fn(gx).sum().backward()
        t_fn(tx).sum().backward()
        np.testing.assert_allclose(tx.grad.numpy(), [grad], rtol=1e-7, err_msg=f"torch at {point}")
        np.testing.assert_allclose(gx.grad.numpy(), [grad], rtol=1e-15, err_msg=f"graphc at {point}")


def test_prelu_matches_torch():
    x = _input(np.float64).reshape(2, 4, 7)
    for w in (np.array([0.25]), np.array([0.1, -0.7, 2.0, 0.0]), np.array(0.3)):
        gx, tx = graphc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        gw, tw = graphc.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
        out, expected = F.prelu(gx, gw), torch.nn.functional.prelu(tx, tw)
        np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-12)
        cot = np.random.default_rng(2).standard_normal(x.shape)
        (out * graphc.tensor(cot)).sum().backward()
        (expected * torch.tensor(cot)).sum().backward()
        np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(gw.grad.numpy(), tw.grad.numpy(), rtol=1e-9, atol=1e-12)
    # At 0 the input's gradient is the weight and the weight's is 0.
    gx = graphc.tensor([0.0, -1.0], dtype=graphc.float64, requires_grad=True)
    gw = graphc.tensor([0.25], dtype=graphc.float64, requires_grad=True)
    F.prelu(gx, gw).sum().backward()
    assert gx.grad.tolist() == [0.25, 0.25] and gw.grad.tolist() == [-1.0]
    # float32 values, a 1-D input and a scalar input take one weight.
    x32 = _input(np.float32)[0]
    np.testing.assert_allclose(
        F.prelu(graphc.tensor(x32), graphc.tensor([0.2], dtype=graphc.float32)).numpy(),
        torch.nn.functional.prelu(torch.tensor(x32), torch.tensor([0.2])).numpy(),
        rtol=1e-6,
    )
    assert F.prelu(graphc.tensor(-2.0), graphc.tensor([0.5])).shape == ()


@pytest.mark.parametrize("name", ["mish", "hardswish", "hardsigmoid", "celu", "selu", "threshold"])
def test_inplace_matches_out_of_place(name):
    args = {"threshold": (0.5, -7.0)}.get(name, ())
    x = _input(np.float64)
    expected = getattr(F, name)(graphc.tensor(x), *args)
    g = graphc.tensor(x)
    out = getattr(F, name)(g, *args, inplace=True)
    assert out is g
    np.testing.assert_array_equal(g.numpy(), expected.numpy())
    t = torch.tensor(x)
    getattr(torch.nn.functional, name)(t, *args, inplace=True)
    np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_compiled_matches_eager(name):
    g_fn, _ = ELEMENTWISE[name]
    x = graphc.tensor(_input(np.float32))
    w = graphc.tensor(np.random.default_rng(4).standard_normal(x.shape[-1] // 2 if name == "glu" else x.shape[-1]))

    def step(x):
        y = g_fn(x)
        return (y * w.to(y.dtype)[: y.shape[-1]]).sum(), y

    compiled = graphc.compile(step)
    expected_loss, expected = step(x)
    for _ in range(3):
        loss, y = compiled(x)
        np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(loss.item(), expected_loss.item(), rtol=1e-5)


def test_compiled_gradients_match_eager():
    x = nn.Parameter(graphc.tensor(_input(np.float64)))
    w = nn.Parameter(graphc.tensor(np.linspace(-1.0, 1.0, 14)))

    def step():
        x.grad = w.grad = None
        y = F.mish(x) + F.hardswish(x) + F.softshrink(x) + F.threshold(x, 0.5, 1.0) + F.prelu(x, w)
        y = y + F.hardsigmoid(x) + F.softsign(x) + F.tanhshrink(x) + F.hardshrink(x)
        loss = (F.glu(y) * F.selu(x[:, :7])).sum() + F.celu(x, 0.5).sum()
        loss.backward()
        return loss

    step()
    expected = x.grad.numpy().copy(), w.grad.numpy().copy()
    compiled = graphc.compile(step)
    for _ in range(3):
        compiled()
        for got, want in zip((x.grad.numpy(), w.grad.numpy()), expected):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


MODULES = [
    ("Mish", (), {}),
    ("Mish", (), {"inplace": True}),
    ("Softsign", (), {}),
    ("Hardswish", (), {}),
    ("Hardswish", (), {"inplace": True}),
    ("Hardsigmoid", (), {}),
    ("CELU", (), {}),
    ("CELU", (2.0,), {"inplace": True}),
    ("SELU", (), {}),
    ("SELU", (), {"inplace": True}),
    ("Tanhshrink", (), {}),
    ("Softshrink", (), {}),
    ("Softshrink", (0.25,), {}),
    ("Hardshrink", (), {"lambd": 0.3}),
    ("Threshold", (0.1, 20), {}),
    ("Threshold", (0.5, -1.0), {"inplace": True}),
    ("GLU", (), {}),
    ("GLU", (), {"dim": 0}),
    ("PReLU", (), {}),
    ("PReLU", (14,), {"init": 0.1}),
]


@pytest.mark.parametrize("name, args, kwargs", MODULES)
def test_modules_match_torch(name, args, kwargs):
    g_mod, t_mod = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(g_mod) == repr(t_mod)
    g_params, t_params = dict(g_mod.named_parameters()), dict(t_mod.named_parameters())
    assert list(g_params) == list(t_params)
    for key, t_param in t_params.items():
        np.testing.assert_array_equal(g_params[key].detach().numpy(), t_param.detach().numpy())
    x = np.nan_to_num(_input(np.float32))  # NaN gradients: see NAN_GRAD_VARIES
    if kwargs.get("inplace"):
        gx, tx = graphc.tensor(x), torch.tensor(x)
        assert g_mod(gx) is gx
        t_mod(tx)
        np.testing.assert_allclose(gx.numpy(), tx.numpy(), rtol=1e-5, atol=1e-7)
        return
    gx, tx = graphc.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    g_mod(gx).sum().backward()
    t_mod(tx).sum().backward()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-7)
    for key, t_param in t_params.items():
        np.testing.assert_allclose(g_params[key].grad.numpy(), t_param.grad.numpy(), rtol=1e-5)


def test_prelu_module_weight_and_state_dict():
    g_mod = nn.PReLU(3)
    assert isinstance(g_mod.weight, nn.Parameter) and g_mod.weight.tolist() == [0.25] * 3
    t_mod = torch.nn.PReLU(3)
    with torch.no_grad():
        t_mod.weight.copy_(torch.tensor([0.5, -1.0, 2.0]))
    g_mod.load_state_dict({k: graphc.tensor(v.detach().numpy()) for k, v in t_mod.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(
        g_mod(graphc.tensor(x)).detach().numpy(), t_mod(torch.tensor(x)).detach().numpy(), rtol=1e-6
    )
    assert nn.PReLU(2, dtype=graphc.float64).weight.dtype == graphc.float64


def _error(fn):
    with pytest.raises(Exception) as info:
        fn()
    return type(info.value), str(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda lib, x: lib.nn.functional.softshrink(x, -1.0),
        lambda lib, x: lib.nn.functional.softshrink(x.double(), -0.5),
        lambda lib, x: lib.nn.functional.softshrink(x.half(), -2.0),
        lambda lib, x: lib.nn.functional.celu(x, 0.0),
        lambda lib, x: lib.nn.functional.glu(x[:, :3]),
        lambda lib, x: lib.nn.functional.glu(x, 2),
        lambda lib, x: lib.nn.functional.glu(x.sum()),
        lambda lib, x: lib.nn.functional.prelu(x, lib.ones(2)),
        lambda lib, x: lib.nn.functional.prelu(x[0], lib.ones(3)),
        lambda lib, x: lib.nn.functional.prelu(x, lib.ones(1, 4)),
        lambda lib, x: lib.nn.functional.prelu(x, lib.ones(4, dtype=lib.float64)),
        lambda lib, x: lib.nn.functional.prelu(x.double(), lib.ones(1)),
    ],
)
def test_argument_errors_match_torch(call):
    x = _input(np.float32)[:, :4]
    expected_type, expected = _error(lambda: call(torch, torch.tensor(x)))
    got_type, got = _error(lambda: call(graphc, graphc.tensor(x)))
    assert got_type is expected_type
    assert got == expected


def test_tensor_arguments_are_checked():
    with pytest.raises(TypeError, match="mish"):
        F.mish([1.0, 2.0])
    with pytest.raises(TypeError, match="prelu"):
        F.prelu(graphc.ones(2), 0.25)


def test_torch_namespace_and_tensor_methods():
    x_np = _input(np.float64)
    x, t = graphc.tensor(x_np), torch.tensor(x_np)
    w = np.array([0.1, -0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4])
    pairs = [
        (graphc.selu(x), torch.selu(t)),
        (graphc.celu(x, 2.0), torch.celu(t, 2.0)),
        (graphc.prelu(x, graphc.tensor(w)), torch.prelu(t, torch.tensor(w))),
        (graphc.hardshrink(x, 0.25), torch.hardshrink(t, 0.25)),
        (graphc.threshold(x, 0.5, 3.0), torch.threshold(t, 0.5, 3.0)),
        (x.hardshrink(), t.hardshrink()),
        (x.hardshrink(lambd=1.0), t.hardshrink(lambd=1.0)),
        (x.prelu(graphc.tensor([0.3], dtype=graphc.float64)), t.prelu(torch.tensor([0.3], dtype=torch.float64))),
    ]
    for got, expected in pairs:
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)


def test_trailing_underscore_forms_work_in_place():
    x_np = _input(np.float64)
    for name, args in (("celu_", (2.0,)), ("selu_", ()), ("threshold_", (0.5, -7.0))):
        g, t = graphc.tensor(x_np), torch.tensor(x_np)
        assert getattr(F, name)(g, *args) is g
        getattr(torch.nn.functional, name)(t, *args)
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-12, atol=1e-12)


def test_compiled_prelu_training_matches_eager():
    """A compiled SGD step updates PReLU's `weight` as the eager one does."""
    x = graphc.tensor(np.random.default_rng(6).standard_normal((8, 3, 5)).astype(np.float32))

    def run(compiled):
        graphc.manual_seed(0)
        model = nn.Sequential(nn.Conv1d(3, 4, 3), nn.PReLU(4), nn.Flatten(), nn.Linear(12, 2), nn.Mish())
        opt = graphc.optim.SGD(model.parameters(), lr=0.1)

        def step():
            opt.zero_grad()
            loss = model(x).pow(2).mean()
            loss.backward()
            opt.step()
            return loss

        fn = graphc.compile(step) if compiled else step
        losses = [float(fn().item()) for _ in range(3)]
        return losses, model[1].weight.detach().numpy().copy()

    (c_losses, c_weight), (e_losses, e_weight) = run(True), run(False)
    np.testing.assert_allclose(c_losses, e_losses, rtol=1e-5)
    np.testing.assert_allclose(c_weight, e_weight, rtol=1e-5)
    assert not np.allclose(e_weight, 0.25)
