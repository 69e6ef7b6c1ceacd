"""interpolate/Upsample, EmbeddingBag, F.pad modes and the padding layers,
Fold/Unfold, ConvTranspose1d and the lazy layers, against PyTorch, eager
and compiled."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import graphc  # noqa: E402
import graphc.nn as nn  # noqa: E402
import graphc.nn.functional as F  # noqa: E402
from tests.nn.nn_testutil import assert_close, compare, compare_modules, copy_weights, randn  # noqa: E402

TF = torch.nn.functional


def assert_compiles(fn, *inputs, backend="interp"):
    """graphc.compile(fn) gives eager's values (tracing call and compiled calls)."""
    expected = fn(*inputs).detach().numpy()
    compiled = graphc.compile(fn, backend=backend)
    for _ in range(2):
        np.testing.assert_allclose(compiled(*inputs).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


# -- interpolate ----------------------------------------------------------------

INTERPOLATE_CASES = [
    ((2, 3, 5), dict(size=9, mode="linear", align_corners=False)),
    ((2, 3, 5), dict(scale_factor=2.5, mode="linear", align_corners=True)),
    ((2, 3, 5), dict(scale_factor=1.7, mode="nearest")),
    ((2, 3, 5), dict(scale_factor=1.7, mode="nearest-exact")),
    ((1, 2, 4, 6), dict(size=(7, 3), mode="bilinear", align_corners=False)),
    ((1, 2, 4, 6), dict(size=(7, 3), mode="bilinear", align_corners=True)),
    ((1, 2, 4, 6), dict(scale_factor=(1.5, 0.7), mode="bilinear")),
    ((1, 2, 4, 6), dict(scale_factor=(1.5, 0.7), mode="bilinear", recompute_scale_factor=True)),
    ((1, 2, 4, 6), dict(scale_factor=2, mode="nearest")),
    ((1, 2, 7, 6), dict(scale_factor=1 / 3, mode="nearest")),
    ((1, 2, 4, 6), dict(size=(7, 3), mode="bicubic", align_corners=False)),
    ((1, 2, 4, 6), dict(size=(9, 13), mode="bicubic", align_corners=True)),
    ((1, 2, 4, 6), dict(size=(3, 5), mode="area")),
    ((1, 2, 3, 4, 6), dict(size=(5, 3, 8), mode="trilinear")),
    ((1, 2, 3, 4, 6), dict(scale_factor=2, mode="nearest")),
]


@pytest.mark.parametrize("shape, kwargs", INTERPOLATE_CASES, ids=lambda v: str(v))
def test_interpolate_matches_torch(shape, kwargs):
    compare(
        lambda x: F.interpolate(x, **kwargs),
        lambda x: TF.interpolate(x, **kwargs),
        randn(*shape),
        atol=3e-6,
    )


def test_interpolate_compiled():
    x = graphc.tensor(randn(2, 3, 4, 5))
    assert_compiles(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), x)
    assert_compiles(lambda x: F.interpolate(x, size=(3, 7), mode="nearest"), x, backend="llvm")


def test_interpolate_errors():
    x = graphc.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(NotImplementedError, match="Got 4D input, but linear mode needs 3D input"):
        F.interpolate(x, scale_factor=2, mode="linear")


@pytest.mark.parametrize(
    "make",
    [
        lambda nn: nn.Upsample(scale_factor=2),
        lambda nn: nn.Upsample(size=(5, 7), mode="bilinear", align_corners=False),
        lambda nn: nn.UpsamplingNearest2d(scale_factor=3),
        lambda nn: nn.UpsamplingBilinear2d(size=(6, 5)),
    ],
)
def test_upsample_layers(make):
    g_layer, t_layer = make(nn), make(torch.nn)
    compare(g_layer, t_layer, randn(1, 2, 3, 4))
    assert repr(g_layer) == repr(t_layer)


# -- EmbeddingBag ---------------------------------------------------------------

