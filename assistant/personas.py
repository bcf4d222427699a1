"""Rehearsal personas: YAML files under ``prompts/personas/`` validated into pydantic models.

>>> p = get_persona("stay-interview-outside-offer")
>>> p.name, sorted(p.summary())
('Priya', ['difficulties', 'id', 'scenario', 'title'])
>>> PRACTICES["asked open questions"]
'knowledge/asking-powerful-questions.md'

Every key is checked (``extra="forbid"``): topics come from the handbook vocabulary, practices from the
fixed scorecard list (each tied to a handbook page), every line band has at least one line, and the
starting tension rises with difficulty. A bad file is a DataError naming the file and the field.
This module does not play the persona or score a rehearsal; see ``rehearsal`` and ``debrief``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .config import ROOT
from .errors import DataError, NotFoundError
from .prompts import read_mapping

PERSONAS_DIR = ROOT / "prompts" / "personas"
DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")

Topic = Literal[
    "autonomy-guidance", "motivation", "recognition", "stay-interview", "growth-dialogue", "gamification",
    "coaching", "coaching-models", "coaching-questions", "partnership", "career-paths", "retention",
    "case-study",
]

# Each scorecard practice and the handbook page that teaches it (the debrief cites these).
PRACTICES: dict[str, str] = {
    "asked open questions": "knowledge/asking-powerful-questions.md",
    "listened and reflected": "knowledge/why-coach.md",
    "acknowledged contributions": "knowledge/recognition.md",
    "gave specific recognition": "knowledge/recognition.md",
    "explored growth without pushing management": "knowledge/individual-contributor-path.md",
    "agreed next steps": "knowledge/growth-dialogues.md",
    "avoided unsolicited advice": "knowledge/why-coach.md",
    "explored what keeps them": "knowledge/stay-interviews.md",
    "aligned on shared goals": "knowledge/partnering-with-top-performers.md",
}

Practice = Literal[
    "asked open questions", "listened and reflected", "acknowledged contributions",
    "gave specific recognition", "explored growth without pushing management", "agreed next steps",
    "avoided unsolicited advice", "explored what keeps them", "aligned on shared goals",
]

BANDS: tuple[str, ...] = ("guarded", "neutral", "open", "reveal", "agree", "dismissed")


def _text() -> Any:
    return Field(min_length=3)  # a fresh FieldInfo per field


class Line(BaseModel):
    """One thing the persona can say, and what it answers (short phrases: "on-call load", "the offer").

    In a persona file a line is either plain text or ``{say: ..., about: [...]}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    say: str = Field(min_length=3)
    about: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        return {"say": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _no_blanks(self) -> Line:
        if not self.say.strip():
            raise ValueError("the line is blank")
        for i, phrase in enumerate(self.about):
            if not phrase.strip() or len(phrase) > 80:
                raise ValueError(f"about[{i}] must be a short phrase (1-80 characters)")
        return self


class PersonaLines(BaseModel):
    """What the persona can say, by band: the rehearsal picks a band from the tension, then the line
    that best answers what was asked (``lines``)."""

    model_config = ConfigDict(extra="forbid")
    guarded: list[Line] = Field(min_length=1)
    neutral: list[Line] = Field(min_length=1)
    open: list[Line] = Field(min_length=1)
    reveal: list[Line] = Field(min_length=1)
    agree: list[Line] = Field(min_length=1)
    dismissed: list[Line] = Field(min_length=1)

    def said(self, band: str) -> list[str]:
        """The texts of one band, in file order."""
        return [line.say for line in getattr(self, band)]

    @model_validator(mode="after")
    def _no_line_twice(self) -> PersonaLines:
        seen: dict[str, str] = {}
        for band in BANDS:
            for i, line in enumerate(getattr(self, band)):
                if line.say in seen:
                    raise ValueError(f"{band}[{i}] repeats a line of {seen[line.say]}")
                seen[line.say] = f"{band}[{i}]"
        return self


class InitialTension(BaseModel):
    """Starting tension per difficulty, 0 (relaxed) to 10 (ready to walk out)."""

    model_config = ConfigDict(extra="forbid")
    easy: int = Field(ge=0, le=10)
    medium: int = Field(ge=0, le=10)
    hard: int = Field(ge=0, le=10)

    @model_validator(mode="after")
    def _rises_with_difficulty(self) -> InitialTension:
        if not self.easy < self.medium < self.hard:
            raise ValueError("must rise with difficulty: easy < medium < hard")
        return self


class Persona(BaseModel):
    """One employee the manager can rehearse with."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
    title: str = _text()
    scenario: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
    topics: list[Topic] = Field(min_length=1)
    name: str = Field(min_length=1)
    role: str = _text()
    background: str = _text()
    wants: str = _text()
    hidden_concern: str = _text()
    speaking_style: str = _text()
    raises_tension: list[str] = Field(min_length=1)
    lowers_tension: list[str] = Field(min_length=1)
    good_outcome: str = _text()
    practices: list[Practice] = Field(min_length=1)
    opening: str = _text()
    lines: PersonaLines
    initial_tension: InitialTension

    def summary(self) -> dict[str, object]:
        """The ``coach personas --json`` row (BRIEF contract)."""
        return {"id": self.id, "title": self.title, "scenario": self.scenario,
                "difficulties": list(DIFFICULTIES)}

    def start_tension(self, difficulty: str) -> int:
        return int(getattr(self.initial_tension, difficulty))

    def card(self) -> str:
        """A short character card for prompts. The hidden concern is deliberately left out."""
        return (f"You are {self.name}, {self.role}. {self.background}\n"
                f"What you want: {self.wants}\nHow you talk: {self.speaking_style}")


@functools.lru_cache(maxsize=64)
def _parse(path: Path, mtime_ns: int, size: int) -> Persona:
    data = read_mapping(path)
    try:
        persona = Persona(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(file)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise DataError(f"{path}: field {where}: {msg}") from None
    if persona.id != path.stem:
        raise DataError(f"{path}: field id: {persona.id!r} must match the file name {path.stem!r}")
    return persona


def parse_persona(path: Path) -> Persona:
    """One persona file; raises DataError naming the file and the first bad field. Cached until it changes."""
    path = Path(path)
    stat = path.stat()
    return _parse(path, stat.st_mtime_ns, stat.st_size)


def load_personas(folder: Path = PERSONAS_DIR) -> list[Persona]:
    """Every ``*.yaml`` persona under ``folder``, sorted by id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: persona folder not found")
    return [parse_persona(p) for p in sorted(folder.glob("*.yaml"))]  # id == file stem: sorted by id


def get_persona(persona_id: str, folder: Path = PERSONAS_DIR) -> Persona:
    """The persona called ``persona_id``; an unknown id is a NotFoundError listing the known ones."""
    path = Path(folder) / f"{persona_id}.yaml"
    if "/" not in persona_id and path.is_file():
        return parse_persona(path)
    known = ", ".join(p.id for p in load_personas(folder))
    raise NotFoundError(f"unknown persona {persona_id!r}; known personas: {known}")


def persona_brief(p: Persona) -> str:
    """What the manager sees before the first line: who, their role, what the manager knows, and the goal
    of the practice. Never the hidden concern, the persona's wants or its lines."""
    practices = ", ".join(p.practices)
    return (f"**You are talking with {p.name}**, {p.role}.\n\n"
            f"**What you know:** {p.background}\n\n"
            f"**Your goal:** a conversation in which {p.name} feels heard and you agree a next step together. "
            f"The debrief looks for: {practices}.")
