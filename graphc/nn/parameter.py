"""`Parameter`: a Tensor that a Module registers as trainable state."""

from __future__ import annotations

import graphc


class Parameter(graphc.Tensor):
    """A Tensor that is a module parameter (requires_grad=True by default).

    Assigning a Parameter as a Module attribute registers it, so it appears in
    `parameters()` and `state_dict()`.

    >>> import graphc
    >>> p = graphc.nn.Parameter(graphc.zeros(2))
    >>> p.requires_grad
    True
    """

    def __new__(cls, data=None, requires_grad: bool = True):
        if data is None:
            data = graphc.empty(0)
        if not isinstance(data, graphc.Tensor):
            data = graphc.tensor(data)
        # Shares `data`'s values but none of its autograd history.
        return graphc.Tensor._make_subclass(cls, data.detach(), requires_grad)

    def __init__(self, data=None, requires_grad: bool = True):
        # All the work is done in __new__; Tensor.__init__ must not run again.
        pass

    def __repr__(self) -> str:
        text = super().__repr__()
        # Tensor's repr may already name the subclass; add the prefix once.
        return text if text.startswith("Parameter containing") else "Parameter containing:\n" + text

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = Parameter(self.detach().clone(), self.requires_grad)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, protocol):
        return (Parameter, (self.detach(), self.requires_grad))
