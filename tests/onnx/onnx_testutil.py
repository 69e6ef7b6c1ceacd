"""Helpers for ONNX export tests: export a graphc model, run it in ONNX
Runtime, compare with graphc's own eager result."""

from __future__ import annotations

import io

import numpy as np
import pytest

import graphc

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

RTOL = 1e-4
ATOL = 1e-5


def session(model_bytes: bytes):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def flat(result) -> list:
    """The tensors of a model's result, in the exporter's output order."""
    if isinstance(result, graphc.Tensor):
        return [result]
    if isinstance(result, dict):
        return [t for v in result.values() for t in flat(v)]
    if isinstance(result, (tuple, list)):
        return [t for v in result for t in flat(v)]
    return []


def export_and_run(model, args: tuple, feeds: tuple | None = None, **kw):
    """Export `model` on `args`, run the ONNX model on `feeds` (default:
    `args`) and return (ModelProto, onnx outputs, graphc outputs on feeds)."""
    buf = io.BytesIO()
    proto = graphc.onnx.export(model, args, buf, **kw)
    feeds = args if feeds is None else feeds
    if hasattr(model, "eval"):
        model.eval()
    with graphc.no_grad():
        expected = [t.numpy() for t in flat(model(*feeds))]
    sess = session(buf.getvalue())
    inputs = {i.name: np.asarray(x.numpy()) for i, x in zip(sess.get_inputs(), feeds)}
    got = sess.run(None, inputs)
    return proto, got, expected


def assert_matches(got: list, expected: list, rtol=RTOL, atol=ATOL) -> None:
    assert len(got) == len(expected), f"{len(got)} ONNX outputs, graphc returned {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape, f"output {i}: ONNX shape {g.shape} != graphc's {e.shape}"
        assert g.dtype == e.dtype, f"output {i}: ONNX dtype {g.dtype} != graphc's {e.dtype}"
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"output {i}")


def op_types(proto) -> set:
    return {n.op_type for n in proto.graph.node}