INDICES = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0, 4], dtype=np.int64)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 4])
@pytest.mark.parametrize("last", [False, True])
def test_embedding_bag_offsets(mode, padding_idx, last):
    offsets = np.array([0, 4, 4, 7, 10] if last else [0, 4, 4, 7], dtype=np.int64)
    g, t = graphc.tensor(INDICES), torch.tensor(INDICES)
    g_off, t_off = graphc.tensor(offsets), torch.tensor(offsets)
    compare(
        lambda w: F.embedding_bag(g, w, g_off, mode=mode, padding_idx=padding_idx, include_last_offset=last),
        lambda w: TF.embedding_bag(t, w, t_off, mode=mode, padding_idx=padding_idx, include_last_offset=last),
        randn(10, 3),
    )


def test_embedding_bag_per_sample_weights_and_2d_input():
    offsets = np.array([0, 3, 6], dtype=np.int64)
    compare(
        lambda w, p: F.embedding_bag(
            graphc.tensor(INDICES), w, graphc.tensor(offsets), mode="sum", per_sample_weights=p
        ),
        lambda w, p: TF.embedding_bag(
            torch.tensor(INDICES), w, torch.tensor(offsets), mode="sum", per_sample_weights=p
        ),
        randn(10, 3),
        randn(10, seed=1),
    )
    batch = INDICES.reshape(2, 5)
    for mode in ("sum", "mean", "max"):
        compare(
            lambda w, mode=mode: F.embedding_bag(graphc.tensor(batch), w, mode=mode),
            lambda w, mode=mode: TF.embedding_bag(torch.tensor(batch), w, mode=mode),
            randn(10, 3),
        )


def test_embedding_bag_module_and_compiled():
    t_layer = torch.nn.EmbeddingBag(10, 4, mode="max", padding_idx=2)
    g_layer = nn.EmbeddingBag(10, 4, mode="max", padding_idx=2)
    assert repr(g_layer) == repr(t_layer)
    assert float(g_layer.weight[2].abs().sum()) == 0.0
    copy_weights(g_layer, t_layer)
    offsets = np.array([0, 2, 5], dtype=np.int64)
    g_out = g_layer(graphc.tensor(INDICES), graphc.tensor(offsets))
    t_out = t_layer(torch.tensor(INDICES), torch.tensor(offsets))
    assert_close(g_out, t_out)
    g_out.sum().backward()
    t_out.sum().backward()
    assert_close(g_layer.weight.grad, t_layer.weight.grad)
    # offsets are a value of the compiled program, not a constant
    assert_compiles(lambda i, o: g_layer(i, o), graphc.tensor(INDICES), graphc.tensor(offsets))
    assert_compiles(lambda i, o: g_layer(i, o), graphc.tensor(INDICES), graphc.tensor(offsets), backend="llvm")
    frozen = nn.EmbeddingBag.from_pretrained(graphc.ones(3, 2), mode="sum")
    assert not frozen.weight.requires_grad
    assert frozen(graphc.tensor([[0, 1], [2, 2]])).tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_embedding_bag_errors():
    w = graphc.zeros(5, 2)
    with pytest.raises(ValueError, match="offsets has to be None"):
        F.embedding_bag(graphc.tensor([[1, 2]]), w, graphc.tensor([0]))
    with pytest.raises(ValueError, match="offsets has to be a 1D Tensor but got None"):
        F.embedding_bag(graphc.tensor([1, 2]), w)
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        F.embedding_bag(graphc.tensor([[1, 2]]), w, per_sample_weights=graphc.ones(1, 2))
    with pytest.raises(ValueError, match="offsets\\[0\\] has to be 0"):
        F.embedding_bag(graphc.tensor([1, 2]), w, graphc.tensor([1]))
    with pytest.raises(ValueError, match="mode has to be one of"):
        nn.EmbeddingBag(5, 2, mode="min")


# -- padding ----------------------------------------------------------------------

PAD_CASES = [
    ((2, 3, 5), (2, 1)),
    ((1, 2, 4, 5), (1, 2, 3, 0)),
    ((1, 2, 3, 4, 5), (1, 2, 2, 0, 1, 1)),
    ((2, 3, 5), (-1, 2)),
]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, amounts", PAD_CASES)
def test_pad_modes(mode, shape, amounts):
    compare(lambda x: F.pad(x, amounts, mode=mode), lambda x: TF.pad(x, amounts, mode=mode), randn(*shape))


