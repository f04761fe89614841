"""Embeddings: the store of vectors per object and model (and, coming, the encoders that make them)."""

from oncograph.embeddings.store import (
    EmbeddingRow,
    check_model,
    ensure_index,
    index_name,
    model_dim,
    store_embeddings,
)

__all__ = ["EmbeddingRow", "check_model", "ensure_index", "index_name", "model_dim", "store_embeddings"]
