"""The reply writer (assistant/writer.py): its data, its checks and how the chain uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant import writer
from assistant.config import ROOT, Settings
from assistant.errors import DataError


def test_every_written_example_loads_and_both_audiences_and_all_stages_are_there() -> None:
    rows = writer.load_examples(ROOT / "evals" / "understanding" / "replies")
    assert len(rows) >= 1000
    assert {r.audience for r in rows} == {"manager", "high-performer"}
    assert {r.stage for r in rows} == {"goal", "reality", "options", "way_forward"}
    assert sum(bool(r.previous) for r in rows) >= 400  # later turns, not only openers


def test_a_bad_example_is_an_error_naming_the_file_line_and_field(tmp_path: Path) -> None:
    good = {"audience": "manager", "stage": "goal", "previous": [], "message": "She wants to go part-time.",
            "reflection": "You want to keep her.", "question": "What does part-time mean to her?"}
    (tmp_path / "x.jsonl").write_text(json.dumps(good) + "\n" + json.dumps({**good, "question": "Tell me more."}))
    with pytest.raises(DataError, match=r"x.jsonl line 2: question"):
        writer.load_examples(tmp_path)


@pytest.mark.parametrize("text, parts", [
    ("You're tired of being the safety net. What would you stop doing first?",
     ("You're tired of being the safety net.", "What would you stop doing first?")),
    ("What do you want to move into?", None),  # no reflection
    ("So it stings. What now? And then?", None),  # two questions
    ("So it stings. What now", None),  # no question mark
])
def test_a_reply_is_one_statement_then_one_question(text: str, parts: tuple[str, str] | None) -> None:
    assert writer.split_reply(text) == parts


def test_a_reflection_that_adds_what_was_not_said_or_a_question_that_could_be_asked_of_anyone_is_refused() -> None:
    said = "exhausted. 60 hr weeks for 6 months now, Big 4 audit senior. busy season never ends"
    ok = writer.faithful("You're exhausted, and the busy season never seems to end.",
                         "What would tell you the busy season had ended for you?", said)
    assert ok == []
    invented = writer.faithful("You've been with the company for six months and your marriage is suffering.",
                               "What does your workload look like?", said)
    assert any("adds words" in p for p in invented)
    assert any("none of the person's words" in p for p in invented)


class _Scripted:
    """A stand-in for llama.cpp's Llama: replies with the given texts in turn, the last one from then on."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[list[dict[str, str]]] = []

    def create_chat_completion(self, messages: list[dict[str, str]], **_: object) -> dict:
        self.prompts.append(messages)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]  # the last one repeats
        return {"choices": [{"message": {"content": reply}}]}


def _coach_with(settings: Settings, monkeypatch: pytest.MonkeyPatch, llama: _Scripted):
    from assistant.chain import Coach

    coach = Coach(settings, remember=False)
    monkeypatch.setattr(Coach, "writer_model", property(lambda self: llama))
    return coach


def test_a_written_reply_that_passes_every_check_is_used_and_cites_the_handbook(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "My best nurse Ana wants to go part-time and I can't lose her on the night shifts."
    llama = _Scripted("You don't want to lose Ana, and the night shifts are where you'd feel it most. "
                      "What do you know about why Ana wants part-time now?")
    coach = _coach_with(settings, monkeypatch, llama)
    out = coach.turn(text)
    assert out["reply"].endswith("What do you know about why Ana wants part-time now?")
    meta = coach.store.turns(out["session"])[-1].meta
    assert meta["route"] == "written" and out["citations"]
    assert "Person: " + text in llama.prompts[0][-1]["content"]


@pytest.mark.parametrize("draft, why", [
    ("You should just give Ana the part-time role. What will you tell her?", "advice"),
    ("It sounds like your marriage and your health are failing. What will your lawyer say?", "adds words"),
    ("What do you want?", "not a reflection"),
])
def test_a_written_reply_that_fails_a_check_is_replaced_by_the_constructed_one(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, draft: str, why: str) -> None:
    coach = _coach_with(settings, monkeypatch, _Scripted(draft))
    out = coach.turn("My best nurse Ana wants to go part-time and I can't lose her on the night shifts.")
    assert draft not in out["reply"]
    meta = coach.store.turns(out["session"])[-1].meta
    assert meta["route"] != "written"
    assert any(why in p for p in meta["writer_rejected"]), meta["writer_rejected"]


def test_a_question_already_asked_is_not_written_again(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    same = "You feel stuck with Ana's request. What do you know about why Ana wants part-time now?"
    coach = _coach_with(settings, monkeypatch, _Scripted(same, same.replace("You feel stuck", "You're torn")))
    first = coach.turn("Ana wants part-time and I feel stuck.")
    second = coach.turn("Ana still wants part-time, I'm torn.", session_id=first["session"])
    assert not second["reply"].endswith("What do you know about why Ana wants part-time now?")


def test_the_writer_is_off_unless_asked_for(settings: Settings) -> None:
    """Blind readers scored its replies far below the chosen ones (docs/quality.md): opt-in only."""
    from assistant.chain import Coach

    assert Settings().writer is False and Settings(writer=True).writer is True
    assert Coach(settings, remember=False).writer_model is None  # the fake backend never writes
