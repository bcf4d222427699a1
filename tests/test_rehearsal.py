"""Rehearsal: tension follows what the manager does, difficulty changes behaviour, the persona stays in
character."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.config import Settings
from assistant.errors import InputError, NotFoundError
from assistant.llm import FakeChatModel
from assistant.personas import BANDS, get_persona, load_personas
from assistant.rehearsal import DIFFICULTIES, Rehearsal, analyse
from assistant.transcripts import TranscriptStore
from assistant.voice import BAND_VOICE, breaks_character, check_rephrase, check_reply

PRIYA = "stay-interview-outside-offer"
GOOD = [
    "Good morning. What has been on your mind about your work lately?",
    "It sounds like the last year has been heavy. What matters most to you in what comes next?",
    "You want work that is yours to shape. What would make staying worthwhile for you?",
    "I appreciate how much you have carried for this team. What else is going on for you?",
    "So nobody has asked you about your future. What would you like to happen from here?",
    "Let's agree a next step: shall we meet again next Friday with a draft?",
]
# Good questions that all ask for the real story: when the concern comes out depends only on difficulty.
ASKING_WHAT_IS_GOING_ON = [
    "What has been on your mind lately?",
    "What else is going on for you at the moment?",
    "It sounds like there is more to this. What is really going on?",
    "I appreciate you telling me that. What else is on your mind?",
    "What is really behind all this for you?",
    "What else is going on for you?",
]
DISMISSIVE = [
    "Calm down, that's just how it is here.",
    "You should just take the counteroffer and move forward.",
    "Everyone has to do on-call, you're overreacting.",
    "Is it the money?",
    "Don't you think you're lucky to be here?",
    "That's not my problem, honestly.",
]
MIXED = [
    "Hi, thanks for coming in. What is on your mind today?",
    "Calm down, that's just how it is.",
    "It sounds like that landed badly. What would help right now?",
    "You should take some time off.",
    "What would a good year look like for you?",
    "Let's agree on a next step and meet again next week.",
]


def play(rehearsal: Rehearsal, script: list[str], persona: str = PRIYA,
         difficulty: str = "medium") -> list[dict[str, Any]]:
    results, sid = [], None
    for message in script:
        result = rehearsal.turn(message, persona, difficulty, sid)
        sid = result["session"]
        results.append(result)
    return results


def first_reveal(results: list[dict[str, Any]]) -> int:
    return next((i for i, r in enumerate(results) if r["revealed"]), len(results))


def test_result_has_the_ask_contract(settings: Settings, store: TranscriptStore) -> None:
    result = Rehearsal(settings, store).turn(GOOD[0], PRIYA)
    for key in ("reply", "session", "stage", "citations", "codes", "safety"):
        assert key in result
    assert result["persona"] == PRIYA and result["difficulty"] == "medium"
    assert result["stage"] is None and result["citations"] == [] and result["safety"] is None
    assert "open_question" in result["codes"]
    assert isinstance(result["tension"], int) and isinstance(result["revealed"], bool)


def test_tension_falls_under_open_questions_and_reflections(settings: Settings,
                                                            store: TranscriptStore) -> None:
    start = get_persona(PRIYA).start_tension("medium")
    results = play(Rehearsal(settings, store), GOOD[:3])
    assert results[0]["tension"] < start
    assert results[2]["tension"] < results[0]["tension"] or results[2]["tension"] == 0


@pytest.mark.parametrize("message", [
    "Calm down, that's just how it is.", "You're overreacting.", "You should take the counteroffer.",
    "Everyone has to do on-call, stop making it a thing.", "Don't you think you're lucky to be here?",
    "That's not my problem.",
])
def test_tension_rises_under_dismissal_and_advice(settings: Settings, store: TranscriptStore,
                                                  message: str) -> None:
    start = get_persona(PRIYA).start_tension("medium")
    result = Rehearsal(settings, store).turn(message, PRIYA, "medium")
    assert result["tension"] > start


def test_dismissal_gets_a_dismissed_reply(settings: Settings, store: TranscriptStore) -> None:
    result = Rehearsal(settings, store).turn("Calm down, that's just how it is.", PRIYA)
    assert result["reply"] in get_persona(PRIYA).lines.said("dismissed")


@pytest.mark.parametrize("persona_id", [p.id for p in load_personas()])
def test_hard_withholds_under_dismissal_and_reveals_after_good_questions(
        settings: Settings, store: TranscriptStore, persona_id: str) -> None:
    persona = get_persona(persona_id)
    bad = play(Rehearsal(settings, store), DISMISSIVE, persona_id, "hard")
    assert not any(r["revealed"] for r in bad)
    assert not any(r["reply"] in persona.lines.said("reveal") for r in bad)
    good = play(Rehearsal(settings, store), GOOD, persona_id, "hard")
    assert good[-1]["revealed"]
    assert any(r["reply"] in persona.lines.said("reveal") for r in good)
    assert first_reveal(good) >= 2  # on hard it has to be earned over several turns


def test_easy_reveals_sooner_than_hard(settings: Settings, store: TranscriptStore) -> None:
    when = {d: first_reveal(play(Rehearsal(settings, store), ASKING_WHAT_IS_GOING_ON, PRIYA, d))
            for d in DIFFICULTIES}
    assert when["easy"] < when["medium"] < when["hard"] < len(ASKING_WHAT_IS_GOING_ON)


def test_difficulty_scales_the_steps(settings: Settings, store: TranscriptStore) -> None:
    persona = get_persona(PRIYA)
    rise = {}
    for d in DIFFICULTIES:
        after = Rehearsal(settings, store).turn(DISMISSIVE[0], PRIYA, d)["tension"]
        rise[d] = after - persona.start_tension(d)
    assert rise["easy"] < rise["hard"]


@pytest.mark.parametrize("persona_id", [p.id for p in load_personas()])
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_every_persona_holds_character_for_six_turns(
        settings: Settings, store: TranscriptStore, persona_id: str, difficulty: str) -> None:
    persona = get_persona(persona_id)
    said = {line for band in BANDS for line in persona.lines.said(band)}
    results = play(Rehearsal(settings, store), MIXED, persona_id, difficulty)
    for r in results:
        assert r["reply"].strip()
        assert breaks_character(r["reply"]) is None, r["reply"]
        assert r["reply"] in said  # the fake backend speaks the scripted lines verbatim
    assert len({r["reply"] for r in results}) == len(results)  # no line repeated within six turns


def test_no_persona_line_breaks_character() -> None:
    for persona in load_personas():
        for band in BANDS:
            for line in persona.lines.said(band):
                assert breaks_character(line) is None, (persona.id, line)


def test_turns_and_state_are_stored(settings: Settings, store: TranscriptStore) -> None:
    results = play(Rehearsal(settings, store), MIXED)
    sid = results[0]["session"]
    turns = store.turns(sid)
    assert [t.role for t in turns] == ["user", "assistant"] * len(MIXED)
    assert [t.text for t in turns if t.role == "user"] == MIXED
    assert turns[1].meta["tension"] == results[0]["tension"] and "codes" in turns[1].meta
    session = store.session(sid)
    assert session.mode == "rehearse" and session.persona == PRIYA
    assert session.state["turns"] == len(MIXED)
    assert session.state["path"][1:] == [r["tension"] for r in results]


def test_the_manager_turn_is_stored_before_the_reply(settings: Settings, store: TranscriptStore) -> None:
    class Broken(FakeChatModel):
        def _reply(self, messages: Any) -> str:
            raise KeyboardInterrupt  # not an Exception: escapes the fallback, like a crash would

    rehearsal = Rehearsal(settings, store, model=Broken(), rephrase=True)
    with pytest.raises(KeyboardInterrupt):
        rehearsal.turn("What keeps you here?", PRIYA, session_id="abc123")
    assert [t.role for t in store.turns("abc123")] == ["user"]


def test_bad_input(settings: Settings, store: TranscriptStore) -> None:
    rehearsal = Rehearsal(settings, store)
    with pytest.raises(InputError, match="persona"):
        rehearsal.turn("Hello", None)
    with pytest.raises(InputError, match="difficulty"):
        rehearsal.turn("Hello", PRIYA, "brutal")
    with pytest.raises(InputError, match="empty"):
        rehearsal.turn("   ", PRIYA)
    with pytest.raises(NotFoundError):
        rehearsal.turn("Hello", "nobody")
    with pytest.raises(NotFoundError):
        rehearsal.turn("Hello", None, session_id="missing")
    sid = rehearsal.turn("Hello", PRIYA)["session"]
    with pytest.raises(InputError, match="rehearses"):
        rehearsal.turn("Hello", "stars-competing", session_id=sid)
    coach = store.create_session(mode="coach", backend="fake", model="fake-coach")
    with pytest.raises(InputError, match="not a rehearsal"):
        rehearsal.turn("Hello", PRIYA, session_id=coach)


def test_analyse_catches_what_the_coder_misses() -> None:
    assert analyse("You're overreacting.").dismissive
    assert analyse("Don't you think the lead role is the obvious move?").moves == ["leading_question"]
    assert analyse("Thank you for everything you did on the migration.").moves == ["acknowledgement"]
    proposal = analyse("Let's set a date for next Friday.")
    assert proposal.next_steps and "advice" not in proposal.moves


def test_check_rephrase_accepts_and_rejects() -> None:
    p = get_persona(PRIYA)
    line = p.lines.said("neutral")[0]
    assert check_rephrase("I find the staff level role appealing, a real step up in scope and pay.", line, p,
                          False) is None
    rejected = {
        "As an AI, I think the staff role is appealing.": "AI",
        "You should ask me about the staff level role and its scope.": "coaches",
        "What would you like to achieve with the staff level role?": "coaches",
        "The staff level role is appealing and a step up in scope.": "first person",
        "I find the staff role appealing. Would you try to match the scope?": "question",
        "I was in a one-on-one with my manager about the staff level role.": "narrates",
        "I had lunch and the weather was nice today, honestly.": "drifts",
        " ".join(["I like the staff level role"] * 12): "60 words",
    }
    for text, reason in rejected.items():
        assert reason in (check_rephrase(text, line, p, False) or ""), text


def test_check_rephrase_guards_the_hidden_concern() -> None:
    p = get_persona(PRIYA)
    line = p.lines.said("open")[0]
    leak = ("Honestly, I started taking the offer seriously because nobody here asked what I want next, "
            "and their hiring manager asked in the first call.")
    assert "hidden concern" in (check_rephrase(leak, line, p, revealed=False) or "")
    assert check_rephrase(leak, line, p, revealed=True) is None


def test_model_rephrasing_is_used_only_when_it_passes(settings: Settings, store: TranscriptStore) -> None:
    good = "I think the offer is generous, honestly. I would rather leave it at that."
    model = FakeChatModel(responses=[good, "As an AI language model, I would suggest you try harder."])
    rehearsal = Rehearsal(settings, store, model=model, rephrase=True)
    first = rehearsal.turn("What matters most to you about the offer?", PRIYA)
    assert first["reply"] == good and first["voice"] == "model"
    second = rehearsal.turn("What else is on your mind?", None, session_id=first["session"])
    persona = get_persona(PRIYA)
    assert second["voice"] == "line"
    meta = [t.meta for t in store.turns(first["session"]) if t.role == "assistant"][-1]
    assert second["reply"] == persona.lines.said(meta["line_band"])[meta["line"]]


def test_a_failing_model_falls_back_to_the_line_and_says_so(settings: Settings, store: TranscriptStore) -> None:
    class Broken(FakeChatModel):
        def _reply(self, messages):  # type: ignore[override]
            raise TimeoutError("Request timed out.")

    rehearsal = Rehearsal(settings, store, model=Broken(), rephrase=True)
    out = rehearsal.turn("What matters most to you about the offer?", PRIYA)
    assert out["fallback"] is True and out["voice"] == "fallback" and "scripted line" in out["notice"]
    assert out["reply"] in [line for band in ("guarded", "neutral", "open") for line in get_persona(PRIYA).lines.said(band)]


@pytest.mark.slow
def test_embedded_model_holds_character(tmp_path: Path) -> None:
    """Six turns on the real SmolLM2 with rephrasing on: every reply passes the in-character check."""
    settings = Settings(backend="embedded", data_dir=tmp_path)
    store = TranscriptStore(settings.db_path)
    rehearsal = Rehearsal(settings, store, rephrase=True)
    persona = get_persona(PRIYA)
    results = play(rehearsal, MIXED, PRIYA, "medium")
    assert type(rehearsal.model).__name__ == "LlamaCppChat"
    replies = [t for t in store.turns(results[0]["session"]) if t.role == "assistant"]
    for r, turn in zip(results, replies, strict=True):
        line = persona.lines.said(turn.meta["line_band"])[turn.meta["line"]]
        assert r["reply"].strip()
        assert breaks_character(r["reply"]) is None, r["reply"]
        if r["voice"] == "model":
            assert check_rephrase(r["reply"], line, persona, r["revealed"]) is None
        else:
            assert r["reply"] == line


def test_a_crisis_disclosure_pauses_the_rehearsal(tmp_path) -> None:
    from assistant.config import Settings as _Settings
    from assistant.rehearsal import Rehearsal as _Rehearsal

    engine = _Rehearsal(_Settings(backend="fake", data_dir=tmp_path))
    first = engine.turn("Thanks for making time today.", persona_id="feels-unrecognised", difficulty="easy")
    out = engine.turn("Sorry, I can't do this. Honestly I have been thinking about ending my life.",
                      persona_id=None, session_id=first["session"])
    assert out["safety"] == "crisis" and "crisis line" in out["reply"] and "paused" in out["reply"]
    roles = [t.role for t in engine.store.turns(first["session"])]
    assert roles == ["user", "assistant", "user", "assistant"]
    # a hard line that is part of the scene is still played, not referred
    scene = engine.turn("You're overreacting, everyone has to do overtime.", persona_id=None,
                        session_id=first["session"])
    assert scene["safety"] is None


def test_try_again_restarts_from_an_earlier_line_with_the_state_it_had(settings: Settings,
                                                                         store: TranscriptStore) -> None:
    rehearsal = Rehearsal(settings, store)
    first = play(rehearsal, ["What has been on your mind lately?", "Calm down, that's just how it is.",
                             "Everyone has to do on-call, you're overreacting."], PRIYA, "medium")
    sid = first[0]["session"]
    branch = rehearsal.try_again(sid, 2)
    assert branch != sid
    kept = store.turns(branch)
    assert [t.text for t in kept] == [t.text for t in store.turns(sid)[:2]]  # line 1 and its reply
    again = rehearsal.turn("It sounds like that landed badly. What would help right now?", None, session_id=branch)
    assert again["tension"] < first[1]["tension"]  # the dismissal never happened on this branch
    assert again["reply"] != first[0]["reply"]  # the line said before the branch is not said again
    assert len([t for t in store.turns(sid) if t.role == "user"]) == 3  # the original is untouched
    assert store.session(branch).state["branched_from"] == {"session": sid, "turn": 2}
    with pytest.raises(InputError, match="from 1 to 3"):
        rehearsal.try_again(sid, 4)


def test_a_strong_model_speaks_freely_but_is_checked(settings: Settings, store: TranscriptStore) -> None:
    """On an OpenAI-compatible model the persona answers from its card and the scene; a reply that coaches
    the manager or tells the concern before it is earned is replaced by the chosen line."""
    free = "Honestly, the pager wakes me most weeks. I fix it, and then I carry on with my day."
    leak = "The money isn't it. In six years nobody here has asked what I want next; their manager asked me."
    coaching = "It sounds like you want to know more. What matters most to you?"
    seen: list[str] = []

    class Recording(FakeChatModel):
        def _reply(self, messages):  # type: ignore[override]
            seen.append(" ".join(str(m.content) for m in messages))
            return super()._reply(messages)

    model = Recording(responses=[free, leak, coaching])
    rehearsal = Rehearsal(Settings(backend="openai", data_dir=settings.data_dir), store, model=model)
    assert rehearsal.free and not rehearsal.rephrase
    first = rehearsal.turn("How has the on-call load been?", PRIYA, "hard")
    assert first["reply"] == free and first["voice"] == "model"
    second = rehearsal.turn("Is it the money?", None, session_id=first["session"])
    assert not second["revealed"] and second["voice"] == "line" and second["reply"] != leak
    third = rehearsal.turn("Tell me about the platform.", None, session_id=first["session"])
    assert third["voice"] == "line" and third["reply"] != coaching
    # what the model was told: the card, how open to be, the manager's words; never the concern unearned
    assert all(get_persona(PRIYA).hidden_concern not in prompt for prompt in seen)
    assert "How has the on-call load been?" in seen[0] and BAND_VOICE[first["band"]] in seen[0]
    assert "How has the on-call load been?" in seen[1]  # the scene so far goes with the next turn


def test_check_reply_free_allows_new_words_but_not_a_leak() -> None:
    p = get_persona(PRIYA)
    line = p.lines.said("neutral")[0]
    assert check_reply("I get paged a lot, mostly at night, and I am tired of it.", line, p, False, free=True) is None
    assert check_reply("I get paged a lot, mostly at night, and I am tired of it.", line, p, False) is not None


def test_a_reflection_of_feeling_counts_as_listening_not_only_as_acknowledgement() -> None:
    """"It sounds like the launch took a lot out of you." is read by the move head as an acknowledgement and by
    the coder as a reflection: the debrief's "listened and reflected" must see it (it was rated missing)."""
    from assistant.rehearsal import move_of

    assert move_of("reflection", False, "acknowledgement") == "reflection"
    assert move_of("other", False, "acknowledgement") == "acknowledgement"
    assert move_of("affirmation", False, "other") == "acknowledgement"
    assert move_of("reflection", False, "dismissive") == "dismissive"
