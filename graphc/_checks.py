"""Argument checks that PyTorch's argument parser makes before an op runs,
with its exception classes: a non-Tensor where a Tensor is required, a
non-integer size, a non-sequence of tensors are TypeErrors naming the op,
the argument and the type received.

The op modules call these at their entry points, so a wrong argument fails
with a clear message instead of an AttributeError deep inside the op.
"""

from __future__ import annotations

import functools
import operator

from graphc.errors import at_user_line


def _tensor_class():
    # Imported on use: graphc._tensor imports the op modules, which import this one.
    from graphc._tensor_core import Tensor

    return Tensor


def _type_name(value) -> str:
    return type(value).__name__


def require_tensor(opname: str, argname: str, position: int, value) -> None:
    """Raise torch's TypeError when `value` is not a Tensor."""
    if not isinstance(value, _tensor_class()):
        raise TypeError(
            at_user_line(
                f"{opname}(): argument '{argname}' (position {position}) must be Tensor, not {_type_name(value)}"
            )
        )


def tensor_params(*names: str):
    """Decorate an op whose first `len(names)` positional parameters must be
    Tensors; `names` are PyTorch's names for them, used in the message.

    The decorated function's `method` attribute is the form the Tensor
    method table binds: `self` needs no check, and positions count from the
    first argument after it, as torch numbers them for methods."""

    def decorate(fn):
        opname = fn.__name__

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            _check_args(opname, names, args, 1)
            return fn(*args, **kwargs)

        if len(names) == 1:
            checked.method = fn
        else:

            @functools.wraps(fn)
            def method(self, *args, **kwargs):
                _check_args(opname, names[1:], args, 1)
                return fn(self, *args, **kwargs)

            checked.method = method
        return checked

    return decorate


def _check_args(opname: str, names, args, first_position: int) -> None:
    tensor = _tensor_class()
    for position, (name, value) in enumerate(zip(names, args), start=first_position):
        if not isinstance(value, tensor):
            require_tensor(opname, name, position, value)


def int_sizes(opname: str, argname: str, sizes) -> tuple[int, ...]:
    """`sizes` (ints, or one tuple/list/Size of ints) as a tuple of ints.
    Floats are refused as in torch (`zeros(2.5)` is a TypeError, not a
    silent truncation); integer-valued 0-d tensors are accepted."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = sizes[0]
    out = []
    for pos, d in enumerate(sizes):
        if isinstance(d, bool):
            d = float(d)  # torch refuses bools as sizes too
        try:
            out.append(operator.index(d))
        except TypeError:
            raise TypeError(
                at_user_line(
                    f"{opname}(): argument '{argname}' must be tuple of ints, "
                    f"but found element of type {_type_name(d)} at pos {pos}"
                )
            ) from None
    return tuple(out)


def tensor_sequence(opname: str, tensors) -> list:
    """The tensors of `cat`/`stack`'s first argument, which must be a tuple
    or list of Tensors (a Tensor or a generator is a TypeError, as in torch)."""
    if not isinstance(tensors, (tuple, list)):
        raise TypeError(
            at_user_line(
                f"{opname}(): argument 'tensors' (position 1) must be tuple of Tensors, not {_type_name(tensors)}"
            )
        )
    tensor = _tensor_class()
    for i, x in enumerate(tensors):
        if not isinstance(x, tensor):
            raise TypeError(
                at_user_line(f"{opname}(): expected Tensor as element {i} in argument 0, but got {_type_name(x)}")
            )
    return list(tensors)
