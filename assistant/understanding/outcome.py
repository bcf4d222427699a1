"""Did the plan happen? ``done``, ``partly`` or ``not_done``, read from a person's answer to the follow-up.

>>> outcome("I didn't do it, the release ate my week.")   # doctest: +SKIP
'not_done'

The ``outcome`` signal of the understanding layer: a multinomial logistic-regression head over word and
character n-grams beside the shared MiniLM vector (``evals/models/outcome.json``, trained by ``coach
understand train outcome`` on ``evals/understanding/outcome/``: answers to "How did it go?" written by a
helper who saw no code, split by plan). Its most likely reading is used whatever its confidence: every
answer gets a non-judging reply, and a wrong reading costs one question. Figures, dev and a blind split by
another writer, are in ``docs/privacy.md``. ``report_likeness`` (is a first message an answer to "How did it
go?" at all) reads the engineer's first answers, ``outcomes.jsonl``, as the routing was tuned on them. This
module does not decide what the coach says next (``people.followup`` does).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import ROOT

OUTCOMES = ("done", "partly", "not_done")
OUTCOMES_FILE = ROOT / "evals" / "understanding" / "outcome" / "outcomes.jsonl"

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
    from .turn import TurnSignals

    return TurnSignals()._read("outcome", embed([answer])[0], answer).best
