"""graphc.save / graphc.load: round trips, atomic writes, corrupt files."""

import io
import json
import math
import os
import struct
from collections import OrderedDict

import numpy as np
import pytest
import safetensors.numpy

import graphc
import graphc.serialization as serialization
from graphc.serialization import CheckpointError

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def _tensor(dtype_name, shape=(2, 3), seed=0):
    rng = np.random.default_rng(seed)
    array = (rng.standard_normal(shape) * 50).astype(np.dtype(dtype_name if dtype_name != "bool" else "float64"))
    if dtype_name == "bool":
        array = array > 0
    return graphc.from_numpy(array.astype(dtype_name))


def _assert_same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, graphc.Tensor):
        assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def _checkpoint():
    return {
        "model": OrderedDict((f"layer{i}.{d}", _tensor(d, seed=i)) for i, d in enumerate(DTYPES)),
        "optimizer": {
            "state": {0: {"step": graphc.tensor(3.0), "exp_avg": _tensor("float32", (4,))}},
            "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "amsgrad": False, "params": [0, 1], "name": None}],
        },
        "epoch": 7,
        "best": math.inf,
        "worst": -math.inf,
        "nan": math.nan,
        "tag": "run-1",
        "scalar": graphc.tensor(2.5),
        "empty": graphc.zeros(0, 3),
        "nested": [[1, 2.0], ("a", None)],
        "array": np.arange(4, dtype=np.int32),
        3: "int key",
        2.5: "float key",
    }


def test_round_trip_every_dtype_and_structure(tmp_path):
    ckpt = _checkpoint()
    graphc.save(ckpt, tmp_path / "model.pth")
    loaded = graphc.load(tmp_path / "model.pth")
    array = loaded.pop("array")
    np.testing.assert_array_equal(array, ckpt.pop("array"))
    _assert_same(ckpt, loaded)
    assert isinstance(loaded["model"], OrderedDict)


def test_file_is_plain_safetensors_with_readable_names(tmp_path):
    state = OrderedDict([("fc1.weight", _tensor("float32")), ("fc1.bias", _tensor("float32", (3,)))])
    graphc.save(state, str(tmp_path / "model.pth"))
    arrays = safetensors.numpy.load_file(str(tmp_path / "model.pth"))
    assert set(arrays) == {"fc1.weight", "fc1.bias"}
    np.testing.assert_array_equal(arrays["fc1.weight"], state["fc1.weight"].numpy())
    # And a safetensors file written by other tools loads as name -> tensor.
    safetensors.numpy.save_file({"w": np.ones((2, 2), np.float32)}, str(tmp_path / "other.safetensors"))
    other = graphc.load(tmp_path / "other.safetensors")
    assert list(other) == ["w"] and other["w"].dtype == graphc.float32


def test_single_tensor_requires_grad_and_shared_tensors(tmp_path):
    t = graphc.ones(3, requires_grad=True)
    graphc.save(t, tmp_path / "t.pth")
    loaded = graphc.load(tmp_path / "t.pth")
    assert isinstance(loaded, graphc.Tensor) and loaded.requires_grad and loaded.tolist() == [1.0, 1.0, 1.0]
    shared = graphc.arange(4)
    graphc.save({"a": shared, "b": shared}, tmp_path / "s.pth")
    assert len(safetensors.numpy.load_file(str(tmp_path / "s.pth"))) == 1
    out = graphc.load(tmp_path / "s.pth")
    assert out["a"].tolist() == out["b"].tolist() == [0, 1, 2, 3]


def test_loaded_tensors_are_writable_and_independent(tmp_path):
    graphc.save({"w": graphc.zeros(2)}, tmp_path / "w.pth")
    w = graphc.load(tmp_path / "w.pth")["w"]
    w.add_(1)
    assert w.tolist() == [1.0, 1.0]


def test_file_objects_and_map_location(tmp_path):
    buffer = io.BytesIO()
    graphc.save({"x": graphc.arange(3)}, buffer)
    buffer.seek(0)
    assert graphc.load(buffer, map_location="cpu", weights_only=True)["x"].tolist() == [0, 1, 2]
    buffer.seek(0)
    mapped = graphc.load(buffer, map_location=lambda t, loc: t * 2)
    assert mapped["x"].tolist() == [0, 2, 4]
    buffer.seek(0)
    assert graphc.load(buffer, map_location=graphc.device("cpu"))["x"].tolist() == [0, 1, 2]


def test_unsupported_objects_raise(tmp_path):
    with pytest.raises(CheckpointError, match="set"):
        graphc.save({"bad": {1, 2}}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="keys must be"):
        graphc.save({(1, 2): 3}, tmp_path / "bad.pth")
    assert not (tmp_path / "bad.pth").exists()


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    graphc.save({"version": 1, "w": graphc.ones(2)}, path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(serialization.os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        graphc.save({"version": 2, "w": graphc.zeros(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert graphc.load(path)["version"] == 1
    assert sorted(os.listdir(tmp_path)) == ["model.pth"], "the temp file must be removed"

    real_fdopen = os.fdopen

    class FailingFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError("interrupted mid-write (simulated)")

    monkeypatch.setattr(serialization.os, "fdopen", lambda fd, mode: FailingFile(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="mid-write"):
        graphc.save({"version": 3}, path)
    monkeypatch.undo()
    assert graphc.load(path)["version"] == 1
    assert sorted(os.listdir(tmp_path)) == ["model.pth"]


def _saved_bytes():
    buffer = io.BytesIO()
    graphc.save({"w": graphc.ones(64), "n": 1}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("cut", [0, 5, 8, 20, -1, -100])
def test_truncated_files_raise_checkpoint_error(tmp_path, cut):
    data = _saved_bytes()
    path = tmp_path / "model.pth"
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match="model.pth is not a valid graphc checkpoint .*truncated"):
        graphc.load(path)


def test_corrupt_files_raise_checkpoint_error(tmp_path):
    data = _saved_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    path = tmp_path / "c.pth"
    cases = {
        "garbage header": data[:8] + b"{" * header_len + data[8 + header_len :],
        "huge header length": struct.pack("<Q", 2**60) + data[8:],
        "pickle": b"\x80\x04\x95" + bytes(50),
        "zip (torch.save)": b"PK\x03\x04" + bytes(50),
    }
    header = json.loads(data[8 : 8 + header_len])
    header["__metadata__"]["graphc.structure"] = '{"$tensor": "missing"}'
    body = json.dumps(header).encode()
    body += b" " * (-len(body) % 8)
    cases["dangling tensor reference"] = struct.pack("<Q", len(body)) + body + data[8 + header_len :]
    for name, content in cases.items():
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match="c.pth is not a valid graphc checkpoint"):
            graphc.load(path)
            pytest.fail(f"{name}: loaded without error")
    with pytest.raises(FileNotFoundError):
        graphc.load(tmp_path / "missing.pth")
