"""The examples in the frontend's public docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "graphc._tensor",
    "graphc.autograd",
    "graphc._trace",
    "graphc._compile",
    "graphc._creation",
    "graphc._device",
]
MODULES += ["graphc._function", "graphc._gradcheck", "graphc.func"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0
