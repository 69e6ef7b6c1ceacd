"""graphc.load of PyTorch checkpoints: torch.save's zip and legacy formats,
the restricted unpickler, views, mmap, map_location, corrupt files, and a
torch ResNet-18 fine-tuned in graphc."""

import io
import os
import pickle
import tarfile
import warnings
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import graphc  # noqa: E402
from graphc.serialization import CheckpointError  # noqa: E402

FORMATS = ["zip", "legacy"]


def _save(obj, path, fmt):
    torch.save(obj, path, _use_new_zipfile_serialization=(fmt == "zip"))
    return path


def _values(t):
    """A torch tensor's values as numpy, bfloat16 widened to float32."""
    t = t.detach()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


DTYPES = {
    # torch dtype -> the graphc dtype it loads as
    torch.float32: graphc.float32,
    torch.float64: graphc.float64,
    torch.float16: graphc.float16,
    torch.bfloat16: graphc.float32,
    torch.int64: graphc.int64,
    torch.int32: graphc.int32,
    torch.int16: graphc.int16,
    torch.int8: graphc.int8,
    torch.uint8: graphc.uint8,
    torch.bool: graphc.bool,
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_dtype_loads_with_torchs_values(tmp_path, fmt):
    gen = torch.Generator().manual_seed(0)
    state = OrderedDict()
    for dtype in DTYPES:
        values = torch.randn(3, 4, generator=gen) * 100
        state[str(dtype)] = values > 0 if dtype == torch.bool else values.to(dtype)
    if fmt == "zip":  # torch writes its newer unsigned dtypes only in the zip format
        state["torch.uint16"] = torch.arange(60000, 60012, dtype=torch.int32).to(torch.uint16).view(3, 4)
    loaded = graphc.load(_save(state, tmp_path / "m.pt", fmt))
    assert type(loaded) is OrderedDict and list(loaded) == list(state)
    for key, expected in state.items():
        got = loaded[key]
        assert isinstance(got, graphc.Tensor) and tuple(got.shape) == (3, 4)
        if expected.dtype == torch.uint16:
            assert got.dtype == graphc.int32
            np.testing.assert_array_equal(got.numpy(), np.arange(60000, 60012).reshape(3, 4))
            continue
        assert got.dtype == DTYPES[expected.dtype], key
        np.testing.assert_array_equal(got.numpy(), _values(expected))


@pytest.mark.parametrize("fmt", FORMATS)
def test_containers_scalars_parameters_and_torch_objects(tmp_path, fmt):
    obj = {
        "param": torch.nn.Parameter(torch.ones(2)),
        "frozen": torch.nn.Parameter(torch.zeros(1), requires_grad=False),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "grad": torch.ones(2, requires_grad=True),
        "nested": [1, 2.5, "s", None, True, (3, b"raw")],
        "set": {1, 2},
        "size": torch.Size([2, 3]),
        "dtype": torch.float64,
        "bf16_dtype": torch.bfloat16,
        "device": torch.device("cpu"),
        7: "int key",
    }
    loaded = graphc.load(_save(obj, tmp_path / "c.pt", fmt))
    assert isinstance(loaded["param"], graphc.nn.Parameter) and loaded["param"].requires_grad
    assert isinstance(loaded["frozen"], graphc.nn.Parameter) and not loaded["frozen"].requires_grad
    assert loaded["scalar"].shape == () and loaded["scalar"].item() == 2.5
    assert tuple(loaded["empty"].shape) == (0, 3)
    assert loaded["grad"].requires_grad
    assert loaded["nested"] == [1, 2.5, "s", None, True, (3, b"raw")]
    assert loaded["set"] == {1, 2}
    assert loaded["size"] == (2, 3) and isinstance(loaded["size"], graphc.Size)
    assert loaded["dtype"] is graphc.float64
    assert repr(loaded["bf16_dtype"]) == "torch.bfloat16"
    assert loaded["device"] == graphc.device("cpu")
    assert loaded[7] == "int key"


@pytest.mark.parametrize("fmt", FORMATS)
def test_shared_storages_stay_views(tmp_path, fmt):
    base = torch.arange(24, dtype=torch.float32)
    obj = {
        "base": base,
        "matrix": base.view(4, 6),
        "transposed": base.view(4, 6).t(),
        "slice": base.view(4, 6)[1:3, 2:5],
        "expanded": base[:3].view(3, 1).expand(3, 4),
        "step": base[1::5],
        "bf_a": torch.arange(6, dtype=torch.bfloat16),
    }
    obj["bf_b"] = obj["bf_a"][2:4]
    loaded = graphc.load(_save(obj, tmp_path / "v.pt", fmt))
    for key, expected in obj.items():
        np.testing.assert_array_equal(loaded[key].numpy(), _values(expected), err_msg=key)
    # One storage in the file, one array in memory: writing through one
    # tensor shows through the others, as in torch.
    loaded["base"].add_(100)
    np.testing.assert_array_equal(loaded["slice"].numpy(), _values(obj["slice"]) + 100)
    np.testing.assert_array_equal(loaded["transposed"].numpy(), _values(obj["transposed"]) + 100)
    loaded["bf_a"].mul_(2)
    np.testing.assert_array_equal(loaded["bf_b"].numpy(), [4.0, 6.0])


def test_mmap_maps_the_zip_records_copy_on_write(tmp_path):
    state = {"w": torch.arange(1000, dtype=torch.float32), "h": torch.ones(4, dtype=torch.float16)}
    path = _save(state, tmp_path / "m.pt", "zip")
    before = path.read_bytes()
    loaded = graphc.load(path, mmap=True)
    np.testing.assert_array_equal(loaded["w"].numpy(), np.arange(1000))
    np.testing.assert_array_equal(loaded["h"].numpy(), np.ones(4))
    # The arrays are views of the mapped file, not copies ...
    array = loaded["w"].numpy()
    while isinstance(array.base, np.ndarray):
        array = array.base
    assert not isinstance(array.base, (bytes, bytearray)) and array.base is not None
    # ... and writing to them never changes the file.
    loaded["w"].add_(1)
    assert loaded["w"].numpy()[0] == 1.0
    assert path.read_bytes() == before
    assert graphc.load(path)["w"].numpy()[0] == 0.0
    with pytest.raises(CheckpointError, match="mmap=True needs the zip format"):
        graphc.load(_save(state, tmp_path / "l.pt", "legacy"), mmap=True)
    with pytest.raises(ValueError, match="file path"):
        graphc.load(io.BytesIO(before), mmap=True)


def test_file_objects_and_detection_by_content_not_name(tmp_path):
    state = {"w": torch.randn(3)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    assert graphc.load(io.BytesIO(buffer.getvalue()))["w"].tolist() == state["w"].tolist()
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=False)
    assert graphc.load(io.BytesIO(buffer.getvalue()))["w"].tolist() == state["w"].tolist()
    # A torch zip named .safetensors, a graphc file named .pt.
    _save(state, tmp_path / "weights.safetensors", "zip")
    assert graphc.load(tmp_path / "weights.safetensors")["w"].tolist() == state["w"].tolist()
    graphc.save({"v": graphc.ones(2)}, tmp_path / "own.pt")
    assert graphc.load(tmp_path / "own.pt")["v"].tolist() == [1.0, 1.0]


def test_plain_safetensors_from_torch_with_bfloat16_and_mmap(tmp_path):
    st_torch = pytest.importorskip("safetensors.torch")
    state = {
        "fc.weight": torch.randn(3, 4),
        "emb": torch.randn(5, dtype=torch.float64).to(torch.bfloat16),
        "steps": torch.tensor([3, 4], dtype=torch.int64),
    }
    st_torch.save_file(state, str(tmp_path / "model.bin"))
    for mmap in (False, True):
        loaded = graphc.load(tmp_path / "model.bin", mmap=mmap)
        assert type(loaded) is OrderedDict and set(loaded) == set(state)
        for key, expected in state.items():
            np.testing.assert_array_equal(loaded[key].numpy(), _values(expected), err_msg=key)
        assert loaded["emb"].dtype == graphc.float32
        loaded["fc.weight"].add_(1)  # writable in both modes
    np.testing.assert_array_equal(graphc.load(tmp_path / "model.bin")["fc.weight"].numpy(), _values(state["fc.weight"]))


def test_training_checkpoint_resumes_with_torchs_updates(tmp_path):
    torch.manual_seed(0)
    t_model = torch.nn.Linear(3, 2)
    t_opt = torch.optim.Adam(t_model.parameters(), lr=1e-2)
    for _ in range(3):
        t_opt.zero_grad()
        t_model(torch.randn(4, 3)).sum().backward()
        t_opt.step()
    torch.save({"model": t_model.state_dict(), "optimizer": t_opt.state_dict(), "epoch": 3}, tmp_path / "ck.pt")
    ckpt = graphc.load(tmp_path / "ck.pt")
    assert ckpt["epoch"] == 3 and ckpt["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    g_model = graphc.nn.Linear(3, 2)
    g_model.load_state_dict(ckpt["model"])
    g_opt = graphc.optim.Adam(g_model.parameters(), lr=1e-2)
    g_opt.load_state_dict(ckpt["optimizer"])
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    t_opt.zero_grad()
    t_model(torch.from_numpy(x)).sum().backward()
    t_opt.step()
    g_opt.zero_grad()
    g_model(graphc.tensor(x)).sum().backward()
    g_opt.step()
    np.testing.assert_allclose(g_model.weight.detach().numpy(), t_model.weight.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(g_model.bias.detach().numpy(), t_model.bias.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("protocol", [4, 5])
def test_newer_pickle_protocols(tmp_path, fmt, protocol):
    base = torch.arange(6.0)
    obj = {"a": base, "v": base[2:].view(2, 2), "n": [1, "x"]}
    path = tmp_path / "p.pt"
    torch.save(obj, path, pickle_protocol=protocol, _use_new_zipfile_serialization=(fmt == "zip"))
    loaded = graphc.load(path)
    assert loaded["v"].tolist() == [[2.0, 3.0], [4.0, 5.0]] and loaded["n"] == [1, "x"]


def test_a_single_tensor_loads_as_a_tensor(tmp_path):
    t = torch.arange(6, dtype=torch.int16).view(2, 3)
    for fmt in FORMATS:
        loaded = graphc.load(_save(t, tmp_path / f"t_{fmt}.pt", fmt))
        assert isinstance(loaded, graphc.Tensor) and loaded.dtype == graphc.int16
        assert loaded.tolist() == [[0, 1, 2], [3, 4, 5]]


# -- refusing code -------------------------------------------------------------


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Config:
    """A user class a checkpoint may hold (allowed explicitly)."""

    def __init__(self, lr=0.1):
        self.lr = lr


@pytest.mark.parametrize("how", ["zip", "legacy", "plain pickle"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, how):
    marker = tmp_path / "pwned"
    payload = {"w": torch.ones(2), "evil": _Exploit(marker)}
    path = tmp_path / "evil.pt"
    if how == "plain pickle":
        path.write_bytes(pickle.dumps({"w": [1.0], "evil": _Exploit(marker)}, protocol=2))
    else:
        _save(payload, path, how)
    with pytest.raises(CheckpointError, match=r"'(posix|os)\.system'.*never runs code"):
        graphc.load(path)
    assert not marker.exists()
    for builtin in (eval, getattr, __import__):
        path.write_bytes(pickle.dumps({"x": builtin}, protocol=2))
        with pytest.raises(CheckpointError, match=f"builtins.{builtin.__name__}"):
            graphc.load(path)


def test_state_of_shared_objects_cannot_be_rewritten(tmp_path):
    # torch.float32, then BUILD with slot state {'is_float': False}: would
    # set an attribute of graphc.float32 itself.
    payload = b"\x80\x02ctorch\nfloat32\nN}X\x08\x00\x00\x00is_float\x89s\x86b."
    path = tmp_path / "build.pt"
    path.write_bytes(payload)
    with pytest.raises(CheckpointError, match="sets the state of a DType"):
        graphc.load(path)
    assert graphc.float32.is_float is True


def test_safe_globals_allow_user_classes(tmp_path):
    path = _save({"config": Config(0.5), "w": torch.ones(1)}, tmp_path / "cfg.pt", "zip")
    with pytest.raises(CheckpointError, match=r"Config'.*add_safe_globals"):
        graphc.load(path)
    with graphc.serialization.safe_globals([Config]):
        loaded = graphc.load(path)
    assert isinstance(loaded["config"], Config) and loaded["config"].lr == 0.5
    with pytest.raises(CheckpointError, match="Config"):
        graphc.load(path)  # allowed only inside the block
    graphc.serialization.add_safe_globals([Config])
    try:
        assert (Config, f"{Config.__module__}.Config") in graphc.serialization.get_safe_globals()
        assert graphc.load(path)["config"].lr == 0.5
    finally:
        graphc.serialization.clear_safe_globals()
    with pytest.raises(CheckpointError, match="Config"):
        graphc.load(path)


def test_tensors_graphc_cannot_hold_are_refused_by_name(tmp_path):
    cases = {
        "graphc has no complex64 dtype": torch.zeros(2, dtype=torch.complex64),
        "graphc has no float8_e4m3fn dtype": torch.zeros(2, dtype=torch.float8_e4m3fn),
        "torch._utils._rebuild_sparse_tensor', a PyTorch object": torch.zeros(2).to_sparse(),
    }
    for message, tensor in cases.items():
        with pytest.raises(CheckpointError, match=message):
            graphc.load(_save({"t": tensor}, tmp_path / "x.pt", "zip"))


def test_numpy_values_load_once_allowed(tmp_path):
    path = _save({"arr": np.arange(3.0), "best_acc": np.float64(0.5)}, tmp_path / "np.pt", "zip")
    with pytest.raises(CheckpointError, match="multiarray"):
        graphc.load(path)
    reconstruct, scalar = np.arange(1).__reduce__()[0], np.float64(0).__reduce__()[0]
    numpy_globals = [reconstruct, scalar, np.ndarray, np.dtype, type(np.dtype("f8"))]
    with graphc.serialization.safe_globals(numpy_globals):
        loaded = graphc.load(path)
    np.testing.assert_array_equal(loaded["arr"], np.arange(3.0))
    assert loaded["best_acc"] == 0.5


def test_weights_only_false_and_pickle_module_are_refused(tmp_path):
    path = _save({"w": torch.ones(1)}, tmp_path / "w.pt", "zip")
    with pytest.raises(CheckpointError, match="never runs code"):
        graphc.load(path, weights_only=False)
    with pytest.raises(CheckpointError, match="pickle_module"):
        graphc.load(path, pickle_module=pickle)
    assert graphc.load(path, weights_only=True)["w"].tolist() == [1.0]
    # graphc's own format holds no code: weights_only=False is harmless there.
    graphc.save({"v": graphc.ones(1)}, tmp_path / "own.pt")
    assert graphc.load(tmp_path / "own.pt", weights_only=False)["v"].tolist() == [1.0]


# -- map_location ---------------------------------------------------------------


def _rewrite_zip(src, dst, edit):
    """Copy a torch zip, passing each record's bytes through edit(name, data)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
    return dst


def _on_cuda(tmp_path):
    """A torch zip whose tensor was saved from 'cuda:0' (written on a CPU
    machine by renaming the location in the pickle)."""
    src = _save({"w": torch.arange(3.0)}, tmp_path / "cpu.pt", "zip")

    def edit(name, data):
        if name.endswith("data.pkl"):
            return data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
        return data

    return _rewrite_zip(src, tmp_path / "cuda.pt", edit)


def test_map_location_forms(tmp_path):
    path = _on_cuda(tmp_path)
    if not graphc.cuda.is_available():
        with pytest.raises(CheckpointError, match="map_location='cpu'"):
            graphc.load(path)
    for location in ("cpu", graphc.device("cpu"), {"cuda:0": "cpu"}):
        loaded = graphc.load(path, map_location=location)
        assert loaded["w"].tolist() == [0.0, 1.0, 2.0] and loaded["w"].device == graphc.device("cpu")
    seen = []

    def mapper(tensor, location):
        seen.append(location)
        return tensor * 2

    assert graphc.load(path, map_location=mapper)["w"].tolist() == [0.0, 2.0, 4.0]
    assert seen == ["cuda:0"]
    assert graphc.load(path, map_location=lambda t, loc: None if loc == "x" else t)["w"].tolist() == [0.0, 1.0, 2.0]


# -- corrupt files -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_torch_files_raise_checkpoint_error(tmp_path, fmt):
    data = _save({"w": torch.arange(64.0), "b": torch.ones(3)}, tmp_path / "ok.pt", fmt).read_bytes()
    path = tmp_path / "cut.pt"
    for cut in (10, 100, len(data) // 2, len(data) - 30, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="cut.pt"):
            graphc.load(path)
            pytest.fail(f"loaded a file cut at {cut} of {len(data)} bytes")


def test_corrupt_torch_zip_records_raise_checkpoint_error(tmp_path):
    src = _save({"w": torch.arange(12.0)}, tmp_path / "ok.pt", "zip")
    cases = {
        # the tensor claims 100 elements of a 12-element storage
        "reads past the end": lambda n, d: d.replace(b"K\x00K\x0c\x85", b"K\x00Kd\x85") if n.endswith(".pkl") else d,
        "has 8 bytes, 48 needed": lambda n, d: d[:8] if n.endswith("data/0") else d,
        "missing storage record": lambda n, d: None if n.endswith("data/0") else d,
        "no data.pkl": lambda n, d: None if n.endswith(".pkl") else d,
        "corrupt pickle": lambda n, d: d[:-3] if n.endswith(".pkl") else d,
    }
    for i, (message, edit) in enumerate(cases.items()):
        path = _rewrite_zip(src, tmp_path / f"bad{i}.pt", edit)
        for mmap in (False, True):
            with pytest.raises(CheckpointError, match=message):
                graphc.load(path, mmap=mmap)
    # A flipped byte in a storage fails the zip's CRC check.
    data = bytearray(src.read_bytes())
    offset = data.index(np.arange(12.0, dtype=np.float32).tobytes())
    data[offset + 5] ^= 0xFF
    (tmp_path / "flip.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="flip.pt"):
        graphc.load(tmp_path / "flip.pt")


def test_other_pickles_tar_and_torchscript_files_are_refused(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(pickle.dumps({"just": "a dict"}, protocol=2))
    with pytest.raises(CheckpointError, match="not one torch.save wrote"):
        graphc.load(path)
    with tarfile.open(tmp_path / "old.tar", "w") as tar:
        tar.add(path, arcname="pickle")
    with pytest.raises(CheckpointError, match="tar-format"):
        graphc.load(tmp_path / "old.tar")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in torch 2.13
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "scripted.pt")
    with pytest.raises(CheckpointError, match="TorchScript archive"):
        graphc.load(tmp_path / "scripted.pt")
    with pytest.raises(FileNotFoundError):
        graphc.load(tmp_path / "missing.pt")


# -- the done-when test: a torch ResNet-18 in graphc ---------------------------------


@pytest.fixture(scope="module")
def resnet18_checkpoint(tmp_path_factory):
    """A torch ResNet-18 (torchvision's names) and its torch.save'd state_dict."""
    from torch_resnet import trained_looking_resnet18

    reference = trained_looking_resnet18(seed=0)
    path = tmp_path_factory.mktemp("resnet") / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    return reference, path


def test_torch_resnet18_checkpoint_gives_torchs_logits(resnet18_checkpoint):
    from graphc.vision import models

    reference, path = resnet18_checkpoint
    model = models.resnet18()
    result = model.load_state_dict(graphc.load(path))
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    assert model.layer1[0].bn1.num_batches_tracked.item() == 100
    model.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    with graphc.no_grad():
        actual = model(graphc.tensor(x)).numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_fine_tuning_recipe_on_a_torch_checkpoint(resnet18_checkpoint):
    from graphc import nn
    from graphc.vision import models

    reference, path = resnet18_checkpoint
    model = models.resnet18()
    model.load_state_dict(graphc.load(path))
    # A new head, a frozen backbone, a few SGD steps on random data.
    for p in model.parameters():
        p.requires_grad = False
    model.fc = nn.Linear(512, 10)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable == [model.fc.weight, model.fc.bias]
    optimizer = graphc.optim.SGD(trainable, lr=0.05, momentum=0.9)
    rng = np.random.default_rng(1)
    inputs = graphc.tensor(rng.standard_normal((4, 3, 32, 32)).astype(np.float32))
    labels = graphc.tensor(rng.integers(0, 10, 4))
    model.train()
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert model.conv1.weight.grad is None
    np.testing.assert_array_equal(model.conv1.weight.detach().numpy(), reference.conv1.weight.detach().numpy())
