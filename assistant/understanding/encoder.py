"""The one sentence embedding every signal reads: local MiniLM (``all-MiniLM-L6-v2``), normalised.

>>> vectors = embed(["I feel stuck"])   # doctest: +SKIP
>>> vectors.shape
(1, 384)

The heads were trained on these vectors, so signals always use the local model even when retrieval is
configured for OpenAI embeddings. A text embedded for retrieval in the same turn is not embedded again
(``LocalEmbedder`` remembers recent texts). This module does not classify anything.
"""

from __future__ import annotations

import numpy as np

EMBEDDING = "all-MiniLM-L6-v2"
DIM = 384


def embed(texts: list[str]) -> np.ndarray:
    """Normalised vectors, one row per text (an empty list gives a ``(0, 384)`` array)."""
    if not texts:
        return np.zeros((0, DIM))
    import torch

    from ..embeddings import LocalEmbedder

    # one thread: as fast for a turn's few sentences, and 10x faster when llama.cpp holds the other core
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return np.asarray(LocalEmbedder().embed(texts), dtype=np.float64).reshape(len(texts), -1)
    finally:
        torch.set_num_threads(threads)
