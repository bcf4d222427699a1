"""Reply-quality rules (broken sentences, audience) and the blind-set runner's figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.quality import audience_mismatch, broken_sentences, read_set, rule_figures, summarise_scores

# garbled echoes the old pronoun-swapping reflection produced (issue 10), and well-formed replies
BROKEN = [
    "It sounds like as a manager. What matters most?",
    "It sounds like you was told you are not ready. What next?",
    "It sounds like you're a colleague got credit for your work. What now?",
    "It sounds like you think it's. What would help?",
    "It sounds like im bored. What would change?",
    "It sounds like got offered to lead the EU launch. What appeals?",
    "It sounds like you're afraid that if you say no to the management role. What then?",
    "It sounds like my boss took the credit. What do you want?",
    # a subject taken up again by a pronoun, as a non-native writer put it (blind14 o03)
    "It sounds like your best operator, 9 years here, he knows every machine better than the engineers. What now?",
    "So your manager, she keeps changing the plan. What do you want?",
]
FINE = [
    "It sounds like the work has stopped stretching you. What would a real stretch look like?",
    "So that is where things stand right now. What have you tried so far?",
    "Thank you for saying that. What would make this conversation worth your time?",
    "I hear you want a straight answer. What would you do if you knew it could not fail?",
    "You have a step in mind, in your own words. What will help you follow through on that?",
    # the line that resumes coaching after a referral speaks as the product ("my last message")
    "Thanks for carrying on with me; if my last message didn't fit what you meant, let's set it aside. "
    "So that is where things stand right now. What have you tried so far?",
    # so does the reminder after a borderline referral, whatever contact the organisation configured (blind14)
    "The support I mentioned is still there whenever you want it: Acme EAP on 0800 123. "
    "So that is where things stand right now. What have you tried so far?",
    # a name after the stem is not a participle ("It sounds like offered to lead..." is)
    'It sounds like Ahmed keeps asking for a "Lead" title. What do you think sits underneath it?',
    # an aside between the subject and its verb is English
    "It sounds like your manager, who you trust, keeps changing the plan. What would you ask her?",
    "So your lead, Sam, wants the role. What do you want for him?",
    "It sounds like after the review, they ignored you. What did that cost you?",
]


@pytest.mark.parametrize("reply", BROKEN)
def test_garbled_reflections_are_caught(reply: str) -> None:
    assert broken_sentences(reply)


@pytest.mark.parametrize("reply", FINE)
def test_well_formed_replies_pass(reply: str) -> None:
    assert broken_sentences(reply) == []


def test_audience_mismatch_both_ways() -> None:
    assert audience_mismatch("What does your report want from the next one-to-one?", "high-performer")
    assert not audience_mismatch("What does your report want from the next one-to-one?", "manager")
    assert audience_mismatch("What would you want your manager to see?", "manager")
    assert not audience_mismatch("What would you want your manager to see?", "high-performer")
    assert not audience_mismatch("What does your report want?", None)
    # the question is what is asked; a reflection of the person's own words names their people as they did
    assert not audience_mismatch("It sounds like your lead engineer resigned. What matters most now?", "manager")
    assert audience_mismatch("It sounds like you resigned. What would your lead say?", "manager")


def test_rule_figures_count_repeats_and_distinct_questions() -> None:
    run = {"openers": [{"reply": "So that is where things stand. What matters most?", "audience": "manager"},
                       {"reply": "So that is where things stand. What matters most?", "audience": "manager"},
                       {"reply": "It sounds like as a manager. What is next for your report?",
                        "audience": "high-performer"}],
           "conversations": [{"audience": "manager", "turns": [
               {"reply": "You have a plan. What will help?", "stage": "options"},
               {"reply": "You have a plan. What will help?", "stage": "way_forward", "action_plan": "x"}]}]}
    f = rule_figures(run)
    assert f["distinct_opener_questions"] == 2 and f["openers_coached"] == 3
    assert f["broken_replies"] == 1 and f["audience_mismatch"] == 1
    assert f["repeated_questions"] == 1
    assert f["conversations_reaching_way_forward"] == 1 and f["conversations_with_plan_recorded"] == 1


def test_reader_scores_pool_to_mean_and_zeros() -> None:
    s = summarise_scores({"openers": {"o1": 2, "o2": 0, "o3": 1}, "conversations": {"c1.1": 2}})
    assert s["openers"] == {"n": 3, "mean": 1.0, "zeros": 1, "twos": 1}
    assert s["conversations"]["mean"] == 2.0


@pytest.mark.parametrize("name", ["blind", "blind2", "blind3", "blind4"])
def test_every_blind_set_reads_with_both_audiences(name: str) -> None:
    from assistant.config import ROOT

    openers, conversations = read_set(ROOT / "evals" / name)
    assert len(openers) >= 48 and len(conversations) >= 10
    assert {o["audience"] for o in openers} == {"manager", "high-performer"}
    assert all(4 <= len(c["turns"]) <= 6 for c in conversations)
    assert len({o["id"] for o in openers}) == len(openers)


def test_blind_set_reads_and_names_a_bad_line(tmp_path: Path) -> None:
    from assistant.errors import DataError

    (tmp_path / "openers.jsonl").write_text(json.dumps({"id": "x", "audience": "manager"}) + "\n")
    (tmp_path / "conversations.jsonl").write_text("")
    with pytest.raises(DataError, match=r"openers.jsonl:1: field text"):
        read_set(tmp_path)
