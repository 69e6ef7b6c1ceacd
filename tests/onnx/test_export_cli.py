"""`graphc export FILE.py[:NAME] --input-shape ... -o OUT.onnx`."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from onnx_testutil import session

import graphc
from graphc.cli import main

onnx = pytest.importorskip("onnx")

MODEL = textwrap.dedent(
    """
    import graphc.nn as nn
    import graphc.nn.functional as F

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(F.relu(self.conv(x)).mean((2, 3)))

    def tokens(t):
        return (t * 2).sum(1)
    """
)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


def test_export_command_writes_a_model_with_a_dynamic_batch(model_file, tmp_path, capsys):
    out = tmp_path / "small.onnx"
    argv = ["export", f"{model_file}:Small", "--input-shape", "1,3,8,8", "-o", str(out), "--dynamic-batch"]
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert "conv.weight" in {i.name for i in proto.graph.initializer}
    y = session(out.read_bytes()).run(None, {"input": np.ones((3, 3, 8, 8), np.float32)})[0]
    assert y.shape == (3, 2)
    np.testing.assert_allclose(y[0], y[2], rtol=1e-6)


def test_export_command_integer_inputs_and_opset(model_file, tmp_path):
    out = tmp_path / "t.onnx"
    argv = ["export", f"{model_file}:tokens", "--input-shape", "2,5", "--input-dtype", "int64", "-o", str(out)]
    assert main([*argv, "--opset", "18"]) == 0
    proto = onnx.load(str(out))
    assert proto.opset_import[0].version == 18
    t = np.arange(10, dtype=np.int64).reshape(2, 5)
    np.testing.assert_array_equal(session(out.read_bytes()).run(None, {"input": t})[0], (t * 2).sum(1))


def test_export_command_errors_are_messages(model_file, tmp_path):
    with pytest.raises(SystemExit, match="exporting Small failed: InputShapeError: Conv2d"):
        main(["export", f"{model_file}:Small", "--input-shape", "1,5,8,8", "-o", str(tmp_path / "x.onnx")])
    with pytest.raises(SystemExit):
        main(["export", f"{model_file}:Small", "--input-shape", "1,3,8,8"])  # no -o


def test_graphc_onnx_is_an_attribute_of_the_package():
    assert graphc.onnx.export.__module__ == "graphc.onnx"
