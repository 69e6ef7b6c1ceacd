"""Dropout, Dropout1d and Dropout2d: random zeroing in training mode,
identity in eval mode."""

from __future__ import annotations

import graphc.nn.functional as F
from graphc.nn.module import Module


class Dropout(Module):
    """Zero elements with probability p during training, scaling the kept
    ones by 1/(1-p); the identity in eval mode."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(_DropoutNd):
    """Zero whole channels of [N, C, L] or [C, L] with probability p during
    training, scaling the kept ones by 1/(1-p); the identity in eval mode."""

    def forward(self, input):
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zero whole channels of [N, C, H, W] or [C, H, W] with probability p
    during training, scaling the kept ones by 1/(1-p); the identity in eval
    mode."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Dropout that keeps a SELU network's zero mean and unit variance; the
    identity in eval mode."""

    def forward(self, input):
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels; the identity in eval mode."""

    def forward(self, input):
        return F.feature_alpha_dropout(input, self.p, self.training)


class Dropout3d(_DropoutNd):
    """Zero whole channels of [N, C, D, H, W] or [C, D, H, W] with
    probability p during training, scaling the kept ones by 1/(1-p); the
    identity in eval mode."""

    def forward(self, input):
        return F.dropout3d(input, self.p, self.training, self.inplace)
