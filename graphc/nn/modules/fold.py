"""`torch.nn.modules.fold` import path: graphc.nn.Fold and Unfold."""

from graphc.nn.fold import Fold, Unfold

__all__ = ["Fold", "Unfold"]
