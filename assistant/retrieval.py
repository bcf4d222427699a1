"""Embeddings, the Chroma index of the handbook, and hybrid (BM25 + vector) retrieval.

>>> from assistant.config import Settings
>>> index = HandbookIndex(Settings())                     # doctest: +SKIP
>>> index.build().embedded                                # doctest: +SKIP
212
>>> index.search("my best engineer doesn't want to manage", k=3)[0].topics   # doctest: +SKIP
['career-paths']

The index is incremental (content hashes per page), records which embedding model built it and refuses
to mix models. It does not decide which chunks the coach cites; see ``chain``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import Settings
from .embeddings import Embedder, get_embedder
from .errors import BackendError, ConfigError
from .knowledge import Chunk, chunk_page, chunk_questions, load_pages, load_questions
from .lexical import BM25, tokens

COLLECTION = "handbook"
HEADINGS = "handbook_headings"  # one short vector per page chunk: "<page title>: <section heading>"


# -- the index -------------------------------------------------------------------------------------
@dataclass
class Hit:
    source: str
    title: str
    topics: list[str]
    text: str
    score: float
    heading: str = ""
    kind: str = "page"
    stage: str | None = None
    id: str = ""
    audience: str = "both"

    def contract(self) -> dict[str, Any]:
        return {"source": self.source, "title": self.title, "topics": self.topics, "text": self.text,
                "score": round(self.score, 4), "heading": self.heading, "kind": self.kind}


@dataclass
class BuildReport:
    embedded: int = 0
    pages_added: list[str] = field(default_factory=list)
    pages_updated: list[str] = field(default_factory=list)
    pages_removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks: int = 0


def _embedding_text(c: Chunk) -> str:
    """The chunk as embedded: its text plus the page's gist, so a section is found by what its page is about."""
    context = c.extra.get("context")
    return f"{c.text}\n\n(From: {c.title}. {context})" if context else c.text


def _heading_text(c: Chunk) -> str:
    """What a section is called, embedded on its own: short queries match short headings better than long text."""
    return f"{c.title}: {c.heading}" if c.heading else c.title


def _metadata(c: Chunk) -> dict[str, Any]:
    meta: dict[str, Any] = {"source": c.source, "title": c.title, "topics": ",".join(c.topics),
                            "audience": c.audience, "heading": c.heading, "kind": c.kind, "digest": c.digest}
    if c.stage:
        meta["stage"] = c.stage
    for t in c.topics:
        meta[f"t_{t}"] = True
    return meta


def _client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        m = re.match(r"^(https?)://([^:/]+)(?::(\d+))?", settings.chroma_url)
        if not m:
            raise ConfigError(f"bad COACH_CHROMA_URL {settings.chroma_url!r}; expected http://host:port")
        try:
            return chromadb.HttpClient(host=m.group(2), port=int(m.group(3) or 8000), ssl=m.group(1) == "https",
                                       settings=chroma_settings)
        except Exception as exc:
            raise BackendError(f"cannot reach the Chroma server at {settings.chroma_url}: {exc}") from exc
    settings.chroma_path.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


def _per_page(hits: list[Hit], k: int, per_page: int | None) -> list[Hit]:
    """The first ``k`` hits with at most ``per_page`` from one page (breadth over repetition)."""
    kept: list[Hit] = []
    seen: dict[str, int] = {}
    for h in hits:
        if per_page is not None and seen.get(h.source, 0) >= per_page:
            continue
        seen[h.source] = seen.get(h.source, 0) + 1
        kept.append(h)
        if len(kept) == k:
            break
    return kept


@dataclass
class _Memory:
    bm25: BM25
    hits: list[Hit]
    heading_words: list[set[str]]
    heading_vectors: Any  # numpy array, one row per hit (zeros where a hit has no heading vector)
    has_heading: Any


