"""`graphc.Tensor`: an n-d array with PyTorch's API.

The class is assembled here, at the top of the tensor's import chain:

    graphc/_tensor_core.py   storage, the one dispatch point (`_emit`),
                             autograd and device bookkeeping
    graphc/_creation.py, _elementwise.py, _shape.py, _reductions.py,
    _indexing.py, ...        the ops, each importing only the core and the
                             op modules before it
    graphc/_methods.py       the method tables: the ops as methods, the
                             Python operators, the in-place forms
    graphc/_tensor.py         Tensor = the methods over the core

Nothing below this module imports it; the core builds every tensor as an
instance of the class registered here.
"""

from __future__ import annotations

from graphc import _tensor_core
from graphc._methods import TensorMethods
from graphc._tensor_core import Size, check_host_allocation, get_default_dtype, set_default_dtype

__all__ = ["Size", "Tensor", "check_host_allocation", "get_default_dtype", "set_default_dtype"]


class Tensor(TensorMethods, _tensor_core.Tensor):
    __doc__ = _tensor_core.Tensor.__doc__
    # TensorMethods defines __eq__ (elementwise, as in torch); tensors still
    # hash by identity, so they can key dicts and sets.
    __hash__ = _tensor_core.Tensor.__hash__


_tensor_core.register_tensor_class(Tensor)
