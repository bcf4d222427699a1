"""Whether a message only opens a session ("hi again", "ok where were we"), with nothing yet to reflect.

>>> is_greeting("hey coach, got 10 minutes?")     # doctest: +SKIP
True
>>> is_greeting("Hi, my lead keeps taking credit for my analysis.")     # doctest: +SKIP
False

Two readings, either suffices: the word rule in ``stages.is_greeting`` (greeting words and filler only), and,
for a message of at most ``MAX_WORDS`` words, closeness in meaning to the written openings in
``evals/understanding/greeting/examples.jsonl`` (shared MiniLM embedding; mean cosine of the three closest at
least ``SIMILARITY``). The threshold was chosen on the follow-up dev set (``evals/understanding/followup/
dev.jsonl``: its greetings score 0.42 and up, 0.53 at the 5th percentile; its reports, new and near topics
at most 0.28) and the dev openers (`evals/dev/openers.jsonl`, at most 0.45). It does not decide what the
coach says (``chain``).
"""

from __future__ import annotations

import functools
import re

import numpy as np

from ..config import ROOT
from ..stages import is_greeting as worded_greeting
from .data import TextRow, read_rows

EXAMPLES = ROOT / "evals" / "understanding" / "greeting" / "examples.jsonl"
MAX_WORDS = 12
SIMILARITY = 0.47


@functools.lru_cache(maxsize=1)
def _examples() -> np.ndarray:
    from .encoder import embed

    return embed([r.text for r in read_rows(EXAMPLES, TextRow)])


def greeting_score(text: str) -> float:
    """Mean cosine of the message to its three closest written openings."""
    from .encoder import embed

    sims = _examples() @ embed([text])[0]
    return float(np.sort(sims)[-3:].mean())


def is_greeting(text: str) -> bool:
    if worded_greeting(text):
        return True
    words = re.findall(r"\w+", text)
    return 0 < len(words) <= MAX_WORDS and greeting_score(text) >= SIMILARITY
