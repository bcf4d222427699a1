"""Debrief after a rehearsal: reflective questions for the manager and a scorecard quoting their own lines.

>>> exact_excerpt("What  keeps you here?", "Thanks. What  keeps you\\nhere? Tell me.")
'What  keeps you\\nhere?'

One scorecard row per practice of the persona, each with a rating (strong, partly, missing), the
manager sentence that best evidences it (or best shows the gap), the coder's code of that sentence
and the handbook page that teaches the practice. Every quote is checked to be an exact excerpt of one
of the manager's own lines before the debrief is returned. The questions ask, never tell: they are
built from what happened (where tension rose, whether the hidden concern came out, which practices
were missing); a real model may add one more open question, accepted only if the coder codes it as an
open question. This module does not replay the rehearsal or change the transcript.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InputError, NotFoundError
from .personas import PERSONAS_DIR, PRACTICES, Persona, get_persona
from .rehearsal import code_message, manager_move_labels, move_of, proposals
from .transcripts import TranscriptStore
from .understanding.coder import code_sentence

if TYPE_CHECKING:  # langchain is slow to import; only a real model needs it
    from langchain_core.language_models import BaseChatModel

_GROWTH = re.compile(r"\b(grow\w*|career|future|develop\w*|learn\w*|path|progress\w*|years?|scope|"
                     r"ambition\w*|aspir\w*|specialist|expert\w*|craft\w*|stretch\w*)\b", re.I)
_PUSH_MANAGEMENT = re.compile(r"\b(manag(?:e|er|ing|ement)|lead role|team lead|promot\w*|step up|"
                              r"natural next step|leadership role|run the team|head of)\b", re.I)
_KEEPS = re.compile(r"\b(keeps?|stay\w*|leav\w*|enjoy\w*|energ\w*|love|matters?|motivat\w*|worth\w*|"
                    r"best part|look forward|excit\w*|satisf\w*)\b", re.I)
_SHARED = re.compile(r"\b(we|us|our|together|both|shared|team)\b", re.I)
_GOALS = re.compile(r"\b(goals?|priorit\w*|roadmap|aims?|objectives?|outcomes?|success|targets?|"
                    r"direction|needs?)\b", re.I)
_GENERIC_PRAISE = re.compile(r"\b(great job|good job|nice work|awesome|well done|doing great|rock ?star)\b",
                             re.I)
_ASKING = ("open_question", "reflection")
# recognition is about the employee: a sentence that does not speak to them ("Sorry, that was me jumping to
# advice.", which the move head reads as an acknowledgement) is not evidence of acknowledging their work
_TO_THEM = re.compile(r"\b(you|your|yours|you're|youre|you've|you'd|you'll|yourself)\b", re.I)


@dataclass
class Said:
    """One manager sentence: ``text`` is an exact excerpt of ``line``."""

    text: str
    line: str
    turn: int
    code: str
    move: str
    proposal: bool = False  # the next-step head read it as proposing a next step

    @property
    def words(self) -> int:
        return len(self.text.split())


def exact_excerpt(sentence: str, line: str) -> str | None:
    """The exact excerpt of ``line`` that the (whitespace-normalised) ``sentence`` came from."""
    if sentence in line:
        return sentence
    words = sentence.split()
    if not words:
        return None
    match = re.search(r"\s+".join(re.escape(w) for w in words), line)
    return match.group(0) if match else None


def manager_sentences(lines: list[str]) -> list[Said]:
    said = []
    for turn, line in enumerate(lines):
        for (sentence, code), proposal, move in zip(code_message(line), proposals(line), manager_move_labels(line),
                                                    strict=True):
            text = exact_excerpt(sentence, line)
            if text:
                said.append(Said(text, line, turn, code, move_of(code, proposal, move), proposal))
    return said


def _rate(count: int, strong_at: int = 2) -> str:
    return "strong" if count >= strong_at else "partly" if count else "missing"


def _first(said: list[Said], *moves: str) -> Said | None:
    return next((s for s in said if s.move in moves), None)


def _richest(found: list[Said]) -> Said | None:
    return max(found, key=lambda s: s.words) if found else None


Evidence = tuple[str, Said | None, Said | None]  # rating, best evidence, clearest gap


def _open_questions(said: list[Said], agreed: bool) -> Evidence:
    opens = [s for s in said if s.move == "open_question"]
    closed = [s for s in said if s.move in ("closed_question", "leading_question")]
    rating = "strong" if len(opens) >= 2 and len(opens) >= len(closed) else _rate(len(opens), 1)
    return rating, _richest(opens), _first(said, "leading_question", "closed_question", "advice")


def _reflected(said: list[Said], agreed: bool) -> Evidence:
    found = [s for s in said if s.move == "reflection"]
    return _rate(len(found)), _richest(found), _first(said, "dismissive", "advice", "closed_question")


def _acknowledgements(said: list[Said]) -> tuple[list[Said], list[Said]]:
    acks = [s for s in said if s.move == "acknowledgement" and _TO_THEM.search(s.text)]
    generic = [s for s in said if _GENERIC_PRAISE.search(s.text) and s not in acks]
    return acks, generic


def _acknowledged(said: list[Said], agreed: bool) -> Evidence:
    acks, generic = _acknowledgements(said)
    specific = [s for s in acks if s.words >= 7]
    rating = "strong" if specific or len(acks) >= 2 else "partly" if acks or generic else "missing"
    return rating, _richest(acks) or _richest(generic), _first(said, "dismissive", "advice")


def _specific_recognition(said: list[Said], agreed: bool) -> Evidence:
    acks, generic = _acknowledgements(said)
    specific = [s for s in acks if s.words >= 7]
    rating = "strong" if specific else "partly" if acks or generic else "missing"
    return rating, _richest(specific) or _richest(acks) or _richest(generic), _first(said, "dismissive")


def _growth(said: list[Said], agreed: bool) -> Evidence:
    asked = [s for s in said if s.move in _ASKING and _GROWTH.search(s.text)]
    mentioned = [s for s in said if _GROWTH.search(s.text) and s not in asked]
    pushed = [s for s in said if _PUSH_MANAGEMENT.search(s.text) and s.move not in _ASKING]
    if asked:
        rating = "partly" if pushed else "strong"
    else:
        rating = "partly" if mentioned and not pushed else "missing"
    gap = pushed[0] if pushed else _first(said, "advice", "closed_question")
    return rating, _richest(asked) or _richest(mentioned), gap


def _next_steps(said: list[Said], agreed: bool) -> Evidence:
    found = [s for s in said if s.proposal]
    rating = ("strong" if agreed else "partly") if found else "missing"
    return rating, found[-1] if found else None, said[-1] if said else None


def _no_advice(said: list[Said], agreed: bool) -> Evidence:
    advice = [s for s in said if s.move == "advice" or (s.code == "advice" and s.move != "proposal")]
    rating = "strong" if not advice else "partly" if len(advice) == 1 else "missing"
    if advice:
        return rating, advice[0], advice[0]
    return rating, _richest([s for s in said if s.move in _ASKING]), None


def _what_keeps(said: list[Said], agreed: bool) -> Evidence:
    asked = [s for s in said if s.move == "open_question" and _KEEPS.search(s.text)]
    heard = [s for s in said if s.move == "reflection" and _KEEPS.search(s.text)]
    rating = "strong" if asked else "partly" if heard else "missing"
    return rating, _richest(asked) or _richest(heard), _first(said, "closed_question", "advice", "dismissive")


def _shared_goals(said: list[Said], agreed: bool) -> Evidence:
    found = [s for s in said if _SHARED.search(s.text) and _GOALS.search(s.text)]
    together = [s for s in found if s.move in (*_ASKING, "proposal")]
    rating = "strong" if together else "partly" if found else "missing"
    return rating, _richest(together) or _richest(found), _first(said, "advice", "dismissive")


SCORERS: dict[str, Callable[[list[Said], bool], Evidence]] = {
    "asked open questions": _open_questions,
    "listened and reflected": _reflected,
    "acknowledged contributions": _acknowledged,
    "gave specific recognition": _specific_recognition,
    "explored growth without pushing management": _growth,
    "agreed next steps": _next_steps,
    "avoided unsolicited advice": _no_advice,
    "explored what keeps them": _what_keeps,
    "aligned on shared goals": _shared_goals,
}

# One reflective question per practice, asked when the practice was missing.
_MISSING_QUESTION = {
    "asked open questions":
        "What did your questions open up in the conversation, and what did they close down?",
    "listened and reflected":
        "How might {name} have responded if you had reflected back what they said before moving on?",
    "acknowledged contributions":
        "What contribution of {name}'s could you have named, and how might it have landed?",
    "gave specific recognition":
        "What specific piece of {name}'s work would you want them to hear you recognise?",
    "explored growth without pushing management":
        "How might it have gone if you had asked what growth means to {name}?",
    "agreed next steps":
        "What next step would {name} genuinely own, and how could you agree it together?",
    "avoided unsolicited advice":
        "What made you want to offer a solution, and what might asking have given you?",
    "explored what keeps them":
        "What do you now know, or still not know, about what keeps {name} here?",
    "aligned on shared goals":
        "What goal do you and {name} share, and how could you put it into words together?",
}


def _short(text: str, words: int = 12) -> str:
    parts = text.split()
    return " ".join(parts[:words]).rstrip(".!?,;:") + ("..." if len(parts) > words else "")


_MOVE_WORDS = {
    "open_question": "an open question", "closed_question": "a closed question", "reflection": "a reflection",
    "acknowledgement": "an acknowledgement", "proposal": "a proposed next step", "advice": "advice",
    "leading_question": "a leading question", "dismissive": "a dismissal", "neutral": "a statement",
}


def _tension_at(path: list[int], turn: int) -> str:
    if turn + 1 < len(path):
        before, after = path[turn], path[turn + 1]
        change = "rose" if after > before else "fell" if after < before else "stayed"
        return f"tension {change} ({before} to {after})" if change != "stayed" else f"tension stayed at {after}"
    return ""


def most_needed(practice: str, said: list[Said], gap: Said | None, path: list[int], bands: list[str],
                name: str, heard: list[str] | None = None) -> tuple[Said | None, str]:
    """For a missing practice: the manager line where it was most needed, and why that line."""
    if not said:
        return None, ""
    last_turn = said[-1].turn
    if practice == "agreed next steps":  # the close of the conversation is where a next step belongs
        return next(s for s in said if s.turn == last_turn), "the conversation ended here without a next step"
    if practice in ("listened and reflected", "acknowledged contributions", "gave specific recognition"):
        # the line right after the persona opened up most (told the concern, else spoke openly)
        for band in ("reveal", "open"):
            after = next((s for s in said if s.turn > 0 and bands[s.turn - 1] == band), None)
            if after is not None:
                return after, f"{name} had just opened up, and this line moved on without showing it was heard"
        if heard and last_turn > 0:  # else the line after the persona's fullest answer: most there to hear
            k = max(range(1, last_turn + 1), key=lambda i: len(heard[i - 1].split()) if i - 1 < len(heard) else 0)
            line = next((s for s in said if s.turn == k), None)
            if line is not None:
                return line, f"{name} had just said the most, and this line moved on without showing it was heard"
    if gap is not None:
        return gap, f"this was {_MOVE_WORDS.get(gap.move, gap.move)}"
    rises = [(path[i + 1] - path[i], i) for i in range(min(len(path) - 1, last_turn + 1))]
    rise, turn = max(rises, default=(0, 0))
    if rise > 0:
        return next(s for s in said if s.turn == turn), "tension rose most after this line"
    return said[0], "the opening, where the tone of the conversation is set"


def explain(practice: str, rating: str, chosen: Said | None, reason: str, path: list[int], turn: int) -> str:
    """One sentence on why a row has its rating, pointing at the quoted line by its turn."""
    if chosen is None:
        return f"No line of yours showed {practice}."
    where = f"Turn {turn + 1}"
    tension = _tension_at(path, turn)
    if rating == "missing":
        return f"{where}, where it was most needed: {reason}" + (f"; {tension}." if tension else ".")
    what = _MOVE_WORDS.get(chosen.move, chosen.move)
    level = "clearly" if rating == "strong" else "in part"
    return (f"{where}, where it happened: {what} that {level} shows this practice"
            + (f"; {tension}." if tension else "."))


def _questions(persona: Persona, said: list[Said], lines: list[str], path: list[int], revealed: bool,
               rows: list[dict[str, Any]]) -> list[str]:
    name = persona.name
    out: list[str] = []
    steps = [(path[i + 1] - path[i], i) for i in range(min(len(path) - 1, len(lines)))]
    rise = max(steps, default=(0, -1))
    if rise[0] > 0:  # quote the sentence that most likely raised it
        turn = [s for s in said if s.turn == rise[1]]
        worst = _first(turn, "dismissive", "advice", "leading_question", "closed_question")
        out.append(f'What was happening for you when you said "{_short(worst.text if worst else lines[rise[1]])}"?')
    if revealed:
        out.append(f"What did you do that made it possible for {name} to tell you what was really going on?")
    else:
        out.append(f"What do you imagine {name} was holding back, and what might have helped them say it?")
    missing = [r["practice"] for r in rows if r["rating"] == "missing"]
    out += [_MISSING_QUESTION[p].format(name=name) for p in missing[:2]]
    fall = min(steps, default=(0, -1))
    if len(out) < 3 and fall[0] < 0:
        out.append(f'What shifted for {name} after you said "{_short(lines[fall[1]])}"?')
    if len(out) < 3:
        out.append(f"What did you learn about {name} that you did not know before?")
    out.append(f"What will you do differently when you have this conversation with {name} for real?")
    return out[:5]


def _model_question(model: BaseChatModel, persona: Persona, lines: list[str],
                    missing: list[str]) -> str | None:
    """One extra reflective question from a real model, kept only if the coder calls it open."""
    from langchain_core.messages import HumanMessage, SystemMessage

    system = ("You coach a manager after a practice conversation. Ask exactly one short open question "
              "that helps the manager reflect. Do not give advice.")
    said = "\n".join(f"- {x[:200]}" for x in lines[-3:])
    prompt = (f"Scenario: {persona.title}. The manager said:\n{said}\n"
              f"Practices they missed: {', '.join(missing) or 'none'}.\nQuestion:")
    kwargs: dict[str, Any] = {}
    if getattr(model, "supports_grammar", False):
        kwargs = {"grammar": 'root ::= ("What" | "How") (" " [a-zA-Z\',-]+){4,22} "?"', "max_tokens": 48}
    try:
        out = model.invoke([SystemMessage(content=system), HumanMessage(content=prompt)], **kwargs)
    except Exception:  # noqa: BLE001 - the rule-built questions stand on their own
        return None
    found = re.findall(r"[A-Z][^?.!\n]{8,200}\?", str(out.content))
    question = found[-1].strip() if found else ""
    advice = re.search(r"\b(you should|try|make sure|consider)\b", question, re.I)
    if not question or len(question.split()) > 30 or advice:
        return None
    return question if code_sentence(question) == "open_question" else None


def debrief(store: TranscriptStore, session_id: str, model: BaseChatModel | None = None, *,
            personas_dir: Any = PERSONAS_DIR, user_id: str | None = None) -> dict[str, Any]:
    """Questions and a scorecard for one rehearsal session (``coach debrief`` contract); with ``user_id``,
    only a session that person owns."""
    session = store.session(session_id)  # NotFoundError for an unknown session
    if user_id is not None and session.user_id != user_id:
        raise NotFoundError(f"no session {session_id!r} for {user_id!r}")
    if session.mode != "rehearse":
        raise InputError(f"session {session_id} is a {session.mode} session; a debrief needs a rehearsal")
    turns = store.turns(session_id)
    lines = [t.text for t in turns if t.role == "user"]
    if not lines:
        raise InputError(f"session {session_id} has no manager turns to debrief yet")
    persona = get_persona(str(session.persona), personas_dir)
    said = manager_sentences(lines)
    replies = [t for t in turns if t.role == "assistant"]
    agreed = any(t.meta.get("band") == "agree" for t in replies)
    state = session.state
    path = [int(x) for x in state.get("path") or [t.meta.get("tension", 0) for t in replies]]
    revealed = bool(state.get("revealed")) or any(t.meta.get("revealed") for t in replies)

    bands = [str(t.meta.get("band") or "") for t in replies]
    rows = []
    for practice in persona.practices:
        rating, best, gap = SCORERS[practice](said, agreed)
        if rating == "missing":
            chosen, reason = most_needed(practice, said, gap, path, bands, persona.name,
                                         [t.text for t in replies])
        else:
            chosen, reason = best or (said[0] if said else None), ""
        quote = chosen.text if chosen else lines[0]
        if chosen and rating == "missing" and len(chosen.line.split()) <= 40:
            quote = chosen.line.strip()  # where it was needed: the whole (short) line, still exact
        turn = chosen.turn if chosen else 0
        rows.append({"practice": practice, "rating": rating, "quote": quote, "source": PRACTICES[practice],
                     "evidence_code": chosen.code if chosen else "",
                     "evidence_move": chosen.move if chosen else "",
                     "evidence": "where it was most needed" if rating == "missing" else "where it happened",
                     "turn": turn + 1,
                     "why": explain(practice, rating, chosen, reason, path, turn)})
    for row in rows:  # the contract: every quote is an exact excerpt of the manager's own words
        if not any(row["quote"] in line for line in lines):
            raise RuntimeError(f"debrief quote is not verbatim: {row['quote']!r}")

    questions = _questions(persona, said, lines, path, revealed, rows)
    if model is not None and getattr(model, "_llm_type", "") != "fake" and len(questions) < 5:
        missing = [r["practice"] for r in rows if r["rating"] == "missing"]
        extra = _model_question(model, persona, lines, missing)
        if extra and extra not in questions:
            questions.insert(len(questions) - 1, extra)
    return {"session": session_id, "persona": persona.id, "difficulty": session.difficulty,
            "questions": questions, "scorecard": rows, "tension_path": path, "revealed": revealed,
            "turns": len(lines)}
