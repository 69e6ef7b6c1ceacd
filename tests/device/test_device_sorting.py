"""Sorting, scans and index updates on CUDA tensors (the simulated runtime):
eager ops stay on the device and agree with the CPU."""

from __future__ import annotations

import numpy as np

import graphc


def test_sorting_ops_on_device_match_cpu(fake_cuda):
    rng = np.random.default_rng(0)
    a = rng.integers(-3, 4, size=(4, 6)).astype(np.float32)
    a[1, 2] = np.nan
    x, xc = graphc.tensor(a, device="cuda"), graphc.tensor(a)
    pairs = [
        (graphc.sort(x, 1, descending=True), graphc.sort(xc, 1, descending=True)),
        (graphc.topk(x, 2, 0), graphc.topk(xc, 2, 0)),
        (graphc.median(x, 1), graphc.median(xc, 1)),
        (graphc.cummax(x, 1), graphc.cummax(xc, 1)),
        ((graphc.cumprod(x, 0),), (graphc.cumprod(xc, 0),)),
        ((graphc.einsum("ij,kj->ik", x, x),), (graphc.einsum("ij,kj->ik", xc, xc),)),
        (
            (x.index_add(0, graphc.tensor([3, 1], device="cuda"), x[:2]),),
            (xc.index_add(0, graphc.tensor([3, 1]), xc[:2]),),
        ),
    ]
    for i, (on_device, on_cpu) in enumerate(pairs):
        for d, c in zip(on_device, on_cpu):
            assert d.device.type == "cuda", f"result {i} left the device"
            np.testing.assert_array_equal(d.cpu().numpy(), c.numpy(), err_msg=f"result {i}")
