"""The persona answers what was asked: line choice by meaning, within the band, never twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from assistant.config import Settings
from assistant.errors import DataError
from assistant.lines import LineChooser, relevance
from assistant.personas import PERSONAS_DIR, get_persona, load_personas
from assistant.rehearsal import Rehearsal
from assistant.transcripts import TranscriptStore

PRIYA = "stay-interview-outside-offer"
TOMAS = "ic-refuses-management"


def test_relevance_is_the_best_cosine_over_a_lines_keys() -> None:
    assert relevance([[1.0, 0.0], [0.0, 1.0]], [[[0.6, 0.8]], [[0.0, -1.0]]]) == [0.8, 0.0]


@pytest.mark.parametrize(("question", "words"), [
    ("How has the on-call load been for you?", ("pager", "paged", "on-call")),
    ("What about the fintech offer appeals to you?", ("offer", "offered")),
    ("Where would you like to be in three years?", ("three years",)),
])
@pytest.mark.parametrize("band", ["guarded", "neutral", "open"])
def test_every_band_answers_the_question_asked(band: str, question: str, words: tuple[str, ...]) -> None:
    choice = LineChooser(get_persona(PRIYA)).pick(band, [question], {})
    assert choice.band in (band, "neutral", "guarded")  # a more reserved band may answer, never a freer one
    assert any(w in choice.text.lower() for w in words), (band, choice.text)


def test_a_guarded_answer_is_briefer_than_an_open_one() -> None:
    chooser = LineChooser(get_persona(TOMAS))
    q = ["How do you feel about where your pay sits right now?"]
    guarded, neutral = chooser.pick("guarded", q, {}), chooser.pick("neutral", q, {})
    assert "pay" in guarded.text.lower() and "pay" in neutral.text.lower()
    assert len(guarded.text.split()) < len(neutral.text.split())


def test_no_line_twice_in_a_session(settings: Settings, store: TranscriptStore) -> None:
    rehearsal, sid, replies = Rehearsal(settings, store), None, []
    for _ in range(20):  # the same question again and again
        out = rehearsal.turn("How has the on-call load been?", PRIYA, "medium", sid)
        sid = out["session"]
        replies.append(out["reply"])
    assert len(set(replies)) == len(replies)


def test_hard_never_tells_the_concern_before_it_is_earned_even_when_asked_straight(
        settings: Settings, store: TranscriptStore) -> None:
    rehearsal, sid = Rehearsal(settings, store), None
    persona = get_persona(PRIYA)
    for message in ["Is it that nobody here has asked what you want next?",
                    "Is the money the real reason you might leave?",
                    "Do you feel like infrastructure here?"]:  # closed questions earn nothing
        out = rehearsal.turn(message, PRIYA, "hard", sid)
        sid = out["session"]
        assert not out["revealed"] and out["reply"] not in persona.lines.said("reveal")


def test_later_questions_draw_out_more_of_the_concern(settings: Settings, store: TranscriptStore) -> None:
    rehearsal, sid, told = Rehearsal(settings, store), None, []
    for message in ["What has been on your mind lately?", "What is really going on for you?",
                    "It sounds like this has been building. What else is going on for you?"]:
        out = rehearsal.turn(message, PRIYA, "easy", sid)
        sid = out["session"]
        told.append(out["reply"])
    reveal = get_persona(PRIYA).lines.said("reveal")
    assert sum(r in reveal for r in told) >= 2


def test_every_annotated_line_is_found_by_what_it_answers() -> None:
    """Property: asking about a line's first ``about`` phrase picks a line of its band that answers it."""
    misses = []
    for persona in load_personas():
        chooser = LineChooser(persona)
        for band in ("guarded", "neutral", "open"):
            for line in getattr(persona.lines, band):
                if line.about:
                    got = chooser.pick(band, [f"Can we talk about {line.about[0]}?"], {})
                    if line.about[0] not in _about(persona, got):
                        misses.append((persona.id, band, line.about[0], got.text))
    assert len(misses) <= 0.1 * sum(1 for p in load_personas() for b in ("guarded", "neutral", "open")
                                    for x in getattr(p.lines, b) if x.about), misses


def _about(persona, choice) -> tuple[str, ...]:
    return getattr(persona.lines, choice.band)[choice.index].about


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["lines"]["open"].append({"say": "I like the work.", "about": [""]}), "lines.open."),
    (lambda d: d["lines"]["open"].append({"say": "I like the work.", "topic": "work"}), "lines.open."),
    (lambda d: d["lines"]["open"].append(d["lines"]["guarded"][0]), "lines"),
])
def test_a_bad_line_names_file_and_field(tmp_path: Path, change, field: str) -> None:
    data = yaml.safe_load((PERSONAS_DIR / f"{PRIYA}.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / f"{PRIYA}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_personas(tmp_path)
    assert str(path) in str(err.value) and f"field {field}" in str(err.value)
