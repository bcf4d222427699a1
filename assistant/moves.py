"""Coaching moves: situations people bring, each with reflections and questions per GROW stage and audience.

>>> lib = MoveLibrary.load()                                        # doctest: +SKIP
>>> m = lib.match("My lead presented my analysis as his own", "high-performer")  # doctest: +SKIP
>>> m.situation.id, m.confident                                     # doctest: +SKIP
('rec-credit-taken', True)

A situation lives in ``prompts/moves/<page>.yaml``: the handbook page and section it draws on (cited with
every question it gives), 6-8 things a person in it might say (matched by meaning with the shared MiniLM
embedding), complex reflections true of every one of those, and open questions for each GROW stage.
Everything is validated on load; an error names the file and the field. The plain reflections used when
no situation matches confidently are in ``prompts/reflections.yaml``. This module does not generate text
with a model and does not store anything but an embedding cache.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .config import ROOT
from .errors import DataError
from .knowledge import STAGES, _sections, parse_page
from .prompts import PROMPTS_DIR, read_mapping

MOVES_DIR = PROMPTS_DIR / "moves"
# example and question vectors, keyed by a digest of the library: shared by every data folder and process
MOVES_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hp-coach"
KNOWLEDGE_DIR = ROOT / "knowledge"
# a message this close (cosine, MiniLM) to one of a situation's examples is that situation; chosen on the
# leave-one-out and dev figures in docs/quality.md (`coach quality moves`)
CONFIDENT = 0.60
REFLECT = 0.60  # a library reflection this close (cosine) to the message, from one of the three closest situations, is used
# a library question is used only when its situation's closeness plus its own closeness to the message
# reaches this (else a bank question for the stage): on the dev openers, read by hand, 0.90 kept about
# half the library questions and cut the off-topic ones from 18 of 50 to 3 of 22
QUESTION_FLOOR = 0.90
# and only when its own situation is this close (cosine, best of the message and the session's opening) to what
# was said. Chosen on the blind readers' scores of library questions (`scripts/library_by_readers.py`: 544
# readings in the scored runs of `evals/blind`-`blind12`): below 0.55 a library question scored a mean of 0.76
# with 47 % zeros (it took a neighbouring situation's premise for granted: "your new role", "the role they
# turned down"), at or above it 1.30 with 23 %; the questions used instead (bank, the person's quoted words, a
# named feeling) scored 0.88 with 22 % zeros over all those runs, 1.10 with 9 % in the 2026-12-03 runs
SITUATION_FLOOR = 0.55
# a bank question tied to a topic (retention, stepping in, recognition...) is offered only when it is this close
# (cosine) to the message; questions tagged only `coaching` / `coaching-models` fit any message. Chosen on the
# blind readers' scores of bank questions (`blind3`-`blind7`, docs/quality.md): below 0.30 a topic question
# was scored 0 (irrelevant) 120 times in 431 and 2 only 47 times, against 7 zeros in 165 for the general ones.
BANK_FLOOR = 0.30
GENERAL_TOPICS = frozenset({"coaching", "coaching-models"})
_OPEN = re.compile(r"^(what|how|which|who|when|where|if|in what|on a scale|looking|thinking|imagine|suppose|"
                   r"say|picture|as you|of|from|given|when you|whose|to what)\b", re.I)


class Questions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    goal: list[str] = Field(min_length=1)
    reality: list[str] = Field(min_length=1)
    options: list[str] = Field(min_length=1)
    way_forward: list[str] = Field(min_length=1)

    @field_validator("goal", "reality", "options", "way_forward")
    @classmethod
    def _open(cls, v: list[str]) -> list[str]:
        for q in v:
            q = q.strip()
            if not q.endswith("?") or q.count("?") != 1:
                raise ValueError(f"{q!r} must be one question ending with '?'")
            if q.lower().startswith("why"):
                raise ValueError(f"{q!r} starts with 'why'")
            if not (_OPEN.match(q) or _OPEN.match(q.split(", ", 1)[-1])):
                raise ValueError(f"{q!r} is not an open question (What/How/Which/Who/When/Where/If...)")
        return [q.strip() for q in v]


class Situation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)+$")
    audience: Literal["manager", "high-performer", "both"]
    section: str = Field(min_length=3)
    says: list[str] = Field(min_length=3)
    reflections: list[str] = Field(min_length=1)
    questions: Questions
    page: str = ""  # set from the file: knowledge/<page>.md
    title: str = ""  # the page's title

    @field_validator("reflections")
    @classmethod
    def _statements(cls, v: list[str]) -> list[str]:
        for r in v:
            if "?" in r or not r.strip().endswith("."):
                raise ValueError(f"{r!r} must be one statement ending with '.'")
            if re.search(r"\b(you should|you need to|you must|try to|make sure)\b", r, re.I):
                raise ValueError(f"{r!r} gives advice")
        return [r.strip() for r in v]

    def stage_questions(self, stage: str) -> list[str]:
        return list(getattr(self.questions, stage))

    def citation(self) -> dict[str, object]:
        return {"source": self.page, "title": self.title, "topics": [], "heading": self.section,
                "situation": self.id}


class MovesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: str = Field(pattern=r"^[a-z0-9-]+\.md$")
    situations: list[Situation] = Field(min_length=1)


def _error(path: Path, exc: ValidationError, data: dict) -> DataError:
    err = exc.errors()[0]
    loc = list(err["loc"])
    where = ".".join(map(str, loc))
    if len(loc) >= 2 and loc[0] == "situations" and isinstance(loc[1], int):
        try:
            where = f"situation {data['situations'][loc[1]].get('id', loc[1])}: " + ".".join(map(str, loc[2:]))
        except (IndexError, AttributeError, KeyError):
            pass
    return DataError(f"{path}: field {where}: {err['msg']}")


def parse_moves(path: Path, knowledge: Path = KNOWLEDGE_DIR) -> list[Situation]:
    """One moves file, validated against the schema and against its handbook page's headings."""
    data = read_mapping(path)
    try:
        parsed = MovesFile(**data)
    except ValidationError as exc:
        raise _error(path, exc, data) from None
    page_path = knowledge / parsed.page
    if not page_path.exists():
        raise DataError(f"{path}: field page: {parsed.page} is not a handbook page in {knowledge.name}/")
    page = parse_page(page_path, knowledge.parent)
    headings = {h for h, _ in _sections(page.body)} | {h.split(" / ")[-1] for h, _ in _sections(page.body)}
    for s in parsed.situations:
        if s.section not in headings:
            raise DataError(f"{path}: situation {s.id}: field section: {s.section!r} is not a heading of {parsed.page}")
        s.page, s.title = f"knowledge/{parsed.page}", page.title
        if s.audience == "high-performer":
            for q in [*s.reflections, *(q for st in STAGES for q in s.stage_questions(st))]:
                if re.search(r"\byour (report|reports|direct report|team member|employee)s?\b", q, re.I):
                    raise DataError(f"{path}: situation {s.id}: {q!r} speaks of 'your report' to a high performer")
    return parsed.situations


