"""Debrief: quotes are the manager's exact words, one row per practice, questions ask rather than tell."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from assistant.config import ROOT, Settings
from assistant.debrief import debrief, exact_excerpt
from assistant.errors import InputError, NotFoundError
from assistant.personas import get_persona, load_personas
from assistant.rehearsal import Rehearsal
from assistant.transcripts import TranscriptStore
from assistant.understanding.coder import code_sentence

GOOD = [
    "Thanks for making time. What has been on your mind about your work lately?",
    "It sounds like the last year has been heavy.  What matters most to you in what comes next?",
    "You want work that is yours to shape. What would make staying worthwhile for you?",
    "I appreciate how much you have carried for this team through the migration. What else is going on?",
    "So nobody has asked you about your future. What would you like to happen from here?",
    "Let's agree a next step: shall we meet again next Friday with a draft?",
]
BAD = [
    "Calm down, that's just how it is here.",
    "You should just take the counteroffer.",
    "Is it the money?",
    "You need to step up into management, it's the natural next step.",
    "Everyone has to do on-call,\nyou're overreacting.",
    "Okay.",
]


def rehearse(settings: Settings, store: TranscriptStore, script: list[str], persona: str,
             difficulty: str = "medium") -> str:
    rehearsal, sid = Rehearsal(settings, store), None
    for message in script:
        sid = rehearsal.turn(message, persona, difficulty, sid)["session"]
    assert sid is not None
    return sid


def rows(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["practice"]: r for r in result["scorecard"]}


@pytest.mark.parametrize("persona_id", [p.id for p in load_personas()])
@pytest.mark.parametrize("script", [GOOD, BAD, GOOD[:2] + BAD[:2]], ids=["good", "bad", "mixed"])
def test_quotes_are_exact_and_rows_match_practices(settings: Settings, store: TranscriptStore,
                                                   persona_id: str, script: list[str]) -> None:
    sid = rehearse(settings, store, script, persona_id)
    result = debrief(store, sid)
    manager = [t.text for t in store.turns(sid) if t.role == "user"]
    assert result["session"] == sid and result["persona"] == persona_id
    assert [r["practice"] for r in result["scorecard"]] == get_persona(persona_id).practices
    for row in result["scorecard"]:
        assert row["rating"] in ("strong", "partly", "missing")
        assert row["quote"] and any(row["quote"] in line for line in manager), row
        assert (ROOT / row["source"]).is_file()
        assert row["source"].startswith("knowledge/")
    assert 3 <= len(result["questions"]) <= 5
    for question in result["questions"]:
        own_words = re.sub(r'"[^"]*"', '"that"', question)  # the manager's quoted words are not the question's
        assert question.endswith("?") and code_sentence(own_words) == "open_question", question
    assert len(result["tension_path"]) == len(script) + 1
    json.dumps(result)  # the CLI prints it as is


def test_good_and_bad_rehearsals_score_differently(settings: Settings, store: TranscriptStore) -> None:
    good = rows(debrief(store, rehearse(settings, store, GOOD, "stay-interview-outside-offer")))
    bad = rows(debrief(store, rehearse(settings, store, BAD, "stay-interview-outside-offer")))
    assert good["asked open questions"]["rating"] == "strong"
    assert good["asked open questions"]["evidence_code"] == "open_question"
    assert good["listened and reflected"]["rating"] in ("strong", "partly")
    assert good["avoided unsolicited advice"]["rating"] == "strong"
    assert good["explored what keeps them"]["rating"] == "strong"
    assert good["agreed next steps"]["rating"] == "strong"
    assert "next Friday" in good["agreed next steps"]["quote"]
    assert bad["asked open questions"]["rating"] == "missing"
    assert bad["avoided unsolicited advice"]["rating"] == "missing"
    assert bad["avoided unsolicited advice"]["quote"] == "You should just take the counteroffer."
    assert bad["agreed next steps"]["rating"] != "strong"


def test_pushing_management_is_the_quoted_gap(settings: Settings, store: TranscriptStore) -> None:
    sid = rehearse(settings, store, BAD, "ic-refuses-management")
    row = rows(debrief(store, sid))["explored growth without pushing management"]
    assert row["rating"] == "missing"
    assert "management" in row["quote"]


def test_questions_follow_what_happened(settings: Settings, store: TranscriptStore) -> None:
    bad = debrief(store, rehearse(settings, store, BAD, "stay-interview-outside-offer", "hard"))
    assert not bad["revealed"]
    assert any(q.startswith("What was happening for you when you said") for q in bad["questions"])
    assert any("holding back" in q for q in bad["questions"])
    good = debrief(store, rehearse(settings, store, GOOD, "stay-interview-outside-offer", "easy"))
    assert good["revealed"]
    assert any("really going on" in q for q in good["questions"])


def test_unknown_session_and_wrong_sessions(settings: Settings, store: TranscriptStore) -> None:
    with pytest.raises(NotFoundError):
        debrief(store, "no-such-session")
    coach = store.create_session(mode="coach", backend="fake", model="fake-coach")
    store.add_turn(coach, "user", "I feel stuck")
    with pytest.raises(InputError, match="rehearsal"):
        debrief(store, coach)
    empty = store.create_session(mode="rehearse", persona="stars-competing", difficulty="easy",
                                 backend="fake", model="fake-coach")
    with pytest.raises(InputError, match="no manager turns"):
        debrief(store, empty)


def test_exact_excerpt_survives_odd_whitespace() -> None:
    line = "Right.   What keeps you\nhere, honestly?  Tell me."
    assert exact_excerpt("What keeps you here, honestly?", line) == "What keeps you\nhere, honestly?"
    assert exact_excerpt("Something else entirely.", line) is None


def test_the_managers_words_render_literally_in_the_debrief_markdown() -> None:
    from assistant.ui import markdown_text

    shown = markdown_text("Pay | title [see here](http://x.example) and *now*\nplease")
    assert "|" not in shown.replace("\\|", "") and "](" not in shown.replace("\\]\\(", "")
    assert "*now*" not in shown and "\n" not in shown
    # the same characters read back once Markdown's escapes are removed
    assert shown.replace("\\", "") == "Pay | title [see here](http://x.example) and *now* please"


def test_tension_over_time_is_a_one_line_plot() -> None:
    from assistant.ui import tension_sparkline

    assert tension_sparkline([0, 5, 10]) == "▁▄█"
    assert tension_sparkline([]) == "▁" and len(tension_sparkline(list(range(40)))) == 24
    assert tension_sparkline([-3, 14]) == "▁█"  # out-of-range values are clamped, never an error


def test_every_rating_points_at_its_line_labelled(settings: Settings, store: TranscriptStore) -> None:
    """Issue 13: each row says where it happened, or for a missing practice where it was most needed."""
    sid = rehearse(settings, store, ["What has been on your mind lately?", "What else is going on for you?",
                                     "Okay. Let's talk about the roadmap."], "stay-interview-outside-offer", "easy")
    result = debrief(store, sid)
    lines = [t.text for t in store.turns(sid) if t.role == "user"]
    rows = {r["practice"]: r for r in result["scorecard"]}
    for r in rows.values():
        assert r["quote"] in lines[r["turn"] - 1]  # the turn named is the line quoted
        assert r["why"].startswith(f"Turn {r['turn']}, ")
        expected = "where it was most needed" if r["rating"] == "missing" else "where it happened"
        assert r["evidence"] == expected and expected in r["why"]
    # on easy the concern comes out in the first reply; the next line moved on: listening was needed there
    bands = [t.meta["band"] for t in store.turns(sid) if t.role == "assistant"]
    assert bands[0] == "reveal"
    heard = rows["listened and reflected"]
    assert heard["rating"] == "missing" and heard["turn"] == 2 and "opened up" in heard["why"]
    assert rows["agreed next steps"]["turn"] == 3 and "ended" in rows["agreed next steps"]["why"]


def test_listening_is_most_needed_after_the_fullest_answer_when_nobody_opened_up(
        settings: Settings, store: TranscriptStore) -> None:
    sid = rehearse(settings, store, ["How do you feel about where your pay sits right now?",
                                     "What would you want to be building here in three years?",
                                     "Can we meet again next Friday with a written outline of a staff role?"],
                   "ic-refuses-management", "hard")
    replies = [t for t in store.turns(sid) if t.role == "assistant"]
    assert not any(t.meta["band"] in ("open", "reveal") for t in replies)
    row = next(r for r in debrief(store, sid)["scorecard"] if r["practice"] == "listened and reflected")
    fullest = max(range(2), key=lambda i: len(replies[i].text.split()))
    assert row["rating"] == "missing" and row["turn"] == fullest + 2 and "said the most" in row["why"]


def test_an_apology_is_not_recognition_of_the_employees_work() -> None:
    """A debrief quoted "Sorry, that was me jumping to advice." as evidence of specific recognition (the move
    head reads an apology as an acknowledgement); recognition has to speak to the employee."""
    from assistant.debrief import SCORERS, manager_sentences

    apology = manager_sentences(["Sorry, that was me jumping to advice."])
    assert SCORERS["gave specific recognition"](apology, False)[0] == "missing"
    thanks = manager_sentences(["Thank you for the way you handled the migration plan last month."])
    rating, evidence, _ = SCORERS["gave specific recognition"](thanks, False)
    assert rating != "missing" and evidence is not None and "migration" in evidence.text