class HandbookIndex:
    """The handbook in Chroma. ``search`` fuses vector and BM25 rankings (reciprocal rank fusion)."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder or get_embedder(settings)
        self.client = _client(settings)
        self._collection: Any = None
        self._headings: Any = None
        self._memory: _Memory | None = None

    def _open(self, name: str) -> Any:
        col = self.client.get_or_create_collection(
            name, metadata={"embedding_model": self.embedder.name, "hnsw:space": "cosine"}, embedding_function=None,
        )
        built_with = (col.metadata or {}).get("embedding_model")
        if built_with and built_with != self.embedder.name:
            raise ConfigError(f"the index was built with {built_with}, not {self.embedder.name}; "
                              "run `coach index --rebuild`")
        return col

    @property
    def collection(self) -> Any:
        """The chunks: page sections and bank questions."""
        if self._collection is None:
            self._collection = self._open(COLLECTION)
        return self._collection

    @property
    def headings(self) -> Any:
        """One vector per page chunk for its title and heading, under the chunk's id."""
        if self._headings is None:
            self._headings = self._open(HEADINGS)
        return self._headings

    def count(self) -> int:
        return int(self.collection.count())

    def build(self, rebuild: bool = False, progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None
              ) -> BuildReport:
        """Bring the index in line with ``knowledge/``: unchanged pages are skipped, edited ones replaced."""
        if rebuild:
            for name in (COLLECTION, HEADINGS):
                try:
                    self.client.delete_collection(name)
                except Exception:  # noqa: BLE001 - absent collection: nothing to delete
                    pass
            self._collection = self._headings = None
        report = BuildReport()
        existing = self.collection.get(include=["metadatas"])
        have: dict[str, set[str]] = {}
        for meta in existing["metadatas"] or []:
            have.setdefault(meta["source"], set()).add(meta["digest"])
        folder = self.settings.knowledge_dir
        want: dict[str, list[Chunk]] = {}
        for page in load_pages(folder):  # every chunk carries its page's digest: an unchanged page is not re-chunked
            want[page.source] = [] if have.get(page.source) == {page.digest} else chunk_page(page)
        for c in chunk_questions(load_questions(folder), folder.name):
            want.setdefault(c.source, []).append(c)
        todo: list[Chunk] = []
        for source, items in want.items():
            digests = {c.digest for c in items}
            if not items or have.get(source) == digests:
                report.unchanged += 1
            elif source not in have:
                report.pages_added.append(source)
                todo += items
            else:
                report.pages_updated.append(source)
                if items[0].kind == "question":  # the bank: replace only the questions that changed
                    old = have[source] - digests
                    if old:
                        self.collection.delete(where={"$and": [{"source": source}, {"digest": {"$in": list(old)}}]})
                    todo += [c for c in items if c.digest not in have[source]]
                else:
                    self._delete_page(source)
                    todo += items
        for source in set(have) - set(want):
            self._delete_page(source)
            report.pages_removed.append(source)
        batches = [todo[i:i + 64] for i in range(0, len(todo), 64)]
        for batch in (progress(batches, len(batches)) if progress and batches else batches):
            metas = [_metadata(c) for c in batch]
            self.collection.upsert(ids=[c.id for c in batch], embeddings=self.embedder.embed(
                [_embedding_text(c) for c in batch]), documents=[c.text for c in batch], metadatas=metas)
            pages = [(c, m) for c, m in zip(batch, metas, strict=True) if c.kind == "page"]
            if pages:
                heads = [_heading_text(c) for c, _ in pages]
                self.headings.upsert(ids=[c.id for c, _ in pages], embeddings=self.embedder.embed(heads),
                                     documents=heads, metadatas=[m for _, m in pages])
            report.embedded += len(batch)
        self._memory = None
        report.chunks = self.count()
        return report

    def _delete_page(self, source: str) -> None:
        self.collection.delete(where={"source": source})
        self.headings.delete(where={"source": source})

    def ensure(self) -> None:
        """Build the index on first use if it is empty."""
        if self.count() == 0:
            self.build()

    # -- search ----------------------------------------------------------------------------------
    @staticmethod
    def _hit(cid: str, doc: str, meta: dict[str, Any], score: float) -> Hit:
        return Hit(meta["source"], meta["title"], [t for t in meta["topics"].split(",") if t], doc, score,
                   meta.get("heading", ""), meta.get("kind", "page"), meta.get("stage"), cid,
                   meta.get("audience", "both"))

    def _loaded(self) -> _Memory:
        """Every chunk with its words and its heading vector, read from Chroma once per index object."""
        if self._memory is None:
            got = self.collection.get(include=["documents", "metadatas"])
            hits = [self._hit(i, d, m, 0.0) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"],
                                                                 strict=True)]
            heads = self.headings.get(include=["embeddings"])
            vectors = dict(zip(heads["ids"], heads["embeddings"], strict=True))
            dim = len(next(iter(vectors.values()))) if vectors else 1
            matrix = np.array([vectors.get(h.id, np.zeros(dim)) for h in hits], dtype=np.float32).reshape(len(hits), dim)
            self._memory = _Memory(BM25([h.text for h in hits]), hits, [set(tokens(f"{h.title} {h.heading}"))
                                   for h in hits], matrix, np.array([h.id in vectors for h in hits], dtype=bool))
        return self._memory

    def vector_search(self, query: str, k: int = 5, where: dict[str, Any] | None = None,
                      vector: list[float] | None = None) -> list[Hit]:
        # Chroma returns fewer than k (or none) when the collection holds fewer: no count needed first
        res = self.collection.query(query_embeddings=[vector or self.embedder.embed([query])[0]], n_results=k,
                                    where=where, include=["documents", "metadatas", "distances"])
        return [self._hit(i, d, m, 1.0 - float(dist)) for i, d, m, dist in
                zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True)]

    def search(self, query: str, k: int = 5, kind: str | None = "page", stage: str | None = None,
               topic: str | None = None, mode: str = "hybrid", per_page: int = 1) -> list[Hit]:
        """Top ``k`` chunks for ``query``. ``mode`` is ``hybrid`` (default) or ``vector``."""
        clauses: list[dict[str, Any]] = []
        if kind:
            clauses.append({"kind": kind})
        if stage:
            clauses.append({"stage": stage})
        if topic:
            clauses.append({f"t_{topic}": True})
        where = clauses[0] if len(clauses) == 1 else ({"$and": clauses} if clauses else None)
        pool = max(k * 4, 20)
        qvec = self.embedder.embed([query])[0]
        vec = self.vector_search(query, pool, where, vector=qvec)
        if mode == "vector":
            return _per_page(vec, k, per_page if kind == "page" else None)
        memory = self._loaded()
        bm25, hits = memory.bm25, memory.hits
        allowed = [i for i, h in enumerate(hits) if (not kind or h.kind == kind) and (not stage or h.stage == stage)
                   and (not topic or topic in h.topics)]
        lex_scores = bm25.scores(query)
        lex = sorted(allowed, key=lambda i: -lex_scores[i])[:pool]
        fused: dict[str, float] = {}
        by_id: dict[str, Hit] = {}
        for rank, h in enumerate(vec):  # vector similarity carries more weight than word overlap
            fused[h.id] = fused.get(h.id, 0.0) + 1.0 / (60 + rank)
            by_id[h.id] = h
        if kind == "page":  # the section's title and heading, embedded on their own
            headed = [i for i in allowed if memory.has_heading[i]]
            sims = memory.heading_vectors[headed] @ np.asarray(qvec, dtype=np.float32) if headed else []
            for rank, j in enumerate(np.argsort(-np.asarray(sims))[:pool]):
                h = hits[headed[j]]
                fused[h.id] = fused.get(h.id, 0.0) + 0.5 / (60 + rank)
                by_id.setdefault(h.id, Hit(**{**h.__dict__}))
        for rank, i in enumerate(lex):
            if lex_scores[i] <= 0:
                break
            h = hits[i]
            fused[h.id] = fused.get(h.id, 0.0) + 0.5 / (60 + rank)
            by_id.setdefault(h.id, Hit(**{**h.__dict__}))
        words = set(tokens(query))
        if len(words) >= 2:  # a query naming a section ("Stay interviews: after the conversation") finds it
            for i in allowed:
                h = hits[i]
                if h.kind == "page" and words <= memory.heading_words[i]:
                    fused[h.id] = fused.get(h.id, 0.0) + 1.0 / 60
                    by_id.setdefault(h.id, Hit(**{**h.__dict__}))
        ranked = sorted(fused, key=lambda cid: -fused[cid])
        if kind == "page" and per_page == 1:
            # a page is as relevant as its best chunk plus half its second best: whole-page evidence
            page_score: dict[str, float] = {}
            page_best: dict[str, str] = {}
            page_n: dict[str, int] = {}
            for cid in ranked:
                src = by_id[cid].source
                n = page_n.get(src, 0)
                if n < 2:
                    page_score[src] = page_score.get(src, 0.0) + fused[cid] * (1.0 if n == 0 else 0.5)
                    page_best.setdefault(src, cid)
                page_n[src] = n + 1
            best = [page_best[src] for src in sorted(page_score, key=lambda x: -page_score[x])][:k]
            for src in page_score:
                fused[page_best[src]] = page_score[src]
        else:
            best = [h.id for h in _per_page([by_id[cid] for cid in ranked], k, per_page if kind == "page" else None)]
        out = []
        for cid in best:
            h = by_id[cid]
            h.score = round(fused[cid] * 60, 4)  # 1.0 ≈ top of one list
            out.append(h)
        return out


def evaluate_retrieval(index: HandbookIndex, rows: list[dict[str, Any]], mode: str = "hybrid") -> dict[str, float]:
    """recall@1/3/5 and MRR: a hit is relevant when it carries one of the query's expected topics."""
    found_at: list[int | None] = []
    for row in rows:
        hits = index.search(row["query"], k=5, mode=mode)
        rank = next((i for i, h in enumerate(hits) if set(h.topics) & set(row["topics"])), None)
        found_at.append(rank)
    n = max(len(rows), 1)
    return {
        "queries": len(rows),
        "recall@1": round(sum(r is not None and r < 1 for r in found_at) / n, 3),
        "recall@3": round(sum(r is not None and r < 3 for r in found_at) / n, 3),
        "recall@5": round(sum(r is not None for r in found_at) / n, 3),
        "mrr": round(sum(1 / (r + 1) for r in found_at if r is not None) / n, 3),
    }
