"""Did the plan happen? ``done``, ``partly`` or ``not_done``, read from a person's answer to the follow-up.

>>> outcome("I didn't do it, the release ate my week.")   # doctest: +SKIP
'not_done'

The labelled answers closest in meaning vote (the shared MiniLM embedding, top 5 of the training answers
in ``evals/understanding/outcome/outcomes.jsonl``, weighted by similarity). Sentence embeddings blur
negation and degree, so a documented backstop adjusts a ``done`` reading only: "half / partly / some of
it" makes it ``partly``, "didn't / not yet / never" makes it ``not_done``. Figures are on the dev answers,
written by the same engineer as the training answers (a check, not a blind figure). This module does not
decide what the coach says next (``people.followup`` does).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import ROOT

OUTCOMES = ("done", "partly", "not_done")
OUTCOMES_FILE = ROOT / "evals" / "understanding" / "outcome" / "outcomes.jsonl"
_NOT = re.compile(r"\b(didn't|did not|didnt|haven't|have not|hasn't|never|not yet|couldn't|could not|wasn't able|"
                  r"no time|postponed|cancelled|canceled|put it off|got pushed|chickened out|forgot|bailed)\b", re.I)
_PART = re.compile(r"\b(partly|partially|half|some of it|part of it|sort of|kind of|halfway|started)\b", re.I)


def rows(split: str) -> list[dict[str, Any]]:
    data = [json.loads(x) for x in Path(OUTCOMES_FILE).read_text(encoding="utf-8").splitlines() if x.strip()]
    return [r for r in data if r.get("split") == split]


@lru_cache(maxsize=1)
def _examples() -> tuple[list[str], Any]:
    from .encoder import embed

    train = rows("train")
    return [r["label"] for r in train], embed([r["text"] for r in train])


def report_likeness(vector: Any) -> float:
    """How much a message (its shared embedding) reads like an answer to "How did it go?": the mean cosine to
    its three closest training answers."""
    sims = _examples()[1] @ vector
    return float(sims[sims.argsort()[::-1][:3]].mean())


def outcome(answer: str) -> str:
    """``done``, ``partly`` or ``not_done`` for one answer to "How did it go?"."""
    from .encoder import embed

    labels, vectors = _examples()
    sims = vectors @ embed([answer])[0]
    votes: dict[str, float] = {}
    for i in sims.argsort()[::-1][:5]:
        votes[labels[i]] = votes.get(labels[i], 0.0) + float(sims[i])
    best = max(votes, key=lambda k: votes[k])
    if best == "done" and _PART.search(answer):
        best = "partly"
    elif best == "done" and _NOT.search(answer):
        best = "not_done"
    return best
