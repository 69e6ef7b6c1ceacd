"""`torch.nn.modules.dropout` import path: graphc's dropout layers."""

from graphc.nn.dropout import Dropout, Dropout1d, Dropout2d, Dropout3d

__all__ = [
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
]
