"""Whole models exported to ONNX and run in ONNX Runtime give graphc's results."""

from __future__ import annotations

import io

import numpy as np
from onnx_testutil import assert_matches, export_and_run, op_types

import graphc
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.vision.models import resnet18


def test_mlp_matches_and_names_initializers_by_module_path():
    graphc.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.LogSoftmax(dim=1))
    proto, got, expected = export_and_run(model, (graphc.randn(2, 4),), input_names=["x"], output_names=["y"])
    assert_matches(got, expected)
    inits = {i.name for i in proto.graph.initializer}
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= inits
    assert [i.name for i in proto.graph.input] == ["x"]
    assert [o.name for o in proto.graph.output] == ["y"]
    assert "MatMul" in op_types(proto)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 4, 3, stride=2, groups=2)
        self.fc = nn.Linear(4 * 1 * 1, 5)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.conv(x))))
        x = F.relu(self.conv2(x))
        return self.fc(x.flatten(1))


def test_cnn_with_batchnorm_in_eval_mode_and_conv_pattern():
    graphc.manual_seed(1)
    model = CNN()
    # Running statistics that differ from the defaults: eval mode must use them.
    model.bn.running_mean.copy_(graphc.randn(6) * 0.1)
    model.bn.running_var.copy_(graphc.rand(6) + 0.5)
    var_before = model.bn.running_var.numpy().copy()
    model.train()
    x = graphc.randn(2, 3, 8, 8)
    graphc.onnx.export(model, (x,), io.BytesIO())
    assert model.training and model.bn.training, "export must restore the modules' train mode"
    # In train mode batch norm would update its statistics: export used eval mode.
    assert np.allclose(model.bn.running_var.numpy(), var_before)
    proto, got, expected = export_and_run(model, (x,))
    assert_matches(got, expected)
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert [list(c.input)[1:] for c in convs] == [["conv.weight", "conv.bias"], ["conv2.weight", "conv2.bias"]]
    assert {"Relu", "MaxPool"} <= op_types(proto)
    assert {"conv.weight", "bn.running_mean", "bn.running_var", "conv2.weight"} <= {
        i.name for i in proto.graph.initializer
    }


def test_resnet18():
    graphc.manual_seed(2)
    model = resnet18(num_classes=10)
    proto, got, expected = export_and_run(model, (graphc.randn(1, 3, 32, 32),))
    assert_matches(got, expected, rtol=1e-4, atol=1e-4)
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert len(convs) == 20  # every convolution of ResNet-18 became a Conv


class EncoderLayer(nn.Module):
    """A post-norm transformer encoder layer (as torch.nn.TransformerEncoderLayer)."""

    def __init__(self, d=16, heads=4, ff=32):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Dropout(0.5), nn.Linear(ff, d))

    def forward(self, x, mask=None):
        a, _ = self.attn(x, x, x, attn_mask=mask, need_weights=False)
        x = self.norm1(x + a)
        return self.norm2(x + self.ff(x))


def test_transformer_encoder_layer_with_causal_mask():
    graphc.manual_seed(3)
    model = EncoderLayer()
    mask = nn.Transformer.generate_square_subsequent_mask(5) if hasattr(nn, "Transformer") else None
    if mask is None:
        from graphc.nn.attention import generate_square_subsequent_mask

        mask = generate_square_subsequent_mask(5)
    proto, got, expected = export_and_run(model, (graphc.randn(2, 5, 16), mask))
    assert_matches(got, expected)
    assert "Erf" in op_types(proto)


class TokenLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 6, batch_first=True)
        self.out = nn.Linear(6, 3)

    def forward(self, tokens):
        y, (h, c) = self.lstm(self.emb(tokens))
        return self.out(y[:, -1]), h


def test_embedding_and_lstm_two_outputs():
    graphc.manual_seed(4)
    model = TokenLSTM()
    tokens = graphc.tensor(np.array([[1, 5, 7, 19], [0, 3, 3, 2]], dtype=np.int64))
    proto, got, expected = export_and_run(model, (tokens,), output_names=["logits", "h"])
    assert_matches(got, expected)
    assert [o.name for o in proto.graph.output] == ["logits", "h"]
    assert proto.graph.input[0].type.tensor_type.elem_type == 7  # int64
