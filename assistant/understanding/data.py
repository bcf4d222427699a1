"""Labelled data for the understanding layer: JSON-lines files under ``evals/understanding/``, each row
validated on load (a bad row is an error naming the file, the line and the field).

>>> from pathlib import Path
>>> rows = read_rows(SAFETY_DIR / "blind.jsonl", SafetyRow)   # doctest: +SKIP

Splits are files, not flags: ``train``, ``dev`` (thresholds are chosen here) and ``blind`` (written by
someone who saw neither the code nor the training rows; measured, never tuned on). This module does not
train or score anything.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..config import ROOT
from ..errors import ConfigError

DATA_DIR = ROOT / "evals" / "understanding"
SAFETY_DIR = DATA_DIR / "safety"
CODER_DIR = DATA_DIR / "coder"
SAFETY_KINDS = ("crisis", "harassment", "discrimination", "retaliation", "violence", "legal", "personal_legal")
SafetyLabel = Literal["crisis", "harassment", "discrimination", "retaliation", "violence", "legal", "personal_legal",
                      "none"]


class TextRow(BaseModel):
    """A labelled message: non-blank text, an optional source; subclasses add the label."""

    model_config = ConfigDict(extra="forbid")
    text: str
    source: str | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("is empty")
        return v


class SafetyRow(TextRow):
    kind: SafetyLabel


class LabelRow(TextRow):
    """A row of a single-label signal (``audience``, ``grow``); the label is checked against the signal."""

    label: str


class Conversation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    turns: list[str]
    disclosure_turn: int | None
    kind: SafetyLabel


class FirstMessages(BaseModel):
    """A remembered plan and four first messages of the next session (``evals/understanding/followup/``)."""

    model_config = ConfigDict(extra="forbid")
    plan: str
    greeting: str
    report: str
    new_topic: str
    near_topic: str

    @field_validator("plan", "greeting", "report", "new_topic", "near_topic")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("is empty")
        return v


class ThemeRow(BaseModel):
    """An earlier goal and a later message, ``related`` to it, ``near`` (same people, another issue) or
    ``unrelated`` (``evals/understanding/themes/``)."""

    model_config = ConfigDict(extra="forbid")
    goal: str
    text: str
    label: Literal["related", "near", "unrelated"]
    source: str | None = None

    @field_validator("goal", "text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("is empty")
        return v


Row = TypeVar("Row", bound=BaseModel)


def read_rows(path: Path, schema: type[Row]) -> list[Row]:
    """Every row of a JSON-lines file, validated against ``schema``."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such labelled-data file") from None
    rows = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(schema.model_validate(json.loads(line)))
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"]) or "row"
                raise ConfigError(f"{path}:{n}: field {field!r}: {err['msg']}") from None
            raise ConfigError(f"{path}:{n}: not JSON ({exc})") from None
    return rows


def stable_bucket(key: str, buckets: int = 100) -> int:
    """A bucket that depends only on ``key`` (used to split by session, never by utterance)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % buckets


def file_sha(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


FineLabel = Literal["open_question", "closed_question", "permission", "simple_reflection", "complex_reflection",
                    "advice", "information", "affirmation", "other"]


class CoderRow(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str
    fine: FineLabel
    group: str = ""  # session (MIBot) or text: rows of one group never straddle splits
    source: str = ""
    context: str = ""  # the sentence before it in the same turn (MIBot's counsellor turns), else ""
    label: str = ""  # the source's own label where it has one (MIBot: R, Q, MICO, MIIN, Other)


_OWN_FINE = {"simple_reflection": "simple_reflection", "permission_question": "permission"}


def coder_rows(split: str) -> list[CoderRow]:
    """The coder's labelled utterances for ``train``, ``dev`` or a test set (``mibot_test``, ``own_test``,
    ``external``, ``transcribed``). MIBot is split by session (70/15/15), never by utterance; our own set by
    text (70/10/20); the written advice set by text (80/20); ``external`` and ``transcribed`` are only ever
    test sets."""
    own = []
    for raw in (ROOT / "evals" / "utterances.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(raw)
        code, style = row["code"], row.get("style", "")
        fine = _OWN_FINE.get(style, "complex_reflection" if code == "reflection" else code)
        own.append(CoderRow(text=row["text"], fine=fine, group=row["text"], source="own"))
    raw_mibot = read_rows(CODER_DIR / "mibot.jsonl", _MibotRow)
    mibot = [CoderRow(text=r.text, fine=r.fine, group=r.session, source="mibot", label=r.label,
                      context=p.text if p is not None and p.session == r.session and p.turn == r.turn - 1 else "")
             for p, r in zip([None, *raw_mibot[:-1]], raw_mibot, strict=True)]
    written = [CoderRow(text=r.text, fine=r.fine, group=r.text, source="written")
               for r in read_rows(CODER_DIR / "written.jsonl", _WrittenRow)]
    bucket = {"own": (70, 80), "mibot": (70, 85), "written": (80, 100)}

    def part(rows: list[CoderRow], name: str) -> dict[str, list[CoderRow]]:
        lo, hi = bucket[name]
        out: dict[str, list[CoderRow]] = {"train": [], "dev": [], "test": []}
        for r in rows:
            b = stable_bucket(r.group)
            out["train" if b < lo else "dev" if b < hi else "test"].append(r)
        return out

    parts = {name: part(rows, name) for name, rows in (("own", own), ("mibot", mibot), ("written", written))}
    if split in ("train", "dev"):
        return [r for p in parts.values() for r in p[split]]
    if split == "mibot_test":
        return parts["mibot"]["test"]
    if split == "own_test":
        return parts["own"]["test"]
    if split == "external":
        rows = [json.loads(x) for x in (ROOT / "evals" / "utterances_external.jsonl").read_text().splitlines() if x]
        return [CoderRow(text=r["text"], fine="complex_reflection" if r["code"] == "reflection" else r["code"],
                         group=r["text"], source="external") for r in rows]
    if split == "transcribed":
        return [CoderRow(text=r.text, fine=r.fine, group=r.text, source="transcribed")
                for r in read_rows(ROOT / "evals" / "utterances_transcribed.jsonl", _TranscribedRow)]
    raise ValueError(f"unknown coder split {split!r}; known: train, dev, mibot_test, own_test, external, transcribed")


class _MibotRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    label: Literal["R", "Q", "MICO", "MIIN", "Other"]
    fine: FineLabel
    session: str
    turn: int


class _WrittenRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    code: str
    fine: str

    @field_validator("fine", mode="before")
    @classmethod
    def _known(cls, v: str) -> str:
        v = {"autonomy": "other"}.get(v, v)
        if v not in FineLabel.__args__:  # type: ignore[attr-defined]
            raise ValueError(f"unknown fine code {v!r}")
        return v


class _TranscribedRow(_WrittenRow):
    setting: str  # where the practitioner works (alcohol counselling, probation, career coaching...)