def load_moves(folder: Path = MOVES_DIR, knowledge: Path = KNOWLEDGE_DIR) -> list[Situation]:
    """Every moves file; ids and questions must be unique across the library."""
    out: list[Situation] = []
    ids: dict[str, Path] = {}
    asked: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")):
        for s in parse_moves(path, knowledge):
            if s.id in ids:
                raise DataError(f"{path}: situation {s.id}: id already used in {ids[s.id].name}")
            ids[s.id] = path
            for st in STAGES:
                for q in s.stage_questions(st):
                    key = q.lower()
                    if key in asked:
                        raise DataError(f"{path}: situation {s.id}: question {q!r} repeats one in {asked[key]}")
                    asked[key] = s.id
            out.append(s)
    if not out:
        raise DataError(f"{folder}: no moves files")
    return out


@dataclass
class Match:
    situation: Situation
    score: float  # cosine with the closest of its examples
    confident: bool


def _digest(situations: list[Situation]) -> str:
    h = hashlib.sha256()
    for s in situations:
        h.update(s.id.encode())
        for t in s.says:
            h.update(t.encode())
    return h.hexdigest()[:16]


_VECTORS: dict[str, dict[str, np.ndarray]] = {}  # by library digest: embedded once per process


@dataclass
class Move:
    """A question (or reflection) from the library with what it draws on."""

    text: str
    situation: Situation
    stage: str  # a GROW stage, or "reflection"


