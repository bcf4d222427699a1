"""Prompt templates as YAML files under ``prompts/``, validated on load.

>>> t = load_prompt("coach")
>>> sorted(t.variables)[:2]
['candidates', 'context']

A template declares its variables; a variable used but not declared (or declared but unused) is a
DataError naming the file. This module does not call models.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import ROOT
from .errors import DataError

PROMPTS_DIR = ROOT / "prompts"
_VAR = re.compile(r"(?<!\{)\{([a-z_]+)\}(?!\})")


class PromptTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str
    variables: list[str]
    system: str = Field(min_length=10)
    user: str = Field(min_length=3)
    token_budget: int = Field(900, gt=50)

    def used(self) -> set[str]:
        return set(_VAR.findall(self.system)) | set(_VAR.findall(self.user))

    def render(self, **values: str) -> tuple[str, str]:
        missing = set(self.variables) - set(values)
        if missing:
            raise DataError(f"prompts/{self.name}.yaml: missing value for {', '.join(sorted(missing))}")
        return self.system.format(**values), self.user.format(**values)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """A data file's YAML (safe loader); a missing or malformed file is a DataError naming it."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - a safe loader
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None


def read_mapping(path: Path) -> dict:
    """A data file whose YAML must be a mapping; anything else is a DataError naming it."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: must be a mapping")
    return data


def parse_prompt(path: Path) -> PromptTemplate:
    data = read_mapping(path)
    try:
        tpl = PromptTemplate(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise DataError(f"{path}: field {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    used, declared = tpl.used(), set(tpl.variables)
    if used - declared:
        raise DataError(f"{path}: field variables: {', '.join(sorted(used - declared))} used but not declared")
    if declared - used:
        raise DataError(f"{path}: field variables: {', '.join(sorted(declared - used))} declared but not used")
    return tpl


@functools.lru_cache(maxsize=32)
def load_prompt(name: str, folder: Path = PROMPTS_DIR) -> PromptTemplate:
    return parse_prompt(folder / f"{name}.yaml")


@functools.lru_cache(maxsize=32)
def load_data(name: str, folder: Path = PROMPTS_DIR) -> dict:
    """A plain YAML data file from ``prompts/`` (referrals, angles, injection patterns)."""
    return read_mapping(folder / f"{name}.yaml")


_ANGLE_LISTS = ("low_effort", "before_plan", "weighing", "closing_questions")


def load_angles(folder: Path = PROMPTS_DIR) -> dict:
    """``prompts/angles.yaml``, checked: every question list the chain reads is a non-empty list of single
    open questions, and every ``closing_by_plan`` entry has a valid pattern and a question."""
    path = folder / "angles.yaml"
    data = load_data("angles", folder)
    lists = {key: data.get(key) for key in _ANGLE_LISTS}
    lists["not_yet.questions"] = (data.get("not_yet") or {}).get("questions")
    lists.update({f"stage_questions.{k}": v for k, v in (data.get("stage_questions") or {}).items()})
    for key, items in lists.items():
        if not isinstance(items, list) or not items:
            raise DataError(f"{path}: field {key}: must be a non-empty list of questions")
        for i, q in enumerate(items):
            if not isinstance(q, str) or not q.endswith("?") or q.count("?") != 1:
                raise DataError(f"{path}: field {key}.{i}: must be one question ending with '?'")
    quote = (data.get("reflections") or {}).get("closing_quote")
    if quote is not None and (not isinstance(quote, str) or quote.count("{plan}") != 1):
        raise DataError(f"{path}: field reflections.closing_quote: must hold '{{plan}}' once")
    asked = data.get("quoted_question")
    if asked is not None and (not isinstance(asked, str) or asked.count("{phrase}") != 1 or not asked.endswith("?")):
        raise DataError(f"{path}: field quoted_question: must be one question holding '{{phrase}}' once")
    for kind, question in (data.get("asked_questions") or {}).items():
        if kind not in ("how", "should") or not isinstance(question, str) or question.count("{action}") != 1 \
                or not question.endswith("?") or question.count("?") != 1:
            raise DataError(f"{path}: field asked_questions.{kind}: must be 'how' or 'should', one question "
                            "holding '{action}' once")
    for field, needs in (("asked_reflections", 1), ("asked_followups", 0)):
        for kind, said in (data.get(field) or {}).items():
            end = "." if field == "asked_reflections" else "?"
            if kind not in ("how", "should") or not isinstance(said, str) or said.count("{action}") != needs \
                    or not said.endswith(end) or said.count("?") != (end == "?"):
                raise DataError(f"{path}: field {field}.{kind}: must be 'how' or 'should', one sentence ending "
                                f"'{end}'" + (" holding '{action}' once" if needs else " without '{action}'"))
    slots = {"wants": {"action"}, "resists": {"action"}, "must": {"action"}, "fond": {"verb", "thing"},
             "other_side": {"who", "verb", "whom"}, "their_wish": {"who", "hope", "thing", "whom"}}
    for field in ("clause_questions", "clause_followups"):
        for kind, questions in (data.get(field) or {}).items():
            if kind not in slots or not isinstance(questions, list) or not questions:
                raise DataError(f"{path}: field {field}.{kind}: must be one of {', '.join(slots)}, "
                                "holding a non-empty list of questions")
            for i, question in enumerate(questions):
                named = set(re.findall(r"{(\w+)}", question)) if isinstance(question, str) else None
                if (named is None or field == "clause_questions" and not named or not named <= slots[kind]
                        or not question.endswith("?") or question.count("?") != 1):
                    raise DataError(f"{path}: field {field}.{kind}.{i}: must be one question using only "
                                    f"{', '.join('{' + s + '}' for s in sorted(slots[kind]))}")
    if set(data.get("clause_followups") or {}) != set(data.get("clause_questions") or {}):
        raise DataError(f"{path}: field clause_followups: must name the same kinds as clause_questions")
    for i, entry in enumerate(data.get("closing_by_plan") or []):
        try:
            re.compile(entry["when"])
        except (KeyError, TypeError, re.error) as exc:
            raise DataError(f"{path}: field closing_by_plan.{i}.when: {exc}") from None
        if not str(entry.get("question", "")).endswith("?"):
            raise DataError(f"{path}: field closing_by_plan.{i}.question: must be one question ending with '?'")
    return data
