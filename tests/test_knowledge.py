"""The handbook and the question bank: schemas, coverage, and properties of every entry."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from assistant.config import ROOT
from assistant.errors import DataError
from assistant.knowledge import STAGES, TOPICS, chunk_page, load_pages, load_questions, parse_page
from assistant.llm import count_tiktoken

KNOWLEDGE = ROOT / "knowledge"
PAGES = load_pages(KNOWLEDGE)
QUESTIONS = load_questions(KNOWLEDGE)
_CLOSED = re.compile(r"^(do|does|did|is|are|was|were|can|could|would|will|should|have|has|had|may|might|am)\b", re.I)


def test_every_topic_has_a_substantial_page() -> None:
    substantial = [p for p in PAGES if p.words >= 400]
    for topic in TOPICS:
        assert any(topic in p.topics for p in substantial), f"no page of 400+ words for {topic}"


@pytest.mark.parametrize("page", PAGES, ids=[p.source for p in PAGES])
def test_page_has_headed_sections_and_questions(page) -> None:
    assert page.words >= 400
    assert len(re.findall(r"^## ", page.body, re.M)) >= 3
    assert page.audience in ("manager", "high-performer", "both")


def test_bad_front_matter_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("---\ntitle: A page\ntopics: [not-a-topic]\naudience: manager\n---\nBody text.\n")
    with pytest.raises(DataError, match=r"bad\.md.*topics"):
        parse_page(bad)
    bad.write_text("---\ntitle: A page\ntopics: [coaching]\naudience: manager\ncolour: red\n---\nBody.\n")
    with pytest.raises(DataError, match=r"bad\.md.*colour"):
        parse_page(bad)
    bad.write_text("no front matter here")
    with pytest.raises(DataError, match="front matter"):
        parse_page(bad)


def test_question_bank_size_and_coverage() -> None:
    assert len(QUESTIONS) >= 150
    stages = Counter(q.stage for q in QUESTIONS)
    topics = Counter(t for q in QUESTIONS for t in q.topics)
    assert set(stages) == set(STAGES)
    assert set(topics) == set(TOPICS), f"topics without questions: {set(TOPICS) - set(topics)}"
    assert {q.audience for q in QUESTIONS} >= {"manager", "high-performer"}


@pytest.mark.parametrize("question", QUESTIONS, ids=[q.id for q in QUESTIONS])
def test_every_question_is_open_and_single(question) -> None:
    assert not _CLOSED.match(question.text), "answerable with yes/no"
    assert question.text.count("?") == 1 and question.text.endswith("?")
    assert len(question.text.split()) <= 30


def test_no_question_repeats() -> None:
    norm = [re.sub(r"\W+", " ", q.text.lower()).strip() for q in QUESTIONS]
    assert len(set(norm)) == len(norm)
    assert len({q.id for q in QUESTIONS}) == len(QUESTIONS)


def test_bank_rejects_a_closed_duplicate_or_unknown_stage(tmp_path: Path) -> None:
    (tmp_path / "question_bank.yaml").write_text(
        "- {id: q001, text: 'What matters?', stage: goal, topics: [coaching], audience: both}\n"
        "- {id: q002, text: 'What matters?', stage: goal, topics: [coaching], audience: both}\n")
    with pytest.raises(DataError, match="item 1"):
        load_questions(tmp_path)
    (tmp_path / "question_bank.yaml").write_text(
        "- {id: q001, text: 'What matters?', stage: later, topics: [coaching], audience: both}\n")
    with pytest.raises(DataError, match=r"question_bank\.yaml: item 0 field stage"):
        load_questions(tmp_path)


@pytest.mark.parametrize("page", PAGES, ids=[p.source for p in PAGES])
def test_chunks_fit_the_token_budget_and_carry_their_heading(page) -> None:
    chunks = chunk_page(page)
    assert chunks
    for c in chunks:
        assert count_tiktoken(c.text) <= 350 + 40  # budget plus the title/heading line
        assert c.text.startswith(f"{page.title} — {c.heading}")
        assert c.topics == page.topics
    assert len({c.id for c in chunks}) == len(chunks)
