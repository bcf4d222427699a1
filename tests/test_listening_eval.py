"""The rehearsal listening measure: question sets load strictly, the rule scores, a judge's marks pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.config import ROOT, Settings
from assistant.errors import DataError
from assistant.listening_eval import judge_sheet, on_topic, read_questions, run_questions, score, summarise
from assistant.rehearsal import Rehearsal
from assistant.transcripts import TranscriptStore


def test_on_topic_is_nearest_own_topic() -> None:
    topics = [[1.0, 0.0], [0.0, 1.0]]
    assert on_topic([[0.9, 0.1], [0.9, 0.1]], topics, [0, 1]) == [True, False]


def test_a_bad_row_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"persona": "x", "text": "How are you?", "topic": "wellbeing"}\n{"persona": "x", "text": ""}\n')
    with pytest.raises(DataError, match=r"q.jsonl:2: field text"):
        read_questions(path)


def test_the_stored_sets_load_and_cover_every_persona() -> None:
    from assistant.personas import load_personas

    rows = read_questions(ROOT / "evals" / "rehearsal" / "questions_own.jsonl")
    assert len(rows) >= 40 and {r["persona"] for r in rows} == {p.id for p in load_personas()}


def test_run_score_and_pool_a_judges_marks(tmp_path: Path, settings: Settings, store: TranscriptStore) -> None:
    rows = [{"persona": "stay-interview-outside-offer", "text": "How has the on-call load been?",
             "topic": "being paged at night for broken pipelines"},
            {"persona": "stay-interview-outside-offer", "text": "What about the offer appeals to you?",
             "topic": "the job offered by the other company"}]
    turns = run_questions(Rehearsal(settings, store), rows, ("medium",))
    assert len(turns) == 2 and turns[0]["session"] == turns[1]["session"]  # one session per persona
    result = score(turns)
    assert result["all"]["on_topic"] == 1.0 and result["chance"] == 0.5 and result["repeated_lines"] == 0
    sheet = judge_sheet(turns)
    assert turns[0]["reply"] in sheet and "broken pipelines" not in sheet  # the judge sees no topic
    (tmp_path / "run.json").write_text(json.dumps({"score": result, "turns": turns}))
    (tmp_path / "judgements.json").write_text(json.dumps(
        [{"id": turns[0]["id"], "on_topic": True, "in_character": True},
         {"id": turns[1]["id"], "on_topic": False, "in_character": True}]))
    pooled = summarise(tmp_path)
    assert pooled["reader_on_topic"] == 0.5 and pooled["reader_in_character"] == 1.0 and pooled["reader_n"] == 2
