"""Experiment (2026-12-03, not shipped): per-class offsets on the coder's scores, chosen on dev.

Coordinate search over one offset per fine class, maximising dev accuracy + dev macro-F1 + accuracy on the
MIBot part of dev; then the held-out sets are read once with the chosen offsets. The network runs once per
sentence; each offset is a cheap re-decision. Figures are in docs/coder.md.

    .venv/bin/python scripts/coder_offsets.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

from assistant.understanding import coder
from assistant.understanding.data import CoderRow, coder_rows
from assistant.understanding.train import coder_metrics

_raw = coder.scores
_memo: dict[tuple[str, str], np.ndarray] = {}
OFFSETS = np.zeros(len(coder.FINE))


def _offset_scores(sentences: list[str], contexts: list[str], model: dict[str, Any]) -> np.ndarray:
    todo = [(s, c) for s, c in zip(sentences, contexts, strict=True) if (s, c) not in _memo]
    if todo:
        for key, row in zip(todo, _raw([s for s, _ in todo], [c for _, c in todo], model), strict=True):
            _memo[key] = row
    return np.stack([_memo[(s, c)] for s, c in zip(sentences, contexts, strict=True)]) + OFFSETS


def evaluate(rows: list[CoderRow]) -> tuple[float, float]:
    coder._CACHE.clear()
    pred = [d["fine"] for d in coder.code_details([r.text for r in rows], contexts=[r.context for r in rows])]
    m = coder_metrics([r.fine for r in rows], pred)
    return m["accuracy"], m["macro_f1"]


def main() -> None:
    coder.scores = _offset_scores
    dev = coder_rows("dev")
    mibot_dev = [r for r in dev if r.source == "mibot"]
    classes = coder.load_model()["classes"]

    def objective() -> float:
        (acc, f1), (m_acc, _) = evaluate(dev), evaluate(mibot_dev)
        return acc + f1 + m_acc

    best = objective()
    print("dev objective", round(best, 4))
    for _ in range(2):
        for k, name in enumerate(classes):
            keep = OFFSETS[k]
            for step in (-1.0, -0.6, -0.3, 0.3, 0.6, 1.0):
                OFFSETS[k] = keep + step
                got = objective()
                if got > best + 0.003:
                    best, keep = got, OFFSETS[k]
                    print(f"{name} {keep:+.1f}: dev objective {best:.4f}")
            OFFSETS[k] = keep
    print("offsets", dict(zip(classes, OFFSETS.round(2).tolist(), strict=True)))
    for name in ("mibot_test", "own_test", "external", "transcribed"):
        print(name, evaluate(coder_rows(name)))


if __name__ == "__main__":
    main()
