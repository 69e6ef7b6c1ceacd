"""`torch.nn.modules.sparse` import path: graphc.nn.Embedding and EmbeddingBag."""

from graphc.nn.embedding import Embedding, EmbeddingBag

__all__ = ["Embedding", "EmbeddingBag"]
