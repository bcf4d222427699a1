"""Next steps: the learned head reads natural phrasings; the persona agrees at low tension and resists at
high; the debrief never calls a proposed next step missing."""

from __future__ import annotations

import json

import pytest

from assistant.config import ROOT, Settings
from assistant.debrief import debrief
from assistant.personas import get_persona
from assistant.rehearsal import Rehearsal, analyse
from assistant.transcripts import TranscriptStore
from assistant.understanding.proposals import proposes_next_step

ISSUE_LINE = "Can we meet again next Friday with a written outline of a staff role?"
TOMAS = "ic-refuses-management"


def test_the_head_reads_proposals_and_not_their_look_alikes() -> None:
    proposals = [ISSUE_LINE, "I'll send you the draft by Thursday.", "Let's write it down before we go.",
                 "Shall we book a follow-up for the 14th?"]
    others = ["We met last Tuesday and nothing came of it.", "Let me ask you something about the offer.",
              "What has been on your mind lately?", "I'll be honest, I didn't see this coming."]
    assert proposes_next_step(proposals) == [True] * len(proposals)
    assert proposes_next_step(others) == [False] * len(others)
    assert proposes_next_step([]) == []


@pytest.mark.parametrize("split", ["blind", "dev"])
def test_next_step_figures_on_text_not_trained_on(split: str) -> None:
    """Targets of issue 13: proposals recognised >= 90 %, false positives <= 10 %."""
    rows = [json.loads(line) for line in
            (ROOT / "evals" / "understanding" / "next_step" / f"{split}.jsonl").read_text().splitlines()]
    pred = proposes_next_step([r["text"] for r in rows])
    pos = [p for p, r in zip(pred, rows, strict=True) if r["label"] == "proposal"]
    neg = [p for p, r in zip(pred, rows, strict=True) if r["label"] != "proposal"]
    assert len(pos) >= 20 and len(neg) >= 20
    assert sum(pos) / len(pos) >= 0.9
    assert sum(neg) / len(neg) <= 0.1


def test_a_proposal_is_a_move_not_advice() -> None:
    moves = analyse(ISSUE_LINE)
    assert moves.next_steps and moves.moves == ["proposal"] and not moves.bad


def test_agreed_at_low_tension_resisted_at_high(settings: Settings, store: TranscriptStore) -> None:
    agree = get_persona(TOMAS).lines.said("agree")
    for difficulty, agreed in (("easy", True), ("hard", False)):
        rehearsal = Rehearsal(settings, store)
        first = rehearsal.turn("What has been on your mind lately?", TOMAS, difficulty)
        out = rehearsal.turn(ISSUE_LINE, None, session_id=first["session"])
        assert (out["band"] == "agree") is agreed
        assert (out["reply"] in agree) is agreed


def test_the_debrief_credits_a_proposal_it_quotes(settings: Settings, store: TranscriptStore) -> None:
    rehearsal, sid = Rehearsal(settings, store), None
    for message in ["What would you want to be building here in three years?",
                    "It sounds like the architecture work is what lights you up.", ISSUE_LINE]:
        sid = rehearsal.turn(message, TOMAS, "medium", sid)["session"]
    row = next(r for r in debrief(store, sid)["scorecard"] if r["practice"] == "agreed next steps")
    assert row["rating"] != "missing"
    assert row["quote"] == ISSUE_LINE


def test_the_stored_head_was_trained_on_the_current_rows() -> None:
    from assistant.understanding.data import DATA_DIR, file_sha

    spec = json.loads((ROOT / "evals" / "models" / "next_step.json").read_text(encoding="utf-8"))
    folder = DATA_DIR / "next_step"
    assert spec["meta"]["data_sha256"] == file_sha(folder / "train.jsonl", folder / "dev.jsonl"), \
        "labelled data changed: run `coach understand train next_step`"


def test_manager_moves_on_the_blind_split() -> None:
    """The learned move head (issue 13: moves are learned signals, not regex tables) on 350 sentences by a
    writer who saw no code, lines or training rows, read as the rehearsal reads them: it was 0.606 with the
    regular expressions it replaced."""
    rows = [json.loads(line) for line in
            (ROOT / "evals" / "understanding" / "move" / "blind.jsonl").read_text().splitlines()]
    assert len(rows) >= 300
    found = []
    for r in rows:
        moves = analyse(r["text"]).moves
        found.append(next((m for m in ("dismissive", "leading_question", "acknowledgement") if m in moves), "other"))
    accuracy = sum(f == r["label"] for f, r in zip(found, rows, strict=True)) / len(rows)
    assert accuracy >= 0.85
    for move in ("dismissive", "leading_question", "acknowledgement"):
        said = [r["label"] for f, r in zip(found, rows, strict=True) if f == move]
        assert said.count(move) / len(said) >= 0.85  # precision: a misread move moves the tension
