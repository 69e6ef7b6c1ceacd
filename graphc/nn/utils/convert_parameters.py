"""Flatten parameters into one vector and back."""

from __future__ import annotations

import graphc


def parameters_to_vector(parameters):
    """Concatenate the flattened parameters into one 1-D tensor."""
    return graphc.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters) -> None:
    """Copy consecutive slices of the 1-D `vec` into `parameters` in place."""
    if not isinstance(vec, graphc.Tensor) or vec.dim() != 1:
        raise TypeError("expected vec to be a 1-D Tensor")
    offset = 0
    with graphc.no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[offset : offset + n].reshape(p.shape))
            offset += n
    if offset != vec.numel():
        raise ValueError(f"vector has {vec.numel()} elements, parameters hold {offset}")