class MoveLibrary:
    """Situations, their questions and reflections, and vectors of all three (cached on disk)."""

    def __init__(self, situations: list[Situation], vectors: dict[str, np.ndarray]) -> None:
        self.situations = situations
        self.owner = np.asarray([i for i, s in enumerate(situations) for _ in s.says])
        self.vectors = vectors["says"]
        self.moves = [Move(q, s, st) for s in situations for st in STAGES for q in s.stage_questions(st)]
        self.moves += [Move(r, s, "reflection") for s in situations for r in s.reflections]
        self.move_vectors = vectors["moves"]
        self._qvec: dict[str, np.ndarray] = {m.text: v for m, v in zip(self.moves, self.move_vectors, strict=True)}

    @classmethod
    def load(cls, folder: Path = MOVES_DIR, cache: Path | None = None) -> MoveLibrary:
        from .understanding.encoder import embed

        situations = load_moves(folder)
        says = [t for s in situations for t in s.says]
        moves = [q for s in situations for st in STAGES for q in s.stage_questions(st)] + \
            [r for s in situations for r in s.reflections]
        digest = _digest(situations)
        path = (cache / f"moves-{digest}.npz") if cache else None
        vectors = _VECTORS.get(digest)
        if vectors is None and path and path.exists():
            with np.load(path) as stored:
                vectors = {k: stored[k] for k in ("says", "moves")}
        if vectors is None or len(vectors["says"]) != len(says) or len(vectors["moves"]) != len(moves):
            vectors = {"says": embed(says), "moves": embed(moves)}
        _VECTORS[digest] = vectors
        if path and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.npz")  # several processes may write it at once
            np.savez(tmp, **vectors)
            tmp.replace(path)
        return cls(situations, vectors)

    def question_vectors(self, questions: list[str]) -> np.ndarray:
        """Vectors of questions or reflections (the library's are stored; others embedded once)."""
        from .understanding.encoder import embed

        missing = [q for q in questions if q not in self._qvec]
        if missing:
            for q, v in zip(missing, embed(missing), strict=True):
                self._qvec[q] = v
        return np.vstack([self._qvec[q] for q in questions])

    def by_id(self, sid: str | None) -> Situation | None:
        return next((s for s in self.situations if s.id == sid), None)

    def scores(self, vector: np.ndarray, audience: str | None = None) -> list[tuple[Situation, float]]:
        """Each situation's best cosine with the message, best first; situations for the other audience
        are left out when ``audience`` is known."""
        sims = self.vectors @ np.asarray(vector, dtype=np.float64).ravel()
        best: dict[int, float] = {}
        for i, s in zip(self.owner.tolist(), sims.tolist(), strict=True):
            if s > best.get(i, -1.0):
                best[i] = s
        out = [(self.situations[i], v) for i, v in best.items()
               if audience is None or self.situations[i].audience in (audience, "both")]
        return sorted(out, key=lambda p: -p[1])

    def match(self, vector: np.ndarray, audience: str | None = None) -> Match | None:
        ranked = self.scores(vector, audience)
        if not ranked:
            return None
        s, v = ranked[0]
        return Match(s, v, v >= CONFIDENT)

    def rank(self, vectors: list[tuple[np.ndarray, float]], stage: str, audience: str | None,
             exclude: set[str] = frozenset(), situations: int = 4, prior: bool = True,
             situation_from: list[np.ndarray] = (), min_close: float = -1.0) -> list[tuple[Move, float]]:
        """Library moves of one stage (or "reflection") for this audience, from the ``situations`` closest
        situations, ranked by the move's cosine with the given vectors (the message, and with less weight
        the previous one) plus its situation's closeness to the message. ``situation_from``: more messages
        (the session's opening) whose closest situations count too; a situation's closeness is its best.
        ``min_close``: situations less close than this are left out."""
        close: dict[str, float] = {}
        for vec in [vectors[0][0], *situation_from]:
            for s, v in self.scores(vec, audience)[:situations]:
                close[s.id] = max(v, close.get(s.id, -1.0))
        near = {k: v for k, v in sorted(close.items(), key=lambda p: -p[1])[:situations] if v >= min_close}
        keep = [i for i, m in enumerate(self.moves) if m.stage == stage and m.text not in exclude
                and m.situation.id in near]
        if not keep:
            return []
        score = np.asarray([near[self.moves[i].situation.id] if prior else 0.0 for i in keep])
        for vec, weight in vectors:
            score += weight * (self.move_vectors[keep] @ np.asarray(vec, dtype=np.float64).ravel())
        order = np.argsort(-score)
        return [(self.moves[keep[i]], float(score[i])) for i in order]


