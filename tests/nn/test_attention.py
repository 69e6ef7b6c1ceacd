"""scaled_dot_product_attention, MultiheadAttention and
generate_square_subsequent_mask against torch: values in float32 and
float64, float64 gradients of inputs and parameters, masks of each kind,
the compiled path and a compiled training step."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nn_testutil import assert_close, compare_precise, randn, to_numpy

import graphc
import graphc.nn.functional as F
from graphc import nn
from graphc.nn.attention import generate_square_subsequent_mask


def _with(fn, *args, **kwargs):
    return lambda *xs: fn(*xs, *args, **kwargs)


# -- scaled_dot_product_attention -----------------------------------------------


def _qkv(L=4, S=6, E=5, Ev=3, lead=(2, 3)):
    return randn(*lead, L, E, seed=1), randn(*lead, S, E, seed=2), randn(*lead, S, Ev, seed=3)


@pytest.mark.parametrize("is_causal", [False, True])
def test_sdpa(is_causal):
    kw = dict(is_causal=is_causal)
    compare_precise(_with(F.scaled_dot_product_attention, **kw), _with(TF.scaled_dot_product_attention, **kw), *_qkv())


def test_sdpa_causal_is_upper_left_aligned_for_rectangular_scores():
    kw = dict(is_causal=True)
    compare_precise(
        _with(F.scaled_dot_product_attention, **kw),
        _with(TF.scaled_dot_product_attention, **kw),
        *_qkv(L=6, S=4),
    )


def test_sdpa_scale_and_3d_inputs():
    kw = dict(scale=0.3)
    compare_precise(
        _with(F.scaled_dot_product_attention, **kw),
        _with(TF.scaled_dot_product_attention, **kw),
        *_qkv(lead=(2,)),
    )


@pytest.mark.parametrize("shape", [(4, 6), (3, 4, 6), (2, 1, 4, 6), (2, 3, 4, 6)])
def test_sdpa_bool_mask_broadcasts(shape):
    mask = np.random.default_rng(4).random(shape) > 0.4
    mask[..., 0] = True  # no fully masked row (torch's NaN/0 choice varies by version)

    def g(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=graphc.tensor(mask))

    def t(q, k, v):
        return TF.scaled_dot_product_attention(q, k, v, attn_mask=torch.tensor(mask))

    compare_precise(g, t, *_qkv())


@pytest.mark.parametrize("shape", [(4, 6), (3, 1, 6), (2, 3, 4, 6)])
def test_sdpa_float_mask_is_added(shape):
    q, k, v = _qkv()
    mask = randn(*shape, seed=5)
    compare_precise(
        lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, attn_mask=m),
        q,
        k,
        v,
        mask,
    )


def test_sdpa_dropout_drops_weights():
    q, k, v = (graphc.tensor(a) for a in _qkv())
    graphc.manual_seed(0)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert out.shape == (2, 3, 4, 3)
    assert not np.allclose(out.numpy(), F.scaled_dot_product_attention(q, k, v).numpy())
    full = F.scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    assert np.all(full.numpy() == 0)


def test_sdpa_gqa():
    q, k, v = randn(2, 4, 3, 5, seed=1), randn(2, 2, 6, 5, seed=2), randn(2, 2, 6, 5, seed=3)
    kw = dict(enable_gqa=True)
    compare_precise(_with(F.scaled_dot_product_attention, **kw), _with(TF.scaled_dot_product_attention, **kw), q, k, v)


def test_sdpa_mask_with_is_causal_errors():
    q, k, v = (graphc.tensor(a) for a in _qkv())
    with pytest.raises(RuntimeError, match="attn_mask should not be set"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=graphc.ones(4, 6), is_causal=True)
    with pytest.raises(RuntimeError, match="at least 2 dimensional, but got query.dim: 1"):
        F.scaled_dot_product_attention(graphc.randn(4), graphc.randn(4), graphc.randn(4))


# -- MultiheadAttention --------------------------------------------------------------


def _pair_mha(*args, dtype=torch.float64, **kwargs):
    torch.manual_seed(0)
    t = torch.nn.MultiheadAttention(*args, **kwargs).to(dtype)
    # Non-zero biases so that they matter.
    with torch.no_grad():
        for name, p in t.named_parameters():
            if "bias" in name:
                p.copy_(torch.randn(p.shape, dtype=dtype) * 0.5)
    g = nn.MultiheadAttention(*args, **kwargs, dtype=graphc.float64 if dtype == torch.float64 else graphc.float32)
    g.load_state_dict({k: graphc.tensor(v.detach().numpy().copy()) for k, v in t.state_dict().items()})
    return g, t


def _run(g, t, arrays, grad=True, **kw):
    """Forward both on the same float64 inputs, compare outputs and weights
    (rtol 1e-9), then the gradients of inputs and all parameters."""
    gs = [graphc.tensor(a.astype(np.float64), requires_grad=grad) for a in arrays]
    ts = [torch.tensor(a.astype(np.float64), requires_grad=grad) for a in arrays]
    gkw = {k: (graphc.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    tkw = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    g_out, g_w = g(*gs, **gkw)
    t_out, t_w = t(*ts, **tkw)
    assert_close(g_out, t_out, 1e-9, 1e-12, "output")
    if t_w is None:
        assert g_w is None
    else:
        assert_close(g_w, t_w, 1e-9, 1e-12, "attention weights")
    if grad:
        cot = np.random.default_rng(7).standard_normal(tuple(t_out.shape))
        loss_g = (g_out * graphc.tensor(cot)).sum()
        loss_t = (t_out * torch.tensor(cot)).sum()
        if t_w is not None:
            wcot = np.random.default_rng(8).standard_normal(tuple(t_w.shape))
            loss_g = loss_g + (g_w * graphc.tensor(wcot)).sum()
            loss_t = loss_t + (t_w * torch.tensor(wcot)).sum()
        loss_g.backward()
        loss_t.backward()
        for i, (a, b) in enumerate(zip(gs, ts)):
            assert_close(a.grad, b.grad, 1e-9, 1e-12, f"gradient of input {i}")
        g_params = dict(g.named_parameters())
        assert sorted(g_params) == sorted(n for n, _ in t.named_parameters())
        for name, p in t.named_parameters():
            assert g_params[name].grad is not None, f"parameter {name} got no gradient"
            assert_close(g_params[name].grad, p.grad, 1e-9, 1e-12, f"gradient of {name}")
    return g_out, g_w


def test_mha_state_dict_keys_and_init():
    g = nn.MultiheadAttention(8, 2)
    t = torch.nn.MultiheadAttention(8, 2)
    assert list(g.state_dict()) == list(t.state_dict())
    assert np.all(to_numpy(g.in_proj_bias) == 0) and np.all(to_numpy(g.out_proj.bias) == 0)
    bound = np.sqrt(6.0 / (8 + 24))
    w = g.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > bound / 2
    g2 = nn.MultiheadAttention(8, 2, kdim=3, vdim=5, bias=False, add_bias_kv=True)
    t2 = torch.nn.MultiheadAttention(8, 2, kdim=3, vdim=5, bias=False, add_bias_kv=True)
    assert list(g2.state_dict()) == list(t2.state_dict())
    assert {k: tuple(v.shape) for k, v in g2.state_dict().items()} == {
        k: tuple(v.shape) for k, v in t2.state_dict().items()
    }
    assert repr(g) == repr(t)


def test_mha_self_attention():
    g, t = _pair_mha(8, 2)
    x = randn(5, 3, 8, seed=1)
    _run(g, t, [x, x, x])


def test_mha_cross_attention():
    g, t = _pair_mha(8, 4)
    _run(g, t, [randn(5, 3, 8, seed=1), randn(7, 3, 8, seed=2), randn(7, 3, 8, seed=3)])


def test_mha_kdim_vdim():
    g, t = _pair_mha(8, 2, kdim=3, vdim=5)
    _run(g, t, [randn(5, 2, 8, seed=1), randn(7, 2, 3, seed=2), randn(7, 2, 5, seed=3)])


def test_mha_batch_first_per_head_weights():
    g, t = _pair_mha(6, 3, batch_first=True)
    _run(g, t, [randn(2, 4, 6, seed=1), randn(2, 5, 6, seed=2), randn(2, 5, 6, seed=3)], average_attn_weights=False)


def test_mha_unbatched():
    g, t = _pair_mha(6, 2)
    kpm = np.array([False, True, False, False, True])
    _run(g, t, [randn(4, 6, seed=1), randn(5, 6, seed=2), randn(5, 6, seed=3)], key_padding_mask=kpm)


def test_mha_no_bias_need_weights_false():
    g, t = _pair_mha(6, 2, bias=False)
    _run(g, t, [randn(4, 2, 6, seed=1)] * 3, need_weights=False)


@pytest.mark.parametrize("kind", ["bool2d", "float2d", "bool3d", "float3d", "causal"])
def test_mha_attn_mask(kind):
    g, t = _pair_mha(6, 2)
    L, S, N, H = 4, 5, 3, 2
    rng = np.random.default_rng(9)
    if kind == "causal":
        mask = generate_square_subsequent_mask(L).numpy().astype(np.float64)
        arrays = [randn(L, N, 6, seed=1)] * 3
        _run(g, t, arrays, attn_mask=mask, is_causal=True)
        return
    shape = (L, S) if kind.endswith("2d") else (N * H, L, S)
    if kind.startswith("bool"):
        mask = rng.random(shape) < 0.4
        mask[..., 0] = False  # True = may not attend; keep one key per row
    else:
        mask = rng.standard_normal(shape)
    _run(g, t, [randn(L, N, 6, seed=1), randn(S, N, 6, seed=2), randn(S, N, 6, seed=3)], attn_mask=mask)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_mha_key_padding_mask_with_attn_mask(kind):
    g, t = _pair_mha(6, 3)
    L, S, N = 4, 5, 2
    kpm = np.array([[False, False, True, False, True], [False, True, True, True, False]])
    attn = np.zeros((L, S), dtype=bool)
    attn[1, 3] = True
    if kind == "float":
        kpm = np.where(kpm, -1.5, 0.25)
        attn = np.where(attn, -2.0, 0.0)
    arrays = [randn(L, N, 6, seed=1), randn(S, N, 6, seed=2), randn(S, N, 6, seed=3)]
    _run(g, t, arrays, key_padding_mask=kpm)
    g.zero_grad()
    t.zero_grad()
    _run(g, t, arrays, key_padding_mask=kpm, attn_mask=attn)


def test_mha_add_bias_kv_and_zero_attn():
    g, t = _pair_mha(6, 2, add_bias_kv=True, add_zero_attn=True)
    kpm = np.array([[False, True, False, False, False], [True, False, False, False, False]])
    mask = np.zeros((4, 5), dtype=bool)
    mask[0, 2] = True
    arrays = [randn(4, 2, 6, seed=1), randn(5, 2, 6, seed=2), randn(5, 2, 6, seed=3)]
    _run(g, t, arrays, key_padding_mask=kpm, attn_mask=mask)


def test_mha_float32_values():
    g, t = _pair_mha(8, 2, dtype=torch.float32)
    x = randn(5, 3, 8, seed=1)
    g_out, g_w = g(graphc.tensor(x), graphc.tensor(x), graphc.tensor(x))
    t_out, t_w = t(torch.tensor(x), torch.tensor(x), torch.tensor(x))
    assert g_out.dtype == graphc.float32
    assert_close(g_out, t_out, 1e-5, 1e-6)
    assert_close(g_w, t_w, 1e-5, 1e-6)


def test_mha_dropout_only_in_training():
    g = nn.MultiheadAttention(6, 2, dropout=0.5)
    x = graphc.tensor(randn(4, 2, 6, seed=1))
    graphc.manual_seed(0)
    out_train, w_train = g(x, x, x)
    g.eval()
    out_eval, w_eval = g(x, x, x)
    assert not np.allclose(w_train.detach().numpy(), w_eval.detach().numpy())
    np.testing.assert_allclose(w_eval.detach().numpy().sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(g(x, x, x)[0]), to_numpy(out_eval))


def test_mha_errors():
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(7, 2)
    with pytest.raises(ValueError, match="must be greater than 0"):
        nn.MultiheadAttention(0, 2)
    g = nn.MultiheadAttention(6, 2)
    x = graphc.randn(4, 2, 6)
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        g(x, x, x, is_causal=True)
    with pytest.raises(Exception, match="embedding dimension of 6"):
        g(graphc.randn(4, 2, 5), x, x)
    with pytest.raises(AssertionError, match="does not match value shape"):
        g(x, x, graphc.randn(3, 2, 6))
    with pytest.raises(AssertionError, match="do not match value's"):
        nn.MultiheadAttention(6, 2, vdim=3)(x, x, graphc.randn(3, 2, 3))
    with pytest.raises(RuntimeError, match=r"2D attn_mask is \(4, 3\), but should be \(4, 4\)"):
        g(x, x, x, attn_mask=graphc.zeros(4, 3))
    with pytest.raises(RuntimeError, match=r"3D attn_mask is \(2, 4, 4\), but should be \(4, 4, 4\)"):
        g(x, x, x, attn_mask=graphc.zeros(2, 4, 4))
    with pytest.raises(AssertionError, match="expected `attn_mask` to be `None`, 2-D or 3-D but found 1-D"):
        g(x, x, x, attn_mask=graphc.zeros(4))


def test_generate_square_subsequent_mask():
    expected = torch.nn.Transformer.generate_square_subsequent_mask(5)
    got = generate_square_subsequent_mask(5)
    assert got.dtype == graphc.float32
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    got64 = generate_square_subsequent_mask(3, dtype=graphc.float64)
    assert got64.dtype == graphc.float64


# -- compiled ----------------------------------------------------------------------


def test_mha_compiled_equals_eager():
    g = nn.MultiheadAttention(6, 2)
    mask = generate_square_subsequent_mask(4)
    kpm = graphc.tensor(np.array([[False, False, True, False], [False, False, False, False]]))

    def fn(x, m):
        out, w = g(x, x, x, key_padding_mask=kpm, attn_mask=m)
        return out + w.sum()

    x = graphc.tensor(randn(4, 2, 6, seed=1))
    expected = to_numpy(fn(x, mask))
    compiled = graphc.compile(fn, backend="interp")
    for _ in range(3):
        np.testing.assert_allclose(to_numpy(compiled(x, mask)), expected, rtol=1e-5, atol=1e-6)


def test_sdpa_compiled_default_backend():
    def fn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    q, k, v = (graphc.tensor(a) for a in _qkv())
    expected = to_numpy(fn(q, k, v))
    compiled = graphc.compile(fn)
    for _ in range(3):
        np.testing.assert_allclose(to_numpy(compiled(q, k, v)), expected, rtol=1e-5, atol=1e-6)


def test_mha_compiled_default_backend():
    g = nn.MultiheadAttention(6, 2, batch_first=True)

    def fn(q, kv):
        return g(q, kv, kv, need_weights=False)[0]

    q, kv = graphc.tensor(randn(2, 3, 6, seed=1)), graphc.tensor(randn(2, 5, 6, seed=2))
    expected = to_numpy(fn(q, kv))
    compiled = graphc.compile(fn)
    for _ in range(3):
        np.testing.assert_allclose(to_numpy(compiled(q, kv)), expected, rtol=1e-5, atol=1e-6)


def _training_steps(compiled: bool):
    graphc.manual_seed(3)
    model = nn.MultiheadAttention(6, 2, batch_first=True)
    head = nn.Linear(6, 1)
    params = list(model.parameters()) + list(head.parameters())
    opt = graphc.optim.SGD(params, lr=0.1)
    mask = generate_square_subsequent_mask(4)

    def step(x, y):
        opt.zero_grad()
        out, _ = model(x, x, x, attn_mask=mask, need_weights=False)
        loss = F.mse_loss(head(out).squeeze(-1), y)
        loss.backward()
        opt.step()
        return loss

    if compiled:
        step = graphc.compile(step, backend="interp")
    x = graphc.tensor(randn(2, 4, 6, seed=1))
    y = graphc.tensor(randn(2, 4, seed=2))
    losses = [float(step(x, y).item()) for _ in range(3)]
    return losses, [p.detach().numpy().copy() for p in params]


def test_mha_compiled_training_step_equals_eager():
    eager_losses, eager_params = _training_steps(False)
    comp_losses, comp_params = _training_steps(True)
    np.testing.assert_allclose(comp_losses, eager_losses, rtol=1e-5)
    assert eager_losses[2] < eager_losses[0]
    for a, b in zip(comp_params, eager_params):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_sdpa_fully_masked_query_gets_zeros_like_torch(kind):
    mask = np.random.default_rng(4).random((4, 6)) > 0.4
    mask[:, 0] = True
    mask[2] = False
    if kind == "float":
        mask = np.where(mask, 0.5, -np.inf)

    def g(q, k, v):
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=graphc.tensor(mask).to(q.dtype) if kind == "float" else graphc.tensor(mask)
        )

    def t(q, k, v):
        return TF.scaled_dot_product_attention(
            q, k, v, attn_mask=torch.tensor(mask).to(q.dtype) if kind == "float" else torch.tensor(mask)
        )

    compare_precise(g, t, *_qkv())


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_fully_masked_query_like_torch(need_weights):
    g, t = _pair_mha(6, 2)
    mask = np.zeros((4, 5), dtype=bool)
    mask[1] = True
    arrays = [randn(4, 2, 6, seed=1), randn(5, 2, 6, seed=2), randn(5, 2, 6, seed=3)]
    gs = [graphc.tensor(a.astype(np.float64)) for a in arrays]
    ts = [torch.tensor(a.astype(np.float64)) for a in arrays]
    g_out, _ = g(*gs, attn_mask=graphc.tensor(mask), need_weights=need_weights)
    t_out, _ = t(*ts, attn_mask=torch.tensor(mask), need_weights=need_weights)
    np.testing.assert_allclose(to_numpy(g_out), to_numpy(t_out), rtol=1e-9, atol=1e-12, equal_nan=True)
    assert np.isnan(to_numpy(g_out)[1]).all() == need_weights
