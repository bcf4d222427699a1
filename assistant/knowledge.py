"""The handbook: Markdown pages with YAML front matter, the question bank, and heading-aware chunks.

>>> from assistant.config import ROOT
>>> pages = load_pages(ROOT / "knowledge")
>>> all(p.topics for p in pages)
True

Everything is validated on load; a bad file raises DataError naming the file and the field. This module
does not embed or search; see ``retrieval``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import DataError
from .prompts import read_yaml

TOPICS = (
    "autonomy-guidance", "motivation", "recognition", "stay-interview", "growth-dialogue", "gamification",
    "coaching", "coaching-models", "coaching-questions", "partnership", "career-paths", "retention",
    "case-study",
)
STAGES = ("goal", "reality", "options", "way_forward")
Topic = Literal[
    "autonomy-guidance", "motivation", "recognition", "stay-interview", "growth-dialogue", "gamification",
    "coaching", "coaching-models", "coaching-questions", "partnership", "career-paths", "retention",
    "case-study",
]
Audience = Literal["manager", "high-performer", "both"]
Stage = Literal["goal", "reality", "options", "way_forward"]
QUESTION_BANK = "question_bank.yaml"
CHUNK_TOKENS = 350  # per chunk, tiktoken cl100k; a section longer than this is split by paragraph
CHUNKER_VERSION = "4"  # bump when chunking or what is stored per chunk changes: every page is re-embedded


class PageMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=3)
    topics: list[Topic] = Field(min_length=1)
    audience: Audience


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^q\d{3,}$")
    text: str = Field(min_length=8)
    stage: Stage
    topics: list[Topic] = Field(min_length=1)
    audience: Audience
    # a question that asks what brought the person here ("What is happening right now that made you want to
    # talk about this?"): asked only as a session's first question; later, the person has already said
    opening: bool = False

    @field_validator("text")
    @classmethod
    def _one_question(cls, v: str) -> str:
        v = v.strip()
        if not v.endswith("?") or v.count("?") != 1:
            raise ValueError("must be exactly one question ending in '?'")
        return v


@dataclass
class Page:
    path: Path
    source: str  # "knowledge/<name>.md", as shown in citations
    title: str
    topics: list[str]
    audience: str
    body: str
    digest: str

    @property
    def words(self) -> int:
        return len(self.body.split())


@dataclass
class Chunk:
    id: str
    text: str
    source: str
    title: str
    topics: list[str]
    audience: str
    heading: str
    kind: str = "page"  # page | question
    stage: str | None = None
    digest: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _format_error(path: Path, exc: ValidationError) -> DataError:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(file)"
    return DataError(f"{path}: field {where}: {err['msg']}")


_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.S)


def parse_page(path: Path, root: Path | None = None) -> Page:
    """Parse one Markdown page; raises DataError naming the file and field."""
    raw = path.read_text(encoding="utf-8")
    match = _FRONT.match(raw)
    if not match:
        raise DataError(f"{path}: missing YAML front matter between '---' lines")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: front matter is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: front matter must be a mapping")
    try:
        valid = PageMeta(**meta)
    except ValidationError as exc:
        raise _format_error(path, exc) from None
    body = match.group(2).strip()
    if not body:
        raise DataError(f"{path}: page has no body")
    source = f"knowledge/{path.name}" if root is None else f"{root.name}/{path.relative_to(root)}"
    digest = hashlib.sha256((CHUNKER_VERSION + raw).encode()).hexdigest()[:16]
    return Page(path, source, valid.title, list(valid.topics), valid.audience, body, digest)


def load_pages(folder: Path) -> list[Page]:
    """Every ``*.md`` page under ``folder`` (README.md excepted), sorted by path."""
    return [parse_page(p, folder) for p in sorted(Path(folder).glob("*.md")) if p.name.lower() != "readme.md"]


def load_questions(folder: Path) -> list[Question]:
    """The question bank (``question_bank.yaml``), validated; ids and texts are unique."""
    path = Path(folder) / QUESTION_BANK
    if not path.exists():
        return []
    items = read_yaml(path) or []
    if not isinstance(items, list):
        raise DataError(f"{path}: must be a list of questions")
    out: list[Question] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        try:
            q = Question(**item)
        except (ValidationError, TypeError) as exc:
            if isinstance(exc, ValidationError):
                err = exc.errors()[0]
                raise DataError(f"{path}: item {i} field {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
            raise DataError(f"{path}: item {i} is not a mapping") from None
        key = q.text.lower()
        if q.id in seen or key in seen:
            raise DataError(f"{path}: item {i} ({q.id}) repeats an id or a question")
        seen.update({q.id, key})
        out.append(q)
    return out


def _sections(body: str) -> list[tuple[str, str]]:
    """Split a page body at ##/### headings into (heading path, text)."""
    parts: list[tuple[str, str]] = []
    heading, h2, lines = "Introduction", "", []
    for line in body.splitlines():
        m = re.match(r"^(#{2,3})\s+(.*\S)\s*$", line)
        if m:
            if "".join(lines).strip():
                parts.append((heading, "\n".join(lines).strip()))
            lines = []
            if len(m.group(1)) == 2:
                h2 = m.group(2)
                heading = h2
            else:
                heading = f"{h2} / {m.group(2)}" if h2 else m.group(2)
        elif not line.startswith("# "):
            lines.append(line)
    if "".join(lines).strip():
        parts.append((heading, "\n".join(lines).strip()))
    return parts


def _split(text: str, budget: int, count) -> list[str]:
    if count(text) <= budget:
        return [text]
    pieces, current = [], ""
    for para in re.split(r"\n\s*\n", text):
        candidate = f"{current}\n\n{para}".strip()
        if current and count(candidate) > budget:
            pieces.append(current)
            current = para
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "section"


def chunk_page(page: Page, budget: int = CHUNK_TOKENS) -> list[Chunk]:
    """Heading-aware chunks; each starts with the page title and its heading so it reads on its own."""
    from .llm import count_tiktoken

    chunks: list[Chunk] = []
    sections = _sections(page.body)
    # what the page is about, embedded with every chunk (contextual retrieval) but not shown
    gist = " ".join(sections[0][1].split()[:40]) if sections else ""
    for heading, text in sections:
        for n, piece in enumerate(_split(text, budget, count_tiktoken)):
            cid = f"{page.source}#{_slug(heading)}" + (f"-{n}" if n else "")
            chunks.append(Chunk(cid, f"{page.title} — {heading}\n\n{piece}", page.source, page.title,
                                page.topics, page.audience, heading, digest=page.digest,
                                extra={"context": gist}))
    return chunks


def chunk_questions(questions: list[Question], folder_name: str = "knowledge") -> list[Chunk]:
    source = f"{folder_name}/{QUESTION_BANK}"
    return [Chunk(f"{source}#{q.id}", q.text, source, "Question bank", list(q.topics), q.audience,
                  q.stage, kind="question", stage=q.stage,
                  digest=hashlib.sha256(q.model_dump_json().encode()).hexdigest()[:16]) for q in questions]