@functools.lru_cache(maxsize=4)
def plain_reflections(path: Path = PROMPTS_DIR / "reflections.yaml") -> dict:
    """The short, plain reflections used when no situation matches confidently (validated on load)."""
    data = read_mapping(path)
    for key in ("feelings", "aims", "about"):
        if not isinstance(data.get(key), dict) or not data[key]:
            raise DataError(f"{path}: field {key}: must be a non-empty mapping")
    for i, p in enumerate(data.get("presupposed", [])):
        pair = [p] if isinstance(p, str) else [p.get("question"), p.get("said")] if isinstance(p, dict) else [None]
        try:
            for pattern in pair:
                re.compile(pattern)  # type: ignore[arg-type]
        except (re.error, TypeError) as exc:
            raise DataError(f"{path}: field presupposed.{i}: {exc} (a pattern, or `question` and `said` patterns)"
                            ) from None
    for i, t in enumerate(data.get("topics", [])):
        if not isinstance(t, dict) or not isinstance(t.get("pattern"), str) or not isinstance(t.get("phrase"), str):
            raise DataError(f"{path}: field topics.{i}: needs a pattern and a phrase")
        try:
            re.compile(t["pattern"])
        except re.error as exc:
            raise DataError(f"{path}: field topics.{i}.pattern: {exc}") from None
    for i, c in enumerate(data.get("contradicted", [])):
        try:
            if not isinstance(c, dict):
                raise TypeError("needs `question` and `said` patterns")
            re.compile(c["question"])
            re.compile(c["said"])
        except (re.error, TypeError, KeyError) as exc:
            raise DataError(f"{path}: field contradicted.{i}: {exc}") from None
    for aim, text in data["about"].items():
        if not isinstance(text, str) or "{topic}" not in text or not text.endswith("."):
            raise DataError(f"{path}: field about.{aim}: a statement ending with '.' that contains {{topic}}")
    for word, text in data["feelings"].items():
        if not isinstance(text, str) or not text.endswith(".") or "?" in text:
            raise DataError(f"{path}: field feelings.{word}: must be one statement ending with '.'")
    for aim, texts in data["aims"].items():
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t.endswith(".") for t in texts):
            raise DataError(f"{path}: field aims.{aim}: must be a list of statements ending with '.'")
    for question, other in (data.get("said_already") or {}).items():
        where = f"{path}: field said_already.{question}"
        if question not in (data.get("feeling_questions") or {}):
            raise DataError(f"{where}: not a question of `feeling_questions`")
        if not isinstance(other, dict) or not isinstance(other.get("after"), str):
            raise DataError(f"{where}: needs `after` (a regular expression) and `ask` (a question)")
        try:
            re.compile(other["after"])
        except re.error as exc:
            raise DataError(f"{where}.after: {exc}") from None
        ask = other.get("ask")
        if not isinstance(ask, str) or not ask.endswith("?") or ask.count("?") != 1:
            raise DataError(f"{where}.ask: must be one question ending with '?'")
    for question, words in (data.get("feeling_questions") or {}).items():
        if not isinstance(question, str) or not question.endswith("?") or question.count("?") != 1:
            raise DataError(f"{path}: field feeling_questions.{question}: must be one question ending with '?'")
        unknown = [w for w in words or [] if w not in data["feelings"]] if isinstance(words, list) else [words]
        if not words or unknown:
            raise DataError(f"{path}: field feeling_questions.{question}: needs words of `feelings` (not {unknown})")
    return data


