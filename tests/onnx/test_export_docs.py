"""The example at the top of docs/onnx.md runs and does what it says."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from onnx_testutil import session

import graphc

PAGE = Path(__file__).resolve().parents[2] / "docs" / "onnx.md"


def test_first_example_runs(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(PAGE), "exec"), scope)
    model, x, logits = scope["model"], scope["x"], scope["logits"]
    with graphc.no_grad():
        np.testing.assert_allclose(logits, model.eval()(x).numpy(), rtol=1e-4, atol=1e-4)
    # The batch is dynamic: four images at once, each as it would be alone.
    batch = graphc.randn(4, 3, 32, 32)
    got = session((tmp_path / "resnet18.onnx").read_bytes()).run(None, {"image": batch.numpy()})[0]
    with graphc.no_grad():
        np.testing.assert_allclose(got, model(batch).numpy(), rtol=1e-4, atol=1e-4)
