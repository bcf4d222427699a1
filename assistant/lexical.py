"""Word-level search: a small tokenizer with crude stemming and Okapi BM25 over a fixed list of texts.

>>> BM25(["stay interviews keep people", "recognition and thanks"]).scores("interview")[0] > 0
True
"""

from __future__ import annotations

import math
import re
from collections import Counter

_WORD = re.compile(r"[a-z0-9]+")
_STOP = set("a an the and or but of to in on for with at by from is are was were be been it its this that "
            "i me my you your we our they them their he she his her do does did not no so as if what how "
            "who which when where why can could would should will just about into than then there".split())


def tokens(text: str) -> list[str]:
    out = []
    for w in _WORD.findall(text.lower()):
        if w in _STOP:
            continue
        # crude stemming keeps "managing", "manager", "manage" together
        for suffix in ("ing", "ers", "er", "ed", "es", "s"):
            if len(w) > len(suffix) + 3 and w.endswith(suffix):
                w = w[: -len(suffix)]
                break
        out.append(w)
    return out


class BM25:
    """Okapi BM25 over a fixed list of texts."""

    def __init__(self, texts: list[str], k1: float = 1.4, b: float = 0.75) -> None:
        self.docs = [Counter(tokens(t)) for t in texts]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / max(len(self.docs), 1)
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}
        self.k1, self.b = k1, b

    def scores(self, query: str) -> list[float]:
        q = tokens(query)
        out = []
        for d, length in zip(self.docs, self.lengths, strict=True):
            s = 0.0
            for w in q:
                f = d.get(w)
                if f:
                    s += self.idf[w] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * length / self.avg))
            out.append(s)
        return out