@functools.lru_cache(maxsize=4)
def _presupposed(path: Path) -> list[tuple[re.Pattern[str], re.Pattern[str]]]:
    """(what a question takes for granted, what the person must have said for it) pairs: a topic's own
    pattern for both, or a `question` / `said` pair ("your report" needs someone of theirs mentioned)."""
    data = plain_reflections(path)
    pats: list[Any] = [t["pattern"] for t in data.get("topics", []) if not t.get("general")]
    pats += list(data.get("presupposed", []))
    pairs = [(p, p) if isinstance(p, str) else (p["question"], p["said"]) for p in pats]
    return [(re.compile(rf"\b(?:{q})", re.I), re.compile(rf"\b(?:{s})", re.I)) for q, s in pairs]


@functools.lru_cache(maxsize=4)
def _contradicted(path: Path) -> list[tuple[re.Pattern[str], re.Pattern[str]]]:
    data = plain_reflections(path)
    return [(re.compile(rf"\b(?:{c['question']})", re.I), re.compile(rf"\b(?:{c['said']})", re.I))
            for c in data.get("contradicted", [])]


def presupposes_unsaid(question: str, said: str, path: Path = PROMPTS_DIR / "reflections.yaml") -> bool:
    """True when the question takes for granted something (a stay interview, pay, a leaderboard, a report)
    the person has not mentioned in ``said`` (everything they wrote this session), or something they said
    is not so (``contradicted``: a report's future after they said the report resigned)."""
    return (any(q.search(question) and not s.search(said) for q, s in _presupposed(path))
            or any(q.search(question) and s.search(said) for q, s in _contradicted(path)))


def topic_reflection(text: str, aim: str | None, path: Path = PROMPTS_DIR / "reflections.yaml") -> str | None:
    """A plain reflection naming what the message is about ("So the promotion is very much on your mind.")."""
    data = plain_reflections(path)
    low = text.lower()
    template = data.get("about", {}).get(aim or "reality")
    if not template:
        return None
    found = [(m.start(), t["phrase"]) for t in data.get("topics", []) for m in [re.search(t["pattern"], low)] if m]
    return template.format(topic=min(found)[1]) if found else None


_FIRST_PERSON = re.compile(r"\b(i|i'm|im|i've|ive|me|my|myself)\b", re.I)
_NEGATION = re.compile(r"\b(not|never|no|isn't|aren't|wasn't|don't|doesn't|didn't|hardly|n't)\b", re.I)


def _named_feeling(text: str, feelings: dict[str, str]) -> str | None:
    """The feeling word the person used about themselves (the longest at the first place), unless negated just
    before; a feeling of someone else ("the team feels overlooked") is not theirs."""
    found = _feeling_at(text, feelings)
    return found[0] if found else None


