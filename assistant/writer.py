"""The reply writer: the embedded model with a LoRA adapter, fine-tuned to write a reflection and a question.

>>> msgs = prompt_messages("manager", "reality", [], "My best nurse wants to go part-time.")
>>> msgs[-1]["content"].splitlines()[-1]
'Person: My best nurse wants to go part-time.'

The adapter (``evals/models/writer-lora.gguf``) is trained by ``scripts/train_writer.py`` on written
coaching exchanges (``evals/understanding/replies/``): a coachee message, the GROW stage and who is
speaking, the earlier turns, and an excellent coach's reflection and open question. This module holds the
prompt both training and inference use, and the checks a written reply must pass before the chain may use
it; it does not decide when the writer is used (see ``chain``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import DataError

SYSTEM = ("You are a coach. Reply with one sentence that reflects what the person means, then one open "
          "question about what they said. Never give advice.")

class Exchange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person: str = Field(min_length=1)
    coach: str = Field(min_length=1)


class Example(BaseModel):
    """One written coaching exchange the writer is trained on (``evals/understanding/replies/*.jsonl``)."""

    model_config = ConfigDict(extra="forbid")
    audience: Literal["manager", "high-performer"]
    stage: Literal["goal", "reality", "options", "way_forward"]
    previous: list[Exchange] = Field(default_factory=list, max_length=6)
    message: str = Field(min_length=1)
    reflection: str = Field(min_length=3)
    question: str = Field(min_length=3)

    @field_validator("question")
    @classmethod
    def _one_question(cls, v: str) -> str:
        if v.count("?") != 1 or not v.strip().endswith("?"):
            raise ValueError(f"{v!r} must be one question ending with '?'")
        return v.strip()

    @field_validator("reflection")
    @classmethod
    def _statement(cls, v: str) -> str:
        if "?" in v:
            raise ValueError(f"{v!r} must be a statement")
        return v.strip()


def load_examples(folder: Path) -> list[Example]:
    """Every example under ``folder``; a bad line is a DataError naming the file, the line and the field."""
    rows: list[Example] = []
    for path in sorted(folder.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(Example.model_validate(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path.name} line {n}: not JSON ({exc.msg})") from None
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(map(str, err["loc"]))
                raise DataError(f"{path.name} line {n}: {where}: {err['msg']}") from None
    return rows


_AUDIENCE = {"manager": "a manager, about someone they manage",
             "high-performer": "a high performer, about their own work"}
_STAGE = {"goal": "what they want", "reality": "what is going on", "options": "their options",
          "way_forward": "their next step"}


def prompt_messages(audience: str, stage: str, previous: Sequence[dict[str, str]], message: str,
                    ) -> list[dict[str, str]]:
    """The chat messages the writer reads: who is speaking, the stage, up to three earlier exchanges."""
    lines = [f"Speaker: {_AUDIENCE.get(audience, _AUDIENCE['high-performer'])}.",
             f"Stage: {_STAGE.get(stage, _STAGE['reality'])}."]
    for turn in list(previous)[-3:]:
        lines.append(f"Earlier, person: {_clip(turn.get('person', ''), 60)}")
        lines.append(f"Earlier, coach: {_clip(turn.get('coach', ''), 45)}")
    lines.append(f"Person: {_clip(message, 160)}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def target(reflection: str, question: str) -> str:
    return f"{reflection.strip()} {question.strip()}"


def _clip(text: str, words: int) -> str:
    parts = " ".join(str(text).split()).split(" ")
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


_WORD = re.compile(r"[a-z][a-z']+")
_STOP = frozenset("""a an the and or but if so to of in on at for with about from by as is are was were be been
being am i me my mine you your yours he him his she her hers they them their it its we us our this that these
those what which who whom when where how why do does did done have has had not no yes just really very
can could would should will shall may might must there here then than too also into out up down over more most
some any all each every one ever never now still even much many like feel feels felt sounds sound seems
want wants get got make made think know thing things way lot bit""".split())


_FIRST_PERSON = re.compile(r"\b(I|I'm|I've|I'd|I'll|my|me|mine|myself)\b")
# a capitalised word that does not open a sentence: a name, a place, a company
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z][\w'-]*")


def content_words(text: str) -> set[str]:
    """Words that carry what was said: no common words, no contractions ("you're", "that's")."""
    return {w for w in (x.strip("'") for x in _WORD.findall(text.lower().replace("\u2019", "'")))
            if "'" not in w} - _STOP


def split_reply(text: str) -> tuple[str, str] | None:
    """(reflection, question) when the text is one statement followed by one question, else None."""
    text = " ".join(text.split())
    if text.count("?") != 1 or not text.endswith("?"):
        return None
    cut = max(text.rfind(". ", 0, text.index("?")), text.rfind("! ", 0, text.index("?")))
    if cut < 0:
        return None
    reflection, question = text[: cut + 1].strip(), text[cut + 2:].strip()
    if not reflection or not question or "?" in reflection:
        return None
    return reflection, question


def faithful(reflection: str, question: str, said: str, context: str = "") -> list[str]:
    """Why a written reply cannot be used (empty when it can): it must stay with what the person said.

    At most two content words of the reflection may be new (not used by the person or the earlier turns, nor
    sharing their first five letters with one): room to name a feeling, not to invent a fact. The reflection
    speaks to the person, never as them ("I…", "my…"); no name, place or company the person did not write;
    no "why", no part over 30 words; and the question uses at least one of the person's own content words,
    so it could not have been asked of anyone else.
    """
    own = content_words(said) | content_words(context)
    stems = {w[:5] for w in own}
    problems = []
    new = [w for w in content_words(reflection) if w not in own and w[:5] not in stems]
    if len(new) > 2:
        problems.append("reflection adds words the person did not use: " + ", ".join(sorted(new)[:5]))
    if _FIRST_PERSON.search(reflection):
        problems.append("reflection speaks as the person (first person)")
    known = set(re.findall(r"[A-Za-z][\w'-]*", f"{said} {context}"))
    names = [w for w in _NAME.findall(f"{reflection} {question}") if w not in known]
    if names:
        problems.append("names what the person did not: " + ", ".join(names[:3]))
    if question.lower().startswith("why") or len(question.split()) > 30 or len(reflection.split()) > 30:
        problems.append("question starts with why, or a part is over 30 words")
    if not {w[:5] for w in content_words(question)} & {w[:5] for w in content_words(said)}:
        problems.append("question uses none of the person's words")
    return problems


def generate(llama: Any, messages: list[dict[str, str]], max_tokens: int = 72, temperature: float = 0.0) -> str:
    """The writer's reply (llama-cpp-python ``Llama`` with the adapter loaded): greedy, or sampled with a fixed
    seed, so a turn gives the same reply every time."""
    out = llama.create_chat_completion(messages=messages, temperature=temperature, max_tokens=max_tokens,
                                       repeat_penalty=1.1, stop=["<|im_end|>", "\n"], seed=7)
    return str(out["choices"][0]["message"]["content"]).strip()


# the greedy reply, then one sampled one when it fails a check
TRIES = (0.0, 0.7)
ADAPTER = Path(__file__).resolve().parents[1] / "evals" / "models" / "writer-lora.gguf"


def write(llama: Any, audience: str, stage: str, previous: Sequence[dict[str, str]], message: str,
          asked: Sequence[str] = (), reflected: Sequence[str] = ()) -> tuple[str | None, list[str]]:
    """The writer's reply when it passes every check, else None and why not.

    Checks: one statement then one question; faithful to the person's words (``faithful``); the guard's rules
    (one open question, last, no advice, no garbled sentence); the right audience; nothing said before. The
    greedy reply is tried first, then one sampled reply (``TRIES``)."""

    messages = prompt_messages(audience, stage, previous, message)
    context = " ".join(t.get("person", "") for t in previous)
    seen = {_norm(q) for q in asked} | {_norm(r) for r in reflected}
    problems: list[str] = []
    for temperature in TRIES:
        text = generate(llama, messages, temperature=temperature)
        found = _problems(text, message, context, audience, seen)
        if not found:
            return text, problems
        problems += found
    return None, problems


def _problems(text: str, message: str, context: str, audience: str, seen: set[str]) -> list[str]:
    from .guard import check_reply
    from .quality import audience_mismatch

    parts = split_reply(text)
    if parts is None:
        return [f"not a reflection and a question: {text!r}"]
    reflection, question = parts
    problems = faithful(reflection, question, message, context)
    problems += check_reply(text)
    if audience_mismatch(text, audience):
        problems.append("audience")
    if _norm(question) in seen or _norm(reflection) in seen:
        problems.append("said before")
    return problems


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))
