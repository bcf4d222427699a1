"""GROW stage tracking: goal, reality, options, way forward. Moves on when a stage's aim is met; never back.

>>> s = GrowState()
>>> s.update("I want to grow without managing people")
'reality'

It reads only the coachee's words: the GROW aim the understanding layer's ``grow`` signal gives for each
message (``update(message, aim)``), plus a turn limit per stage; without a confident aim it falls back to
the few phrase rules below. It does not write questions.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

STAGES = ("goal", "reality", "options", "way_forward")
AIMS = {
    "goal": "agree what the coachee wants from this conversation",
    "reality": "explore what is happening now and what they have tried",
    "options": "widen the possibilities before choosing",
    "way_forward": "turn one option into the coachee's own next step",
}
MAX_TURNS = {"goal": 2, "reality": 2, "options": 2, "way_forward": 99}

_GOAL = re.compile(r"\b(want to|wants to|want more|want a|want some|like to|hope to|grow|"
                   r"i want|i'd like|i would like|i wish|i hope|hoping|my goal|goal is|i need|looking for|"
                   r"trying to|aim|i'm after|what i want|would love|to figure out|to decide|to get better)\b", re.I)
_REALITY = re.compile(r"\b(right now|currently|at the moment|so far|i tried|i've tried|i have tried|last (week|month|"
                      r"quarter|year)|every (day|week)|keeps?|happened|since|the problem is|what's happening)\b", re.I)
_OPTIONS = re.compile(r"\b(i could|we could|maybe i|option|alternatively|or i|one idea|might try|another way|"
                      r"possibility|possibilities|either|what if i)\b", re.I)
_COMMIT = re.compile(r"\b(i will|i'll|i am going to|i['’]?m going to|i['’]?m gonna|my (first|next) step|first step|"
                     r"i commit|i plan to|i've decided|i have decided|by (monday|tuesday|wednesday|thursday|friday|"
                     r"the end of|next)|tomorrow|this week|next week|before our next)\b", re.I)
_LOW = {"ok", "okay", "k", "kk", "idk", "i don't know", "dunno", "sure", "fine", "yes", "no", "maybe", "whatever",
        "hmm", "hm", "i guess", "not sure", "nothing", "nope", "yep", "yeah", "meh", "...", "…", "?", "no idea",
        "don't know", "not really", "i dunno", "cool", "right", "alright", "ok.", "mhm", "uh", "um", "same"}


def is_low_effort(message: str) -> bool:
    """A reply that gives the coach nothing to work with ("ok", "idk", one word)."""
    m = " ".join(message.lower().strip().rstrip(".!").split())
    return m in _LOW or len(re.findall(r"[a-z']+", m)) <= 1


def is_commitment(message: str) -> bool:
    """Words of a commitment ("I'll", "I'm going to", "by Friday"), also as typed without apostrophes ("im going
    to", "ill send it")."""
    from .mirror import unsquash

    return bool(_COMMIT.search(message) or _COMMIT.search(unsquash(message)))


@dataclass
class GrowState:
    """Per-session coaching state, stored as JSON with the session."""

    stage: str = "goal"
    turns_in_stage: int = 0
    coachee_turns: int = 0
    low_effort_streak: int = 0
    asked: list[str] = field(default_factory=list)
    action_plan: str | None = None
    closed: bool = False
    audience: str | None = None
    reflected: list[str] = field(default_factory=list)  # reflections already used, never twice
    followup: dict[str, Any] | None = None  # the follow-up on a remembered plan (people.followup.State)
    goal_noted: bool = False  # the person's goal has been remembered for this session
    theme_linked: bool = False  # an earlier session's goal or plan has been brought back in this one
    # while the audience is unknown: each message's probability that a manager is speaking, the first
    # (which usually says who they are) counted twice; the guess for a turn is their mean
    audience_lean: list[float] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GrowState:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _aim_met(self, message: str, aim: str | None = None) -> bool:
        if aim is not None:  # the learned signal's reading
            if self.stage == "goal":
                return aim in ("goal", "options", "commitment")
            if self.stage == "reality":
                return aim in ("options", "commitment") or (aim == "reality" and self.turns_in_stage >= 1)
            if self.stage == "options":
                return aim == "commitment" or (aim == "options" and self.turns_in_stage >= 1)
            return False
        words = len(message.split())
        if self.stage == "goal":
            return bool(_GOAL.search(message)) and self.turns_in_stage >= 0
        if self.stage == "reality":
            return self.turns_in_stage >= 1 and (bool(_REALITY.search(message)) or words >= 12
                                                 or bool(_OPTIONS.search(message)))
        if self.stage == "options":
            return self.turns_in_stage >= 1 and bool(_OPTIONS.search(message) or _COMMIT.search(message))
        return False

    def update(self, message: str, aim: str | None = None) -> str:
        """Account for one coachee message (``aim``: the grow signal's confident reading, if any); returns the
        stage the next question belongs to."""
        self.coachee_turns += 1
        if is_low_effort(message):
            self.low_effort_streak += 1
            return self.stage
        self.low_effort_streak = 0
        self.turns_in_stage += 1
        committed = aim == "commitment" if aim is not None else is_commitment(message)
        if self.stage != "way_forward" and (self._aim_met(message, aim) or self.turns_in_stage >= MAX_TURNS[self.stage]
                                            or (self.stage == "options" and committed)):
            self.stage = STAGES[STAGES.index(self.stage) + 1]
            self.turns_in_stage = 0
        return self.stage
