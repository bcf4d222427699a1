"""Did the manager propose a next step? The ``next_step`` head over the shared sentence embedding.

>>> proposes_next_step(["Can we meet again next Friday with a written outline?"])   # doctest: +SKIP
[True]

A logistic-regression head with word n-grams beside the MiniLM vector (``evals/models/next_step.json``,
trained by ``coach understand train next_step`` on ``evals/understanding/next_step/``: manager
sentences written for rehearsal plus the GROW set's commitments). It reads each sentence on its own:
"Let's meet again on the 3rd" is a proposal; "We met last Tuesday and nothing came of it" is not. There
is no regex behind it. This module does not decide whether the persona agrees (``rehearsal`` does,
from the tension).
"""

from __future__ import annotations

import numpy as np

from .turn import TurnSignals


def proposal_scores(sentences: list[str]) -> list[float]:
    """The head's probability that each sentence proposes a next step."""
    if not sentences:
        return []
    from .encoder import embed

    reader = TurnSignals()
    vectors = embed(sentences)
    return [_p(reader, v, s) for v, s in zip(vectors, sentences, strict=True)]


def _p(reader: TurnSignals, vector: np.ndarray, sentence: str) -> float:
    return reader.step_p(vector, sentence)


def proposes_next_step(sentences: list[str]) -> list[bool]:
    """For each sentence: does it propose a next step (a date, a meeting, something to send or write)?"""
    return [p >= 0.5 for p in proposal_scores(sentences)]