def test_pad_mode_compiled_and_errors():
    x = graphc.tensor(randn(1, 2, 4, 5))
    assert_compiles(lambda x: F.pad(x, (1, 2, 3, 1), mode="reflect") * 2, x)
    with pytest.raises(ValueError, match="less than the corresponding input dimension"):
        F.pad(graphc.zeros(1, 2, 3), (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="wrapping around more than once"):
        F.pad(graphc.zeros(1, 2, 3), (4, 0), mode="circular")
    with pytest.raises(NotImplementedError, match="2D, 3D, 4D, 5D padding"):
        F.pad(graphc.zeros(3), (1, 1), mode="reflect")


@pytest.mark.parametrize(
    "name, args, shape",
    [
        ("ReflectionPad1d", (2,), (2, 3, 5)),
        ("ReflectionPad2d", ((1, 2, 0, 3),), (1, 2, 4, 5)),
        ("ReflectionPad3d", (1,), (1, 2, 3, 4, 5)),
        ("ReplicationPad1d", ((3, 1),), (3, 5)),
        ("ReplicationPad2d", (2,), (1, 2, 4, 5)),
        ("ReplicationPad3d", ((1, 0, 2, 1, 0, 1),), (2, 3, 4, 5)),
        ("ZeroPad1d", (2,), (2, 3, 5)),
        ("ZeroPad2d", ((1, 0, 2, 3),), (1, 2, 4, 5)),
        ("ZeroPad3d", (1,), (1, 2, 3, 4, 5)),
        ("ConstantPad1d", (2, 3.5), (2, 3, 5)),
        ("ConstantPad2d", ((1, 0, 2, 3), -1.0), (1, 2, 4, 5)),
        ("ConstantPad3d", (1, 0.5), (1, 2, 3, 4, 5)),
        ("CircularPad1d", (2,), (2, 3, 5)),
        ("CircularPad2d", ((1, 2, 0, 3),), (1, 2, 4, 5)),
        ("CircularPad3d", (1,), (1, 2, 3, 4, 5)),
    ],
)
def test_padding_layers(name, args, shape):
    g_layer, t_layer = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert g_layer.padding == t_layer.padding
    assert repr(g_layer) == repr(t_layer)
    compare(g_layer, t_layer, randn(*shape))


# -- Fold / Unfold, ConvTranspose1d, lazy layers --------------------------------------


def test_fold_unfold_layers():
    kwargs = dict(kernel_size=(2, 3), dilation=1, padding=1, stride=2)
    unfold, t_unfold = nn.Unfold(**kwargs), torch.nn.Unfold(**kwargs)
    assert repr(unfold) == repr(t_unfold)
    compare(unfold, t_unfold, randn(2, 3, 5, 6))
    fold, t_fold = nn.Fold((5, 6), **kwargs), torch.nn.Fold((5, 6), **kwargs)
    assert repr(fold) == repr(t_fold)
    compare(fold, t_fold, randn(2, 18, 9))
    compare(unfold, t_unfold, randn(3, 5, 6))  # unbatched
    compare(fold, t_fold, randn(18, 9))


@pytest.mark.parametrize(
    "kwargs",
    [dict(stride=2), dict(stride=3, padding=1, output_padding=2), dict(groups=2, dilation=2, bias=False)],
)
def test_conv_transpose1d(kwargs):
    torch.manual_seed(0)
    g_layer, t_layer = nn.ConvTranspose1d(4, 6, 3, **kwargs), torch.nn.ConvTranspose1d(4, 6, 3, **kwargs)
    assert repr(g_layer) == repr(t_layer)
    compare_modules(g_layer, t_layer, randn(2, 4, 7))
    x = randn(4, 7, seed=3)  # unbatched
    assert_close(g_layer(graphc.tensor(x)), t_layer(torch.tensor(x)))
    assert_compiles(g_layer, graphc.tensor(randn(2, 4, 7)))


def test_conv_transpose1d_output_size():
    g_layer, t_layer = nn.ConvTranspose1d(2, 3, 3, stride=2), torch.nn.ConvTranspose1d(2, 3, 3, stride=2)
    copy_weights(g_layer, t_layer)
    x = randn(1, 2, 5)
    assert_close(g_layer(graphc.tensor(x), output_size=[12]), t_layer(torch.tensor(x), output_size=[12]))
    with pytest.raises(ValueError, match="not reachable"):
        g_layer(graphc.tensor(x), output_size=[20])
    assert_close(
        F.conv_transpose1d(graphc.tensor(x), g_layer.weight, None, 2),
        TF.conv_transpose1d(torch.tensor(x), t_layer.weight, None, 2),
    )


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda nn: nn.LazyLinear(3), (4, 5)),
        (lambda nn: nn.LazyLinear(2, bias=False), (2, 3, 6)),
        (lambda nn: nn.LazyConv2d(4, 3, padding=1), (1, 2, 5, 5)),
        (lambda nn: nn.LazyConv1d(4, 3, groups=2), (2, 4, 6)),
    ],
)
def test_lazy_layers_materialize_on_first_call(make, shape):
    g_layer, t_layer = make(nn), make(torch.nn)
    assert g_layer.has_uninitialized_params()
    assert isinstance(g_layer.weight, nn.UninitializedParameter)
    x = randn(*shape)
    g_layer(graphc.tensor(x))
    t_layer(torch.tensor(x))
    assert type(g_layer).__name__ == type(t_layer).__name__  # became Linear / ConvNd
    assert repr(g_layer) == repr(t_layer)
    assert {k: tuple(v.shape) for k, v in g_layer.state_dict().items()} == {
        k: tuple(v.shape) for k, v in t_layer.state_dict().items()
    }
    compare_modules(g_layer, t_layer, x)
    assert_compiles(g_layer, graphc.tensor(x))


