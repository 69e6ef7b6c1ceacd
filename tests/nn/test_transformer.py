"""TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder,
TransformerDecoder and Transformer against torch: state_dict keys, PyTorch
weights loaded strictly, outputs in float32 and float64, float64 gradients
of inputs and every parameter, masks of each kind, eval-mode padding, the
compiled forward and a compiled training step."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nn_testutil import assert_close, randn, to_numpy  # noqa: E402

import graphc  # noqa: E402
import graphc.nn.functional as F  # noqa: E402
from graphc import nn  # noqa: E402

DT = {torch.float64: graphc.float64, torch.float32: graphc.float32}


def _randomize(module, seed=0):
    """Non-trivial biases and LayerNorm weights, so that each one matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "bias" in name or "norm" in name:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5 + ("weight" in name))


def _pair(cls_name, *args, dtype=torch.float64, **kwargs):
    """(graphc module, torch module) with torch's weights loaded strictly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        t = _build(torch.nn, cls_name, args, kwargs).to(dtype)
        g = _build(nn, cls_name, args, kwargs).to(DT[dtype])
    _randomize(t)
    state = {k: graphc.tensor(v.detach().numpy().copy()) for k, v in t.state_dict().items()}
    g.load_state_dict(state, strict=True)
    return g, t


def _build(lib, cls_name, args, kwargs):
    kwargs = dict(kwargs)
    if kwargs.get("activation") == "module_gelu":
        kwargs["activation"] = lib.GELU(approximate="tanh")
    if kwargs.get("activation") == "callable":
        kwargs["activation"] = (lambda x: x.sigmoid() * x) if lib is nn else (lambda x: torch.sigmoid(x) * x)
    if cls_name in ("TransformerEncoder", "TransformerDecoder"):
        layer_cls = getattr(lib, cls_name + "Layer")
        layer_args, num_layers, norm = args
        layer = layer_cls(*layer_args, **kwargs.pop("layer_kwargs", {}))
        final = lib.LayerNorm(layer_args[0]) if norm else None
        return getattr(lib, cls_name)(layer, num_layers, final, **kwargs)
    return getattr(lib, cls_name)(*args, **kwargs)


def _convert(value, lib):
    if isinstance(value, np.ndarray):
        return lib.tensor(value)
    return value


def _run(g, t, arrays, grad=True, rtol=1e-9, atol=1e-12, **kw):
    """Forward both on the same inputs (in the modules' dtype), compare the
    outputs, then (when grad) the gradients of inputs and all parameters."""
    dtype = next(t.parameters()).dtype
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    gs = [graphc.tensor(a.astype(np_dtype), requires_grad=grad) for a in arrays]
    ts = [torch.tensor(a.astype(np_dtype), requires_grad=grad) for a in arrays]
    g_out = g(*gs, **{k: _convert(v, graphc) for k, v in kw.items()})
    t_out = t(*ts, **{k: _convert(v, torch) for k, v in kw.items()})
    assert_close(g_out, t_out, rtol, atol, "output")
    if not grad:
        return g_out
    cot = np.random.default_rng(7).standard_normal(tuple(t_out.shape))
    (g_out * graphc.tensor(cot.astype(np_dtype))).sum().backward()
    (t_out * torch.tensor(cot.astype(np_dtype))).sum().backward()
    for i, (a, b) in enumerate(zip(gs, ts)):
        assert_close(a.grad, b.grad, rtol, atol, f"gradient of input {i}")
    g_params = dict(g.named_parameters())
    assert sorted(g_params) == sorted(n for n, _ in t.named_parameters())
    for name, p in t.named_parameters():
        assert g_params[name].grad is not None, f"parameter {name} got no gradient"
        assert_close(g_params[name].grad, p.grad, rtol, atol, f"gradient of {name}")
    return g_out


def _bool_mask(shape, seed, p=0.35):
    mask = np.random.default_rng(seed).random(shape) < p
    mask[..., 0] = False  # True = may not attend; keep one key per row
    return mask


# -- structure -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls_name, args, kwargs",
    [
        ("TransformerEncoderLayer", (8, 2), {}),
        ("TransformerEncoderLayer", (8, 2, 16), {"bias": False, "activation": "module_gelu"}),
        ("TransformerDecoderLayer", (8, 2, 16), {}),
        ("TransformerDecoderLayer", (8, 2, 16), {"bias": False, "norm_first": True}),
        ("TransformerEncoder", ((8, 2, 16), 2, True), {}),
        ("TransformerDecoder", ((8, 2, 16), 3, False), {}),
        ("Transformer", (8, 2, 2, 1, 16), {}),
        ("Transformer", (8, 2, 1, 2, 16), {"bias": False, "batch_first": True}),
    ],
)
def test_state_dict_keys_shapes_and_repr(cls_name, args, kwargs):
    g, t = _pair(cls_name, *args, dtype=torch.float32, **kwargs)
    assert list(g.state_dict()) == list(t.state_dict())
    assert {k: tuple(v.shape) for k, v in g.state_dict().items()} == {
        k: tuple(v.shape) for k, v in t.state_dict().items()
    }
    assert repr(g) == repr(t)


def test_module_import_paths():
    from graphc.nn.modules import transformer

    for name in transformer.__all__:
        assert getattr(transformer, name) is getattr(nn, name)
        assert hasattr(torch.nn.modules.transformer, name)
    assert nn.Transformer.generate_square_subsequent_mask(4).tolist() == (
        torch.nn.Transformer.generate_square_subsequent_mask(4).tolist()
    )


def test_dtype_factory_kwarg():
    layer = nn.TransformerDecoderLayer(8, 2, 16, dtype=graphc.float64)
    assert {p.dtype for p in layer.parameters()} == {graphc.float64}
    model = nn.Transformer(8, 2, 1, 1, 16, dtype=graphc.float64, batch_first=True)
    assert {p.dtype for p in model.parameters()} == {graphc.float64}
    out = model(graphc.randn(2, 3, 8, dtype=graphc.float64), graphc.randn(2, 4, 8, dtype=graphc.float64))
    assert out.dtype == graphc.float64 and out.shape == (2, 4, 8)
    assert {p.dtype for p in nn.TransformerEncoderLayer(8, 2, 16).parameters()} == {graphc.float32}


def test_fresh_init_matches_torch_statistics():
    graphc.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32)
    assert np.all(to_numpy(layer.self_attn.in_proj_bias) == 0)
    assert np.all(to_numpy(layer.norm1.weight) == 1) and np.all(to_numpy(layer.norm1.bias) == 0)
    bound = 1 / np.sqrt(16)
    w = to_numpy(layer.linear1.weight)
    assert np.abs(w).max() <= bound and np.abs(w).max() > bound / 2
    model = nn.Transformer(16, 4, 1, 1, 32)
    bound = np.sqrt(6.0 / (16 + 32))  # xavier_uniform_ on every matrix
    w = to_numpy(model.encoder.layers[0].linear1.weight)
    assert np.abs(w).max() <= bound and np.abs(w).max() > bound / 2
    # the clones are independent copies, not shared parameters
    a, b = (model.decoder.layers[0].linear1.weight, nn.TransformerDecoder(model.decoder.layers[0], 2).layers[1])
    assert b.linear1.weight is not a
    np.testing.assert_array_equal(to_numpy(b.linear1.weight), to_numpy(a))


# -- encoder layer -------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "module_gelu", "callable"])
def test_encoder_layer(norm_first, activation):
    g, t = _pair("TransformerEncoderLayer", 8, 2, 12, dropout=0.0, activation=activation, norm_first=norm_first)
    _run(g, t, [randn(5, 3, 8, seed=1)])


@pytest.mark.parametrize("kind", ["bool", "float", "causal", "padding", "both", "unbatched"])
def test_encoder_layer_masks(kind):
    g, t = _pair("TransformerEncoderLayer", 6, 3, 10, dropout=0.0, batch_first=True)
    S, N = 5, 2
    x = randn(N, S, 6, seed=1)
    kpm = np.array([[False, False, False, True, True], [False, False, False, False, True]])
    if kind == "bool":
        _run(g, t, [x], src_mask=_bool_mask((S, S), 2))
    elif kind == "float":
        _run(g, t, [x], src_mask=randn(S, S, seed=2).astype(np.float64))
    elif kind == "causal":
        mask = nn.Transformer.generate_square_subsequent_mask(S, dtype=graphc.float64).numpy()
        _run(g, t, [x], src_mask=mask, is_causal=True)
    elif kind == "padding":
        _run(g, t, [x], src_key_padding_mask=kpm)
    elif kind == "both":
        _run(g, t, [x], src_mask=_bool_mask((N * 3, S, S), 3), src_key_padding_mask=kpm)
    else:
        _run(g, t, [randn(S, 6, seed=1)], src_key_padding_mask=kpm[0])


def test_encoder_layer_float32_values():
    g, t = _pair("TransformerEncoderLayer", 8, 2, 16, dtype=torch.float32, dropout=0.0)
    _run(g, t, [randn(5, 3, 8, seed=1)], rtol=1e-5, atol=1e-5)


# -- decoder layer -------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_layer(norm_first, batch_first):
    g, t = _pair("TransformerDecoderLayer", 8, 4, 12, dropout=0.0, norm_first=norm_first, batch_first=batch_first)
    tgt, mem = (
        (randn(2, 4, 8, seed=1), randn(2, 6, 8, seed=2))
        if batch_first
        else (
            randn(4, 2, 8, seed=1),
            randn(6, 2, 8, seed=2),
        )
    )
    _run(g, t, [tgt, mem])


def test_decoder_layer_masks():
    g, t = _pair("TransformerDecoderLayer", 6, 2, 10, dropout=0.0, activation="gelu")
    T, S, N = 4, 5, 2
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(T, dtype=graphc.float64).numpy()
    _run(
        g,
        t,
        [randn(T, N, 6, seed=1), randn(S, N, 6, seed=2)],
        tgt_mask=tgt_mask,
        tgt_is_causal=True,
        memory_mask=_bool_mask((T, S), 3),
        tgt_key_padding_mask=np.array([[False, False, False, True], [False, False, False, False]]),
        memory_key_padding_mask=np.array([[False, True, False, False, False], [False, False, False, True, True]]),
    )


# -- stacks and the full model --------------------------------------------------------


@pytest.mark.parametrize("norm", [False, True])
def test_encoder_stack(norm):
    g, t = _pair("TransformerEncoder", (6, 2, 10), 2, norm, layer_kwargs=dict(dropout=0.0), enable_nested_tensor=False)
    mask = nn.Transformer.generate_square_subsequent_mask(5, dtype=graphc.float64).numpy()
    _run(g, t, [randn(5, 3, 6, seed=1)], mask=mask)
    g.zero_grad()
    t.zero_grad()
    _run(g, t, [randn(5, 3, 6, seed=2)], src_key_padding_mask=_bool_mask((3, 5), 4))


def test_decoder_stack():
    g, t = _pair("TransformerDecoder", (6, 2, 10), 2, True, layer_kwargs=dict(dropout=0.0, norm_first=True))
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=graphc.float64).numpy()
    _run(g, t, [randn(4, 2, 6, seed=1), randn(5, 2, 6, seed=2)], tgt_mask=tgt_mask)


@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer(batch_first):
    g, t = _pair("Transformer", 8, 2, 2, 2, 12, dropout=0.0, batch_first=batch_first)
    S, T, N = 5, 4, 2
    src, tgt = (
        (randn(N, S, 8, seed=1), randn(N, T, 8, seed=2))
        if batch_first
        else (
            randn(S, N, 8, seed=1),
            randn(T, N, 8, seed=2),
        )
    )
    _run(
        g,
        t,
        [src, tgt],
        tgt_mask=nn.Transformer.generate_square_subsequent_mask(T, dtype=graphc.float64).numpy(),
        src_key_padding_mask=np.array([[False] * 5, [False, False, False, True, True]]),
        memory_key_padding_mask=np.array([[False] * 5, [False, False, False, True, True]]),
    )


def test_transformer_unbatched_float32():
    g, t = _pair("Transformer", 8, 2, 1, 1, 16, dtype=torch.float32, dropout=0.0, norm_first=True)
    _run(g, t, [randn(5, 8, seed=1), randn(3, 8, seed=2)], rtol=1e-5, atol=1e-5)


def test_torch_state_dict_loads_strictly_and_gives_the_same_outputs():
    """A default-sized float32 model (dropout on, eval mode, no grad): the
    inference path of both frameworks."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=64)
        g = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=64)
    result = g.load_state_dict({k: graphc.tensor(v.numpy().copy()) for k, v in t.state_dict().items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    t.eval()
    g.eval()
    src, tgt = randn(7, 2, 32, seed=1), randn(5, 2, 32, seed=2)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5)
    with torch.no_grad(), graphc.no_grad():
        expected = t(torch.tensor(src), torch.tensor(tgt), tgt_mask=mask)
        got = g(graphc.tensor(src), graphc.tensor(tgt), tgt_mask=graphc.tensor(mask.numpy()))
    assert_close(got, expected, 1e-5, 1e-5)


@pytest.mark.parametrize("aligned", [True, False])
def test_encoder_inference_zeroes_padding_like_torch(aligned):
    """PyTorch's nested-tensor inference path: padded positions come out 0
    before the final norm (only for left-aligned padding, with mask_check)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g, t = _pair(
            "TransformerEncoder", (8, 2, 16), 2, True, layer_kwargs=dict(batch_first=True), dtype=torch.float32
        )
    assert g.use_nested_tensor and t.use_nested_tensor
    g.eval()
    t.eval()
    kpm = np.array([[False, False, False, True], [False, False, False, False], [False, True, True, True]])
    if not aligned:
        kpm[1, 1] = True
    x = randn(3, 4, 8, seed=1)
    with torch.no_grad(), graphc.no_grad():
        expected = t(torch.tensor(x), src_key_padding_mask=torch.tensor(kpm))
        got = g(graphc.tensor(x), src_key_padding_mask=graphc.tensor(kpm))
    assert_close(got, expected, 1e-5, 1e-5)


def test_nested_tensor_flag_and_warning_follow_torch():
    with pytest.warns(UserWarning, match="batch_first was not True"):
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 1)
    assert not enc.use_nested_tensor and enc.enable_nested_tensor
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 1)
    assert enc.use_nested_tensor
    with pytest.warns(UserWarning, match="num_heads is odd"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(9, 3, 16, batch_first=True), 1)


def test_dropout_only_in_training():
    graphc.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = graphc.randn(4, 2, 8)
    train_out = layer(x)
    layer.eval()
    eval_out = layer(x)
    assert not np.allclose(to_numpy(train_out), to_numpy(eval_out))
    np.testing.assert_array_equal(to_numpy(layer(x)), to_numpy(eval_out))


def test_errors():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.TransformerDecoderLayer(7, 2)
    layer = nn.TransformerEncoderLayer(8, 2, 16)
    x = graphc.randn(4, 2, 8)
    with pytest.raises(AssertionError, match="only bool and floating types of src_key_padding_mask"):
        layer(x, src_key_padding_mask=graphc.zeros(2, 4, dtype=graphc.int64))
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        layer(x, is_causal=True)
    model = nn.Transformer(8, 2, 1, 1, 16)
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        model(graphc.randn(5, 2, 8), graphc.randn(4, 3, 8))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal to d_model"):
        model(graphc.randn(5, 2, 8), graphc.randn(4, 2, 6))


# -- compiled ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["interp", pytest.param("llvm", marks=pytest.mark.slow)])
def test_compiled_forward_equals_eager(backend):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graphc.manual_seed(1)
        model = nn.Transformer(8, 2, 1, 1, 16, dropout=0.0, batch_first=True)
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(4)
    kpm = graphc.tensor(np.array([[False] * 5, [False, False, False, True, True]]))

    def fn(src, tgt):
        return model(src, tgt, tgt_mask=tgt_mask, src_key_padding_mask=kpm, memory_key_padding_mask=kpm)

    src, tgt = graphc.tensor(randn(2, 5, 8, seed=1)), graphc.tensor(randn(2, 4, 8, seed=2))
    expected = to_numpy(fn(src, tgt))
    compiled = graphc.compile(fn, backend=backend)
    for _ in range(3):
        np.testing.assert_allclose(to_numpy(compiled(src, tgt)), expected, rtol=1e-5, atol=1e-5)
    compiled_model = graphc.compile(model, backend=backend)
    with graphc.no_grad():
        out = compiled_model(src, tgt, tgt_mask=tgt_mask, src_key_padding_mask=kpm, memory_key_padding_mask=kpm)
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-5, atol=1e-5)


def test_compiled_model_gradients_equal_eager():
    """graphc.compile(model) with a backward: the compiled forward keeps
    what the compiled backward needs; gradients equal eager ones."""
    g, _ = _pair("TransformerDecoder", (8, 2, 16), 2, True, layer_kwargs=dict(dropout=0.0), dtype=torch.float32)
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(4)
    tgt, mem = graphc.tensor(randn(4, 2, 8, seed=1)), graphc.tensor(randn(5, 2, 8, seed=2))
    cot = graphc.tensor(randn(4, 2, 8, seed=3))
    grads = []
    for model in (g, graphc.compile(g, backend="interp")):
        g.zero_grad()
        (model(tgt, mem, tgt_mask=tgt_mask) * cot).sum().backward()
        grads.append({name: to_numpy(p.grad) for name, p in g.named_parameters()})
    for name, expected in grads[0].items():
        np.testing.assert_allclose(grads[1][name], expected, rtol=1e-4, atol=1e-5, err_msg=name)


def _training_losses(lib, model, steps, backend):
    """Train `model` (a seq2seq regression) with AdamW for `steps` steps on
    fixed batches; the losses."""
    optimizer = lib.optim.AdamW(model.parameters(), lr=1e-2)
    mask = lib.nn.Transformer.generate_square_subsequent_mask(4)
    src = lib.tensor(randn(2, 5, 8, seed=1))
    tgt = lib.tensor(randn(2, 4, 8, seed=2))
    target = lib.tensor(randn(2, 4, 8, seed=3))
    loss_fn = F.mse_loss if lib is graphc else torch.nn.functional.mse_loss

    def step():
        optimizer.zero_grad()
        loss = loss_fn(model(src, tgt, tgt_mask=mask), target)
        loss.backward()
        optimizer.step()
        return loss

    if backend is not None:
        step = graphc.compile(step, backend=backend)
    return [float(step().item()) for _ in range(steps)]


@pytest.mark.parametrize("backend", [None, "interp", pytest.param("llvm", marks=pytest.mark.slow)])
def test_training_steps_match_torch(backend):
    """Eager (None) and compiled training steps: forward, backward and AdamW."""
    g, t = _pair("Transformer", 8, 2, 1, 1, 16, dtype=torch.float32, dropout=0.0, batch_first=True, norm_first=True)
    ours = _training_losses(graphc, g, 5, backend)
    theirs = _training_losses(torch, t, 5, None)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours[-1] < ours[0]
    g_state = g.state_dict()
    for name, value in t.state_dict().items():
        ours_value = g_state[name]
        if name.endswith("in_proj_bias"):
            # The key bias shifts every score of a query equally, so its true
            # gradient is zero and Adam turns rounding noise into steps:
            # compare the query and value parts only.
            keep = list(range(8)) + list(range(16, 24))
            ours_value, value = ours_value[keep], value[keep]
        assert_close(ours_value, value, 1e-3, 1e-5, f"{name} after training")


def test_docstring_examples_run():
    import doctest

    import graphc.nn.transformer as module

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = doctest.testmod(module, extraglobs={"graphc": graphc})
    assert result.attempted >= 10 and result.failed == 0
