"""The follow-up that opens a person's next coaching session, and the coach's answer to how it went.

>>> from assistant.people.followup import State
>>> State(item=3, plan="I'll ask for the rebuild.").to_dict()["answered"]
False

``opening`` is used on the first turn of a new session when the person has a remembered plan that has not
been followed up and the message only opens the session ("hi again"); ``answer`` on the turn after it, or
at once when the first message already reports on the plan (``reports_on``). A first message about
something else is coached as it is and the plan waits: the coach never ignores what the person just said.
Both return a reply and its meta for the chain, which
stores them like any other turn. The wording of the answers is data (``prompts/followup.yaml``); the
opening line quotes or safely rephrases the person's own words (``memory.followup_line``). This module
does not decide GROW stages: after the answer the session goes on from its goal stage.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..errors import DataError
from ..prompts import PROMPTS_DIR, read_mapping
from ..understanding.outcome import outcome
from .memory import Memory, MemoryItem, followup_line


@dataclass
class State:
    """What a session remembers of its follow-up (kept in the session's GrowState as ``followup``)."""

    item: int
    plan: str
    answered: bool = False
    outcome: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FOLLOWUP_FILE = PROMPTS_DIR / "followup.yaml"


class _Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reflection: str
    questions: list[str]


class _Themes(BaseModel):
    model_config = ConfigDict(extra="forbid")
    goal: str
    plan: str

    @field_validator("goal", "plan")
    @classmethod
    def _quotes(cls, v: str) -> str:
        if "{words}" not in v or not v.rstrip().endswith("?"):
            raise ValueError("must quote {words} and end with the question")
        return v


class _FollowupFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcomes: dict[Literal["done", "partly", "not_done"], _Outcome]
    themes: _Themes


@functools.lru_cache(maxsize=1)
def _wording() -> _FollowupFile:
    """``prompts/followup.yaml``, validated: an error names the file and the field."""
    try:
        data = _FollowupFile(**read_mapping(FOLLOWUP_FILE))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise DataError(f"{FOLLOWUP_FILE}: field {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    if set(data.outcomes) != {"done", "partly", "not_done"} or any(not o.questions for o in data.outcomes.values()):
        raise DataError(f"{FOLLOWUP_FILE}: field outcomes: needs done, partly and not_done, each with questions")
    return data


def _texts() -> dict[str, Any]:
    return {k: v.model_dump() for k, v in _wording().outcomes.items()}


def opening(memory: Memory, user_id: str) -> tuple[str, dict[str, Any], State] | None:
    """The first reply of a new session when a plan is waiting to be followed up, else None."""
    item = memory.open_plan(user_id)
    if item is None:
        return None
    line = followup_line(item.text)
    return line, {"route": "followup", "followup": line, "memory_item": item.id, "citations": [],
                  "stage": "goal"}, State(item=item.id, plan=item.text)


# A session's first message is read as a report on the remembered plan when its closeness in meaning to the
# plan (shared MiniLM embedding, cosine) and to answers to "How did it go?" (``outcome.report_likeness``),
# weighted 1:2, reach REPORT_SCORE. Chosen on evals/understanding/followup/dev.jsonl (40 plans, another
# writer's) for few false reports on a different issue with the same people (docs/privacy.md, "Memory"):
# a report the coach misses is still coached as it is; a new topic read as a report would be ignored.
REPORT_SCORE = 0.4
FIRST_MESSAGES = ("greeting", "report", "new_topic", "near_topic")


def reports_on(text: str, plan: str) -> bool:
    """Whether a session's first message says how the remembered plan went, rather than raising something new."""
    from ..understanding.encoder import embed
    from ..understanding.outcome import report_likeness

    message, remembered = embed([text, plan])
    return (float(message @ remembered) + 2 * report_likeness(message)) / 3 >= REPORT_SCORE


def answer(memory: Memory, state: State, text: str, asked: list[str]) -> tuple[str, dict[str, Any]]:
    """Reflect how it went without judgement and ask one open question about it; marks the item's status."""
    result = outcome(text)
    state.answered, state.outcome = True, result
    memory.set_status(state.item, result)  # an item the person deleted meanwhile: nothing to update
    texts = _texts()[result]
    question = next((q for q in texts["questions"] if q not in asked), texts["questions"][0])
    asked.append(question)
    return f"{texts['reflection']} {question}", {"route": "followup_answer", "outcome": result, "citations": [],
                                                  "stage": "goal"}


# An earlier goal or plan (from another session) is brought back once in a session when a later message is on
# its theme: the understanding layer's ``theme`` signal (``understanding.themes``), its threshold chosen on
# evals/understanding/themes/dev.jsonl so that a message on another issue is rarely linked (docs/privacy.md,
# "Earlier themes").


def earlier_theme(memory: Memory, user_id: str, sid: str, vector: Any) -> tuple[MemoryItem, float] | None:
    """The person's remembered goal or plan from another session most likely on the theme of a message (its
    shared embedding), when the theme signal is sure enough to bring it back; else None."""
    from ..understanding import themes
    from ..understanding.encoder import embed

    items = [i for i in memory.items(user_id) if i.session_id != sid]
    if not items:
        return None
    p = themes.related(embed([i.text for i in items]), vector)
    best = int(p.argmax())
    return (items[best], float(p[best])) if p[best] >= themes.threshold() else None


def theme_question(item: MemoryItem) -> str:
    """The coach's question that brings an earlier goal or plan back, quoting the person's own words."""
    words = " ".join(item.text.split())
    words = words if words.endswith((".", "!", "…")) else words + "."
    return str(getattr(_wording().themes, item.kind)).format(words=words)


def routing_figures(path: Path) -> dict[str, float]:
    """How first messages of a new session are routed, on a file of plans with four kinds of first message
    (``evals/understanding/followup/*.jsonl``): the share of greetings that open with the follow-up, of
    reports answered as reports, and of new and near topics wrongly read as reports (they must be coached)."""
    from ..understanding.data import FirstMessages, read_rows
    from ..understanding.greeting import is_greeting

    rows = read_rows(Path(path), FirstMessages)

    def followed_up(text: str, plan: str) -> bool:
        return is_greeting(text) or reports_on(text, plan)

    figures = {f: sum(followed_up(getattr(r, f), r.plan) for r in rows) / len(rows) for f in FIRST_MESSAGES}
    return {"n": len(rows), **{f"{f}_followed_up": round(v, 3) for f, v in figures.items()}}
