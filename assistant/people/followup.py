"""The follow-up that opens a person's next coaching session, and the coach's answer to how it went.

>>> from assistant.people.followup import State
>>> State(item=3, plan="I'll ask for the rebuild.").to_dict()["answered"]
False

``opening`` is used on the first turn of a new session when the person has a remembered plan that has not
been followed up; ``answer`` on the turn after it. Both return a reply and its meta for the chain, which
stores them like any other turn. The wording of the answers is data (``prompts/followup.yaml``); the
opening line quotes or safely rephrases the person's own words (``memory.followup_line``). This module
does not decide GROW stages: after the answer the session goes on from its goal stage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..prompts import PROMPTS_DIR, read_mapping
from ..understanding.outcome import outcome
from .memory import Memory, followup_line


@dataclass
class State:
    """What a session remembers of its follow-up (kept in the session's GrowState as ``followup``)."""

    item: int
    plan: str
    answered: bool = False
    outcome: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _texts() -> dict[str, Any]:
    return read_mapping(PROMPTS_DIR / "followup.yaml")["outcomes"]


def opening(memory: Memory, user_id: str) -> tuple[str, dict[str, Any], State] | None:
    """The first reply of a new session when a plan is waiting to be followed up, else None."""
    item = memory.open_plan(user_id)
    if item is None:
        return None
    line = followup_line(item.text)
    return line, {"route": "followup", "followup": line, "memory_item": item.id, "citations": [],
                  "stage": "goal"}, State(item=item.id, plan=item.text)


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
