"""The Chroma index: incremental builds, heading retrieval, model mismatch, a real Chroma server, recall."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.config import ROOT, Settings
from assistant.embeddings import LocalEmbedder
from assistant.errors import ConfigError
from assistant.knowledge import chunk_page, load_pages
from assistant.lexical import BM25
from assistant.retrieval import HEADINGS, HandbookIndex, evaluate_retrieval

PAGE = """---
title: {title}
topics: [{topic}]
audience: both
---
An introduction to {title} with enough words to be a real paragraph about the subject at hand.

## First section of {title}

{body}

## Second section of {title}

More words about {title}: examples, situations and questions a manager might ask.
"""


def _handbook(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alpha.md").write_text(PAGE.format(title="Alpha page", topic="recognition", body="Thanks and praise."))
    (folder / "beta.md").write_text(PAGE.format(title="Beta page", topic="retention", body="Why people leave."))


def test_incremental_index_adds_edits_and_deletes(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    _handbook(kb)
    settings = Settings(backend="fake", knowledge_dir=kb, chroma_path=tmp_path / "chroma")
    idx = HandbookIndex(settings)
    first = idx.build()
    assert sorted(first.pages_added) == ["kb/alpha.md", "kb/beta.md"] and first.embedded == idx.count() == 6
    assert _heading_sources(idx) == {"kb/alpha.md": 3, "kb/beta.md": 3}  # one heading vector per page chunk
    again = HandbookIndex(settings).build()
    assert again.embedded == 0 and again.unchanged == 2
    (kb / "alpha.md").write_text(PAGE.format(title="Alpha page", topic="recognition", body="Edited: a new idea."))
    edited = HandbookIndex(settings).build()
    assert edited.pages_updated == ["kb/alpha.md"] and edited.embedded == 3
    assert any("Edited: a new idea" in h.text for h in HandbookIndex(settings).search("a new idea", k=3))
    (kb / "beta.md").unlink()
    removed = HandbookIndex(settings).build()
    assert removed.pages_removed == ["kb/beta.md"]
    assert _heading_sources(HandbookIndex(settings)) == {"kb/alpha.md": 3}  # its headings went with it
    assert {h.source for h in HandbookIndex(settings).search("why people leave", k=5)} == {"kb/alpha.md"}


def _heading_sources(idx: HandbookIndex) -> dict[str, int]:
    got = idx.headings.get(include=["metadatas"])
    assert set(got["ids"]) <= set(idx.collection.get()["ids"]), "a heading vector without its chunk"
    out: dict[str, int] = {}
    for meta in got["metadatas"]:
        out[meta["source"]] = out.get(meta["source"], 0) + 1
    return out


def test_rebuild_replaces_chunks_and_headings(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    _handbook(kb)
    settings = Settings(backend="fake", knowledge_dir=kb, chroma_path=tmp_path / "chroma")
    HandbookIndex(settings).build()
    (kb / "beta.md").unlink()
    report = HandbookIndex(settings).build(rebuild=True)
    idx = HandbookIndex(settings)
    assert report.pages_added == ["kb/alpha.md"] and idx.count() == 3 and _heading_sources(idx) == {"kb/alpha.md": 3}


def test_an_index_without_heading_vectors_still_searches(tmp_path: Path) -> None:
    """An index built before heading vectors existed answers from chunks and words until `coach index` runs."""
    kb = tmp_path / "kb"
    _handbook(kb)
    settings = Settings(backend="fake", knowledge_dir=kb, chroma_path=tmp_path / "chroma")
    idx = HandbookIndex(settings)
    idx.build()
    idx.client.delete_collection(HEADINGS)
    hits = HandbookIndex(settings).search("why people leave", k=2)
    assert hits[0].source == "kb/beta.md"


def test_refuses_to_mix_embedding_models(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    _handbook(kb)
    settings = Settings(backend="fake", knowledge_dir=kb, chroma_path=tmp_path / "chroma")
    HandbookIndex(settings).build()

    class Other(LocalEmbedder):
        name = "another-model"

    with pytest.raises(ConfigError, match="rebuild"):
        HandbookIndex(settings, embedder=Other()).count()


def test_every_chunk_is_found_by_its_own_heading(settings: Settings) -> None:
    idx = HandbookIndex(settings)
    misses = []
    for page in load_pages(ROOT / "knowledge"):
        sections: dict[str, set[str]] = {}
        for chunk in chunk_page(page):  # a long section is split; any of its chunks answers its heading
            sections.setdefault(chunk.heading, set()).add(chunk.id)
        for heading, ids in sections.items():
            query = f"{page.title}: {heading}"
            if not ids & {h.id for h in idx.search(query, k=5, per_page=5)}:
                misses.append(query)
    assert not misses, f"{len(misses)} chunks not found by their heading: {misses[:5]}"


def test_question_search_filters_by_stage(settings: Settings) -> None:
    hits = HandbookIndex(settings).search("what will you do first", k=5, kind="question", stage="way_forward")
    assert hits and all(h.kind == "question" and h.stage == "way_forward" for h in hits)


def test_bm25_prefers_the_matching_text() -> None:
    bm = BM25(["managers and recognition", "career paths for engineers", "a stay interview"])
    scores = bm.scores("engineer career")
    assert scores.index(max(scores)) == 1


def _queries(split: str) -> list[dict]:
    rows = [json.loads(x) for x in (ROOT / "evals/retrieval.jsonl").read_text().splitlines() if x.strip()]
    return [r for r in rows if r["split"] == split]


def test_recall_at_3_on_the_test_split(settings: Settings) -> None:
    figures = evaluate_retrieval(HandbookIndex(settings), _queries("test"))
    # measured 0.907 (docs/retrieval.md); this floor catches regressions
    assert figures["queries"] == 43 and figures["recall@3"] >= 0.88 and figures["recall@5"] >= 0.90


def test_recall_at_3_on_the_held_out_queries_meets_the_target(settings: Settings) -> None:
    """90 queries written apart from the search and never tuned on: the issue's target is recall@3 >= 0.90."""
    figures = evaluate_retrieval(HandbookIndex(settings), _queries("holdout"))
    assert figures["queries"] == 90 and figures["recall@3"] >= 0.90, figures


def test_the_briefs_career_path_example(settings: Settings) -> None:
    hits = HandbookIndex(settings).search("my best engineer doesn't want to manage", k=3)
    assert "career-paths" in hits[0].topics, [(h.source, h.topics) for h in hits]
    assert sum("career-paths" in h.topics for h in hits) >= 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_against_a_real_chroma_server(tmp_path: Path) -> None:
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    assert chroma, "the chroma CLI comes with the chromadb package"
    port = _free_port()
    server = subprocess.Popen([chroma, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("chroma server did not start")
        kb = tmp_path / "kb"
        _handbook(kb)
        settings = Settings(backend="fake", knowledge_dir=kb, chroma_url=f"http://127.0.0.1:{port}")
        report = HandbookIndex(settings).build()
        assert report.embedded == 6
        assert HandbookIndex(settings).build().embedded == 0  # incremental over HTTP too
        hits = HandbookIndex(settings).search("why people leave", k=2)
        assert hits[0].source == "kb/beta.md"
    finally:
        server.terminate()
        server.wait(timeout=20)
