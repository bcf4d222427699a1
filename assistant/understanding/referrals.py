"""Referral replies: what a person gets instead of coaching when they disclose something serious.

>>> text = referral("crisis")
>>> "988" in text and "coaching" in text
True

Where a referral points (crisis line, EAP, HR, ethics line, lawyer) is data an organisation configures:
``prompts/resources.yaml`` holds sensible defaults and ``COACH_RESOURCES`` names the organisation's own
file (any field it leaves out keeps the default). This module decides nothing about *whether* to refer;
``safety.py`` does.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError
from ..prompts import PROMPTS_DIR, load_data, read_mapping
from .data import SAFETY_KINDS


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")
    crisis_line: str
    emergency: str
    eap: str
    hr: str
    ethics_line: str
    security: str
    legal_aid: str
    personal_lawyer: str


# the first place each kind points to, named again when a person discloses a second time
_MAIN_CONTACT = {"crisis": "crisis_line", "harassment": "hr", "discrimination": "hr", "retaliation": "ethics_line",
                 "violence": "security", "legal": "ethics_line", "personal_legal": "personal_lawyer"}


@functools.lru_cache(maxsize=4)
def load_resources(path: str | Path | None = None) -> Resources:
    """The defaults, overlaid with the organisation's file when one is given."""
    data = read_mapping(PROMPTS_DIR / "resources.yaml")
    source = PROMPTS_DIR / "resources.yaml"
    if path:
        source = Path(path)
        if not source.exists():
            raise ConfigError(f"COACH_RESOURCES: no such file {source}")
        data = {**data, **read_mapping(source)}
    try:
        return Resources.model_validate({k: " ".join(str(v).split()) for k, v in data.items()})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"{source}: field {'.'.join(map(str, err['loc']))!r}: {err['msg']}") from None


@functools.lru_cache(maxsize=1)
def _templates() -> dict[str, str]:
    data = load_data("safety")
    for key in (*SAFETY_KINDS, "again", "resume", "reminder", "crisis_check"):
        if not isinstance(data.get(key), str):
            raise ConfigError(f"{PROMPTS_DIR / 'safety.yaml'}: missing text for {key!r}")
    return {k: " ".join(str(v).split()) for k, v in data.items()}


def _fill(template: str, resources: Resources, **extra: str) -> str:
    values = {**resources.model_dump(), **extra}
    text = template.format(**values)
    # a resource can open a sentence ("{eap} can support you"): every sentence starts with a capital
    return re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def referral(kind: str, resources_path: str | Path | None = None, again: bool = False, firm: bool = True) -> str:
    """The referral reply for a safety kind; ``again`` for a second disclosure in one conversation; a first
    crisis reading that is not ``firm`` (only the lower crisis bar routed it) gets the check-in wording."""
    if kind not in SAFETY_KINDS:
        raise ValueError(f"unknown safety kind {kind!r}; known: {', '.join(SAFETY_KINDS)}")
    resources = load_resources(resources_path)
    if again:
        contact = getattr(resources, _MAIN_CONTACT[kind])
        text = _fill(_templates()["again"], resources, contact=contact)
        if kind == "crisis":  # never drop the emergency number for a crisis
            text += f" If you are in immediate danger, call {resources.emergency}."
        return text
    if kind == "crisis" and not firm:
        return _fill(_templates()["crisis_check"], resources)
    return _fill(_templates()[kind], resources)


def resume_line() -> str:
    """The opening of the first coaching reply after a referral."""
    return _templates()["resume"]


def reminder_opening() -> str:
    """The reminder's words before its first resource, the same whatever the organisation configured."""
    return _templates()["reminder"].split("{")[0].strip()


def reminder_line(kind: str, resources_path: str | Path | None = None) -> str:
    """The sentence that opens a coaching reply given after a referral of ``kind`` to a message read as
    borderline: the main contact for that kind, named again."""
    resources = load_resources(resources_path)
    return _fill(_templates()["reminder"], resources, contact=getattr(resources, _MAIN_CONTACT[kind]))
