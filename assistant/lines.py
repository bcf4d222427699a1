"""Which of a persona's lines answers what the manager said: matching by meaning on the shared embedding.

>>> relevance([[1.0, 0.0]], [[[0.6, 0.8]], [[0.0, 1.0], [1.0, 0.0]]])
[0.6, 1.0]

Each line is embedded once per process with what it answers (its ``about`` phrases); a manager message
is read as its parts that ask or hear (questions and reflections; the whole message when it has none).
A line's relevance is its best cosine between any part of the message and the line or one of its
phrases. ``LineChooser.pick`` takes the most relevant line not yet said in the session, within the band
the state machine chose, or a more reserved band's line that fits clearly better (a persona may say less
than its tension allows, never more); a used-up band borrows from a neighbour (never from ``reveal``).
The vectors are the local MiniLM the understanding layer reads; the next-step head has already embedded
each sentence of the message and the safety screen the whole message (the embedder remembers recent
texts), so a turn embeds nothing new. This module does not decide the band (``rehearsal``) and does not
say anything itself.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .personas import BANDS, Persona

# Where a used-up band borrows from, nearest first; none of these leak the hidden concern.
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "guarded": ("dismissed", "neutral"), "neutral": ("guarded", "open"), "open": ("neutral",),
    "reveal": ("open", "neutral"), "agree": ("open", "neutral"), "dismissed": ("guarded", "neutral"),
}
# A persona may always say less than its tension allows, never more: a line of a more reserved band is
# used when it fits the question clearly better (by RESERVE_MARGIN) than the best line of the band.
RESERVED: dict[str, tuple[str, ...]] = {"open": ("neutral",), "neutral": ("guarded",)}
RESERVE_MARGIN = 0.1
ASKING = ("open_question", "closed_question", "reflection")


def relevance(parts: Sequence[Sequence[float]], keys: Sequence[Sequence[Sequence[float]]]) -> list[float]:
    """For each line (a list of key vectors), the best cosine with any message part (vectors normalised)."""
    m = np.atleast_2d(np.asarray(parts, float))
    return [round(float((np.atleast_2d(np.asarray(k, float)) @ m.T).max()), 4) for k in keys]


@dataclass(frozen=True)
class Choice:
    band: str
    index: int
    text: str
    score: float


def _embed(texts: list[str]) -> np.ndarray:
    from .understanding.encoder import embed

    return embed(texts)


def _keys(persona: Persona) -> dict[str, list[np.ndarray]]:
    return _band_keys(tuple((band, tuple((line.say, line.about) for line in getattr(persona.lines, band)))
                            for band in BANDS))


@functools.lru_cache(maxsize=16)
def _band_keys(bands: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]) -> dict[str, list[np.ndarray]]:
    """Per band, per line: the vectors of the line and of each thing it answers (one batch per persona)."""
    texts: list[str] = []
    spans: dict[str, list[tuple[int, int]]] = {}
    for band, lines in bands:
        spans[band] = []
        for say, about in lines:
            start = len(texts)
            texts += [say, *about]
            spans[band].append((start, len(texts)))
    vectors = _embed(texts)
    return {band: [vectors[a:b] for a, b in spans[band]] for band in spans}


def message_parts(message: str, coded: Sequence[tuple[str, str]]) -> list[str]:
    """What to match lines against: the sentences that ask or hear, else the whole message."""
    asking = [s for s, code in coded if code in ASKING]
    return asking if asking else [message]


class LineChooser:
    """Chooses the persona's line for one turn; ``used`` maps band to the indexes already said."""

    def __init__(self, persona: Persona) -> None:
        self.persona = persona

    def scores(self, band: str, parts: list[str]) -> list[float]:
        return relevance(_embed(parts), _keys(self.persona)[band])

    def best(self, band: str, parts: list[str], used: dict[str, list[int]]) -> Choice | None:
        """The most relevant unsaid line of ``band`` (None when every line of it was said)."""
        lines = self.persona.lines.said(band)
        scores = self.scores(band, parts)
        free = [i for i in range(len(lines)) if i not in used.get(band, [])]
        if not free:
            return None
        i = max(free, key=lambda k: scores[k])
        return Choice(band, i, lines[i], scores[i])

    def pick(self, band: str, parts: list[str], used: dict[str, list[int]]) -> Choice:
        """The line for ``band`` (or a more reserved band's that fits clearly better); a used-up band
        borrows from its neighbours; only when every one of them is used up too does a line come back."""
        for b in (band, *NEIGHBOURS[band]):
            choice = self.best(b, parts, used)
            if choice is not None:
                break
        else:
            return self.best(band, parts, {}) or Choice(band, 0, self.persona.lines.said(band)[0], 0.0)
        for b in RESERVED.get(band, ()):
            other = self.best(b, parts, used)
            if other is not None and other.score - choice.score > RESERVE_MARGIN:
                choice = other
        return choice
