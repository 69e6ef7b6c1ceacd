"""A layer given an input of the wrong shape raises an exception that the
`except` clause written for PyTorch catches (the class PyTorch raises), and
whose message names the layer and the shape."""

import pytest
import torch

import graphc
from graphc.errors import InputShapeError

CASES = {
    "Linear in_features": (lambda L: L.nn.Linear(3, 4), (2, 5)),
    "Conv2d rank": (lambda L: L.nn.Conv2d(1, 2, 3), (5, 5)),
    "Conv2d channels": (lambda L: L.nn.Conv2d(1, 2, 3), (1, 2, 5, 5)),
    "BatchNorm1d rank": (lambda L: L.nn.BatchNorm1d(3), (3,)),
    "BatchNorm2d channels": (lambda L: L.nn.BatchNorm2d(3), (2, 4, 2, 2)),
    "BatchNorm2d rank": (lambda L: L.nn.BatchNorm2d(3), (2, 3)),
    "LSTM input_size": (lambda L: L.nn.LSTM(3, 4), (2, 1, 5)),
    "LayerNorm normalized_shape": (lambda L: L.nn.LayerNorm(3), (2, 4)),
}


@pytest.mark.parametrize("case", CASES)
def test_wrong_input_shape_raises_what_torch_raises(case):
    make, shape = CASES[case]
    with pytest.raises(Exception) as expected:
        make(torch)(torch.ones(shape))
    layer = make(graphc)
    with pytest.raises(expected.type) as got:
        layer(graphc.ones(shape))
    assert isinstance(got.value, InputShapeError)
    assert layer._get_name() in str(got.value)
    assert str(tuple(shape)) in str(got.value)