def _feeling_at(text: str, feelings: dict[str, str]) -> tuple[str, int] | None:
    """``_named_feeling``'s word and where it ends in ``text``."""
    low = text.lower()
    found: list[tuple[int, str, int]] = []
    for word in feelings:
        for m in re.finditer(rf"\b{re.escape(word)}\b", low):
            sentence = re.split(r"[.!?;\n]", low[: m.start()])[-1]
            before = " ".join(sentence.split()[-3:])
            third = r"\b(she|he|they|them|her|him|his|their|team|everyone|people|others|colleagues?|reports?|staff)\b"
            others = re.search(third, " ".join(sentence.split()[-4:]))
            mine = _FIRST_PERSON.search(sentence) or not re.search(third, sentence)
            # the whole sentence: "The boring stuff doesn't get done, and the team has noticed she gets a pass"
            whole = sentence + re.split(r"[.!?;\n]", low[m.start():])[0]
            mine = mine and (_FIRST_PERSON.search(whole) or not re.search(third, whole))
            disowned = re.match(r"\W*(not mine|not me\b|isn'?t mine|not my own|not for me)", low[m.end():])
            if (mine and not others and not disowned and not _NEGATION.search(before)
                    and not _someone_elses(text, m.start())):
                found.append((m.start(), word, len(word)))
    if not found:
        return None
    start, word, length = min(found, key=lambda f: (f[0], -f[2]))
    return word, start + length


# words that may be the subject of a feeling and still leave it the speaker's ("the work is boring")
_THINGS = frozenset("it this that work job role stuff thing things everything everything's life week day days part "
                    "project projects team's company place".split())


def _someone_elses(text: str, at: int) -> bool:
    """Does the parse give the feeling word at ``at`` a subject who is someone else ("Star employee bored.",
    "My analyst seems bored")? A thing as subject ("the work is boring") leaves it the speaker's."""
    from .mirror import parsed

    doc = parsed(text[:1000])  # feeling_reflection and feeling_question read the same message
    token = next((t for t in doc if t.idx <= at < t.idx + len(t.text)), None)
    if token is None:
        return False
    heads = [token, token.head] if token.dep_ in ("acomp", "attr", "xcomp", "oprd", "conj", "amod") else [token]
    for head in heads:
        for child in head.children:
            if child.dep_ in ("nsubj", "nsubjpass"):
                word = child.lower_
                if word in ("i", "we", "me") or word in _THINGS:
                    return False
                return child.pos_ in ("NOUN", "PROPN") or word in ("he", "she", "they")
    # the feeling of someone the person acts on: "How do I keep a star from getting bored?", "make her feel
    # valued": a verb above the feeling word with a person as its object, before it
    node = token
    for _ in range(4):
        if node.dep_ not in ("acomp", "xcomp", "pcomp", "prep", "ccomp", "oprd", "advcl") or node.head is node:
            break
        node = node.head
        for child in node.children:
            if child.dep_ == "dobj" and child.i < token.i and child.lower_ not in _THINGS and (
                    child.pos_ in ("NOUN", "PROPN") or child.lower_ in ("him", "her", "them")):
                return True
    return False


def feeling_reflection(text: str, path: Path = PROMPTS_DIR / "reflections.yaml") -> str | None:
    """A reflection of a feeling the person named about themselves ("I'm bored", "honestly gutted"), unless
    it is negated just before; a feeling of someone else ("the team feels overlooked") is not theirs."""
    feelings: dict[str, str] = plain_reflections(path)["feelings"]
    word = _named_feeling(text, feelings)
    return feelings[word] if word else None


def feeling_question(text: str, path: Path = PROMPTS_DIR / "reflections.yaml") -> str | None:
    """A question about the feeling the person named ("What is the restlessness pointing you toward?"), from
    ``feeling_questions`` in reflections.yaml; None when they named none it has a question for."""
    data = plain_reflections(path)
    found = _feeling_at(text, data["feelings"])
    if found is None:
        return None
    word, end = found
    question = next((q for q, words in (data.get("feeling_questions") or {}).items() if word in words), None)
    if question is None:
        return None
    instead = (data.get("said_already") or {}).get(question)
    if instead and _says_what(text[end:], instead["after"]):
        return str(instead["ask"])
    return question


def _says_what(after_word: str, after: str) -> bool:
    """Does the sentence go on, after the feeling word, to say what the feeling is about ("scared she will
    say it is not a priority", "torn between the team and the craft")? Three words or more, beginning as
    ``after`` says."""
    rest = re.split(r"[.!?;\n]", after_word)[0]
    return (len(re.findall(r"[a-z']+", rest, re.I)) >= 3
            and re.match(rf"\s*(?:{after})\b", rest, re.I) is not None)