def test_lazy_layer_compiled_directly():
    # graphc.compile's first call runs eagerly, which materializes the layer.
    layer = nn.LazyLinear(3)
    compiled = graphc.compile(layer, backend="interp")
    x = graphc.tensor(randn(2, 4))
    outputs = [compiled(x).detach().numpy() for _ in range(3)]
    assert type(layer) is nn.Linear and layer.in_features == 4
    for out in outputs:
        np.testing.assert_allclose(out, layer(x).detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "sub, names",
    [
        ("padding", ["ReflectionPad2d", "ZeroPad2d", "CircularPad2d", "ConstantPad1d", "ReplicationPad3d"]),
        ("upsampling", ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]),
        ("fold", ["Fold", "Unfold"]),
        ("sparse", ["EmbeddingBag"]),
        ("linear", ["LazyLinear"]),
        ("conv", ["ConvTranspose1d", "LazyConv2d"]),
        ("lazy", ["LazyModuleMixin"]),
    ],
)
def test_torch_nn_modules_import_paths(sub, names):
    import importlib

    ours = importlib.import_module(f"graphc.nn.modules.{sub}")
    theirs = importlib.import_module(f"torch.nn.modules.{sub}")
    for name in names:
        assert hasattr(theirs, name)
        assert getattr(ours, name) is (getattr(nn, name) if name != "LazyModuleMixin" else nn.lazy.LazyModuleMixin)
    assert set(ours.__all__) <= set(dir(theirs))


def test_lazy_layers_load_a_state_dict_before_their_first_call():
    torch.manual_seed(0)
    source = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, groups=2), torch.nn.Flatten(), torch.nn.Linear(36, 3))
    model = nn.Sequential(nn.LazyConv2d(4, 3, groups=2), nn.Flatten(), nn.LazyLinear(3))
    copy_weights(model, source)
    assert type(model[0]) is nn.Conv2d and model[0].in_channels == 2
    assert type(model[2]) is nn.Linear and model[2].in_features == 36
    assert repr(model) == repr(source)
    compare_modules(model, source, randn(2, 2, 5, 5))
