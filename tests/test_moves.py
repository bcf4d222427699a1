"""The coaching-moves library (validated on load), plain reflections, and the audience/GROW signals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.config import ROOT
from assistant.errors import DataError
from assistant.moves import feeling_reflection, load_moves, parse_moves, plain_reflections, topic_reflection
from assistant.quality import audience_mismatch, broken_sentences
from assistant.stages import STAGES


def test_library_loads_both_audiences_and_every_stage() -> None:
    situations = load_moves()
    assert len(situations) >= 90
    assert {s.audience for s in situations} >= {"manager", "high-performer"}
    for s in situations:
        assert s.page.startswith("knowledge/") and s.section and s.title
        assert all(s.stage_questions(st) for st in STAGES)


def test_every_library_sentence_is_well_formed_and_fits_its_audience() -> None:
    for s in load_moves():
        for text in [*s.reflections, *(q for st in STAGES for q in s.stage_questions(st))]:
            assert broken_sentences(text) == [], (s.id, text)
            if s.audience == "high-performer":
                assert not audience_mismatch(text, "high-performer"), (s.id, text)


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "moves"
    folder.mkdir()
    shutil.copy(ROOT / "prompts" / "moves" / "recognition.yaml", folder / "recognition.yaml")
    return folder / "recognition.yaml"


def test_a_closed_question_is_an_error_naming_file_situation_and_field(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    text = path.read_text()
    first_goal = text.split("goal:")[1].split('"')[1]
    path.write_text(text.replace(first_goal, "Do you want credit for it?", 1))
    with pytest.raises(DataError, match=r"recognition\.yaml: field situation rec-[a-z-]+: questions\.goal"):
        parse_moves(path)


def test_a_section_that_is_not_a_heading_is_an_error(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    text = path.read_text()
    section = text.split("section:")[1].split("\n")[0].strip()
    path.write_text(text.replace(section, '"No such heading"', 1))
    with pytest.raises(DataError, match=r"field section: 'No such heading' is not a heading of recognition\.md"):
        parse_moves(path)


def test_report_talk_to_a_high_performer_is_refused_on_load(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    text = path.read_text()
    hp = text.index("audience: high-performer")
    q = text[hp:].split("reality:")[1].split('"')[1]
    path.write_text(text[:hp] + text[hp:].replace(q, "What does your report want from this?", 1))
    with pytest.raises(DataError, match="speaks of 'your report' to a high performer"):
        parse_moves(path)


@pytest.mark.parametrize(("text", "expected"), [
    ("honestly im so bored at work", "stretching"),
    ("I'm not bored, just busy", None),
    ("the team feels overlooked when I praise her", None),
    ("I feel completely overlooked", "overlooked"),
    ("I'm tired of smiling through it", "had enough"),
    ("she seems bored lately", None),
    # someone else's feeling by the parse's subject, or in a sentence about someone else (blind13 o18, o32)
    ("Star employee bored. Ideas?", None),
    ("My analyst seems bored lately.", None),
    ("The boring stuff just doesn't get done, and the team has noticed she gets a pass.", None),
    ("My work is boring and I hate it.", "stretching"),  # a thing as subject leaves the feeling theirs
    ("so bored. six years on the same product", "stretching"),
    # the feeling of someone the person acts on (blind16 o35: a manager told the work had stopped stretching them)
    ("How do I keep a star from getting bored?", None),
    ("I would like to protect her capacity without appearing to doubt her ability.", None),
    ("How do I stop myself getting bored?", "stretching"),
])
def test_feeling_reflections_are_the_speakers_own_and_not_negated(text: str, expected: str | None) -> None:
    got = feeling_reflection(text)
    assert (got is None) if expected is None else (expected in got)


def test_topic_reflections_are_well_formed_for_every_topic_and_aim() -> None:
    data = plain_reflections()
    for aim in data["about"]:
        for t in data["topics"]:
            sentence = data["about"][aim].format(topic=t["phrase"])
            assert broken_sentences(sentence) == [], sentence
    assert topic_reflection("My lead took credit for my analysis", "reality") == \
        "So the question of credit is very much on your mind."
    assert topic_reflection("nothing matches here at all", "reality") is None


def test_audience_and_grow_signals_read_plain_cases() -> None:
    from assistant.understanding.encoder import embed
    from assistant.understanding.turn import TurnSignals

    reader = TurnSignals()
    v = embed(["My report turned down the team lead role and I don't know how to keep her growing.",
               "My manager keeps taking credit for my analysis in leadership meetings.",
               "I'll book thirty minutes with her on Thursday and ask what she wants."])
    assert reader.audience(v[0]).best == "manager"
    assert reader.audience(v[1]).best == "high-performer"
    assert reader.grow(v[2]).best == "commitment"


@pytest.mark.parametrize(("said", "offered"), [
    ("The promotion list came out today and I'm not on it. Again.", False),
    ("They promoted someone who joined after me.", False),
    ("I got promoted last month and I feel like a complete fraud.", True),
    ("They promoted me to senior researcher and I don't believe I deserve it.", True),
])
def test_a_question_about_the_people_who_promoted_you_needs_a_promotion(said: str, offered: bool) -> None:
    """Blind readers of two sets scored "the people who promoted you" 0 when asked of someone passed over."""
    from assistant.moves import presupposes_unsaid

    question = "What evidence did the people who promoted you see that you might be discounting?"
    assert presupposes_unsaid(question, said) is not offered


@pytest.mark.parametrize(("question", "said", "offered"), [
    ("What kind of coach do you want to be for your report?", "My best nurse keeps clashing with the others.", False),
    ("What kind of coach do you want to be for your report?", "I want to coach my analyst, not just manage her.", True),
    ("What would make your next review feel like a dialogue rather than a verdict?", "I'm bored at work.", False),
    ("What would make your next review feel like a dialogue rather than a verdict?", "My rating came back average.", True),
    ("What do you want to keep from the craft you miss?", "Seven years at the same restaurant.", False),
    ("What do you want to keep from the craft you miss?", "I miss cooking since I went into management.", True),
    ("What would you like to be true about your relationship with your manager a year from now?",
     "Seven years at the same restaurant. Best cook in the kitchen.", False),
    ("What would you like to be true about your relationship with your manager a year from now?",
     "My boss changes the priorities every week.", True),
    ("How could this help her grow?", "My best nurse keeps clashing with the other charge nurses.", False),
    ("How could this help her grow?", "She wants to develop into a specialist role.", True),
])
def test_a_question_about_their_coaching_a_review_or_what_they_miss_needs_them_to_have_said_it(
        question: str, said: str, offered: bool) -> None:
    """Blind readers scored a review question 0 in every reading where no review was mentioned."""
    from assistant.moves import presupposes_unsaid

    assert presupposes_unsaid(question, said) is not offered


def test_a_later_message_keeps_the_situation_of_the_sessions_opening() -> None:
    """A later message that only says how it feels ("I just sat there") is ranked among the situations
    closest to it *or* to the session's opening message, so the opening's situation stays in reach."""
    from assistant.moves import MoveLibrary
    from assistant.understanding.encoder import embed

    lib = MoveLibrary.load()
    opening, later = embed(["My peer keeps presenting our joint work in reviews as if it were only his.",
                            "I was more annoyed at myself all afternoon than at anyone else."])
    top = lib.scores(opening, "high-performer")[0][0].id
    alone = {m.situation.id for m, _ in lib.rank([(later, 1.0)], "reality", "high-performer")}
    kept = {m.situation.id for m, _ in lib.rank([(later, 1.0)], "reality", "high-performer", situation_from=[opening])}
    assert top not in alone and top in kept
    assert len(kept) <= 4  # still the four closest situations, not more


def test_a_library_question_needs_its_own_situation_close_to_what_was_said() -> None:
    """Situations less close than ``SITUATION_FLOOR`` offer no question (readers scored such questions 0 in
    nearly half their readings: a neighbouring situation's premise); a message close to a situation keeps it."""
    from assistant.moves import SITUATION_FLOOR, MoveLibrary
    from assistant.understanding.encoder import embed

    lib = MoveLibrary.load()
    close, loose = embed(["My manager presented my analysis to the directors as if it were his own work.",
                          "Lots on my mind lately, hard to say where to begin."])
    best = lib.scores(close, "high-performer")[0]
    assert best[1] >= SITUATION_FLOOR
    assert best[0].id in {m.situation.id for m, _ in lib.rank([(close, 1.0)], "reality", "high-performer",
                                                               min_close=SITUATION_FLOOR)}
    assert lib.scores(loose, "high-performer")[0][1] < SITUATION_FLOOR
    assert lib.rank([(loose, 1.0)], "reality", "high-performer", min_close=SITUATION_FLOOR) == []
    assert lib.rank([(loose, 1.0)], "reality", "high-performer")  # without the floor the nearest are offered


def test_a_feeling_the_person_named_gets_its_own_question(tmp_path: Path) -> None:
    """A question about the feeling they named, theirs and not negated; the table is validated on load."""
    from assistant.moves import PROMPTS_DIR, feeling_question, plain_reflections

    assert feeling_question("Honestly I'm restless, three years on the same product.") == (
        "What is the restlessness pointing you toward?")
    assert feeling_question("I'm torn about the offer.") == "What is pulling you each way?"
    assert feeling_question("I'm not worried about the review.") is None  # negated
    assert feeling_question("The team feels overlooked after the launch.") is None  # someone else's
    assert feeling_question("Burnout. Not mine. My best project manager's.") is None  # disowned right after
    # what the feeling is about is already said: not asked again, a question that goes under it instead
    assert feeling_question("I'm so nervous.") == "What exactly are you afraid might happen?"
    assert feeling_question("Honestly I'm scared she will say it is not a priority.") == (
        "What would tell you whether what you are afraid of is likely to happen?")
    assert feeling_question("I'm torn between the team and the craft.") == "What matters most to you on each side?"
    assert feeling_question("I feel nervous, I guess.") == "What exactly are you afraid might happen?"
    bad = tmp_path / "reflections.yaml"
    text = (PROMPTS_DIR / "reflections.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace("[restless]", "[restlessish]"), encoding="utf-8")
    plain_reflections.cache_clear() if hasattr(plain_reflections, "cache_clear") else None
    with pytest.raises(DataError, match=r"reflections\.yaml: field feeling_questions\.What is the restlessness"):
        plain_reflections(bad)
    fear = 'ask: "What would tell you whether what you are afraid of is likely to happen?"'
    bad.write_text(text.replace(fear, 'ask: "Tell me more."'), encoding="utf-8")
    with pytest.raises(DataError, match=r"reflections\.yaml: field said_already\.What exactly are you afraid.*\.ask"):
        plain_reflections(bad)


def test_a_question_about_your_report_needs_someone_of_theirs_in_what_was_said() -> None:
    """The audience signal can be wrong on a first message; "your report" is never asked of someone who has
    mentioned nobody else (prompts/reflections.yaml: presupposed, a `question` / `said` pair)."""
    from assistant.moves import presupposes_unsaid

    question = "What do you know about what attracted your report to the offer?"
    assert presupposes_unsaid(question, "I have an offer from a competitor for regional sales manager. 30% more.")
    assert not presupposes_unsaid(question, "One of my engineers has an offer from a competitor.")
    assert not presupposes_unsaid(question, "She told me she has an offer.")
    assert not presupposes_unsaid("What would you like to be different?", "I have an offer.")


def test_a_question_contradicted_by_what_was_said_is_not_asked() -> None:
    """A report's future with the team is not asked about after the person said the report resigned."""
    from assistant.moves import presupposes_unsaid

    question = "What does success look like for your report six months from now, in their own words?"
    assert presupposes_unsaid(question, "star engineer resigned this morning. 4 weeks notice. what now")
    assert not presupposes_unsaid(question, "My star engineer seems bored lately.")
    assert not presupposes_unsaid("What do you most want to learn from how they leave?", "She resigned today.")
