"""`torch.nn.modules.sparse` import path: graphc.nn.Embedding."""

from graphc.nn.embedding import Embedding

__all__ = ["Embedding"]
