"""Signals about a coachee's message: who is speaking (``audience``), which GROW aim it meets (``grow``) and
whether they want time before deciding (``not_yet``); the rehearsal's ``next_step`` and ``move`` and the
follow-up's ``outcome`` use the same heads.

>>> reader = TurnSignals()                                          # doctest: +SKIP
>>> reader.audience(vector).label                                   # doctest: +SKIP
'manager'

``audience``: ``manager`` (talking about someone they manage) or ``high-performer`` (talking about their
own work; "my team" may be the team they belong to). ``grow``: ``goal``, ``reality``, ``options``,
``commitment`` or ``other``. Each is a logistic-regression head over the shared MiniLM vector, with a
confidence threshold chosen on dev (below it the reading is ``None``: the chain treats the audience as
unknown, or falls back to its turn limits for the stage). Labelled rows are under
``evals/understanding/{audience,grow}/``; heads under ``evals/models/``; trained by
``coach understand train audience|grow``. This module does not choose questions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ROOT
from .data import DATA_DIR, LabelRow, file_sha, read_rows
from .heads import LinearHead, fit

MODELS = ROOT / "evals" / "models"
LABELS = {"audience": ("manager", "high-performer"),
          "grow": ("goal", "reality", "options", "commitment", "other"),
          "next_step": ("proposal", "other"),
          "move": ("dismissive", "leading_question", "acknowledgement", "other"),
          "outcome": ("done", "partly", "not_done"),
          "not_yet": ("not_yet", "other")}
# the share of dev readings that may be wrong among those the head is confident about
PRECISION_TARGET = {"audience": 0.95, "grow": 0.85, "next_step": 0.9, "move": 0.85, "outcome": 0.9,
                    "not_yet": 0.9}


def signal_rows(signal: str, split: str) -> list[LabelRow]:
    path = DATA_DIR / signal / f"{split}.jsonl"
    rows = read_rows(path, LabelRow)
    for i, r in enumerate(rows, 1):
        if r.label not in LABELS[signal]:
            from ..errors import ConfigError

            raise ConfigError(f"{path}:{i}: field label: {r.label!r} is not one of {', '.join(LABELS[signal])}")
    return rows


@dataclass
class Reading:
    label: str | None  # None: below the confidence threshold
    best: str
    p: float


@functools.lru_cache(maxsize=4)
def _head(path: Path) -> LinearHead:
    return LinearHead.load(path)


class TurnSignals:
    """Reads the audience and GROW-aim heads (loaded once)."""

    def __init__(self, models: Path = MODELS) -> None:
        self.models = models

    def _read(self, signal: str, vector: np.ndarray, text: str | None = None) -> Reading:
        head = _head(self.models / f"{signal}.json")
        if head.router is not None and text is not None and head.router.multiclass:  # n-grams and the embedding
            p = head.router.proba([text], np.atleast_2d(vector))[0]
        elif head.router is not None and text is not None:  # a binary head over n-grams and the embedding
            p1 = float(head.router.proba([text], np.atleast_2d(vector))[0])
            positive = head.meta["router_positive"]
            p = np.asarray([p1 if c == positive else 1 - p1 for c in head.classes])
        else:
            p = head.proba(np.atleast_2d(vector))[0]
        i = int(p.argmax())
        best = head.classes[i]
        threshold = float(head.thresholds.get("confidence", 0.5))
        return Reading(best if p[i] >= threshold else None, best, float(p[i]))

    def audience(self, vector: np.ndarray, text: str | None = None) -> Reading:
        return self._read("audience", vector, text)

    def grow(self, vector: np.ndarray, text: str | None = None) -> Reading:
        # with the text, as it is trained and reported: a retrained head may carry an n-gram router
        return self._read("grow", vector, text)

    def step_p(self, vector: np.ndarray, text: str) -> float:
        """The ``next_step`` head's probability that the message names a step to take (``proposals.py``)."""
        reading = self._read("next_step", vector, text)
        return reading.p if reading.best == "proposal" else 1.0 - reading.p

    def not_yet(self, vector: np.ndarray, text: str) -> Reading:
        """Does the person say they want time before deciding, naming nothing they will do?"""
        return self._read("not_yet", vector, text)


def _threshold(p: np.ndarray, correct: np.ndarray, target: float) -> float:
    """The lowest confidence at which dev readings are right at least ``target`` of the time."""
    order = np.argsort(-p)
    hits = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.where(hits >= target)[0]
    if not len(ok):
        return 0.99
    # the longest prefix (most confident readings) that keeps the precision; guard against a tiny prefix
    return round(float(p[order][ok[-1]]), 4)


def train_signal(signal: str, seed: int = 13) -> dict[str, Any]:
    """Fit the head on train, choose C and the confidence threshold on dev, write evals/models/SIGNAL.json."""
    from .encoder import embed

    train, dev = signal_rows(signal, "train"), signal_rows(signal, "dev")
    X, Xd = embed([r.text for r in train]), embed([r.text for r in dev])
    y, yd = [r.label for r in train], np.asarray([r.label for r in dev])
    tried, best = [], None
    for C in (0.3, 1.0, 3.0, 10.0):
        head = fit(signal, X, y, C=C)
        p = head.proba(Xd)
        pred = np.asarray(head.classes)[p.argmax(1)]
        acc = float((pred == yd).mean())
        tried.append({"C": C, "dev_accuracy": round(acc, 4)})
        if best is None or acc > best[0]:
            best = (acc, head, p, pred)
    assert best is not None
    classes = best[1].classes  # the heads' class order (the same for every fit of these labels)
    # also n-grams beside the embedding ("my report", "she", "don't you think"), chosen on dev
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from .heads import LexicalFeatures, Router

    texts, dev_texts = [r.text for r in train], [r.text for r in dev]
    lexical = LexicalFeatures.fit(texts)
    if len(LABELS[signal]) == 2:  # a binary router
        positive = LABELS[signal][0]
        for C in (1.0, 3.0, 10.0, 30.0):
            router = Router(lexical, np.zeros(1), 0.0, 1.0)
            with threadpool_limits(1):
                clf = LogisticRegression(C=C, class_weight="balanced", max_iter=5000).fit(
                    router.design(texts, X), [lab == positive for lab in y])
            router.coef, router.intercept = clf.coef_.ravel(), float(clf.intercept_[0])
            p1 = router.proba(dev_texts, Xd)
            p = np.column_stack([p1 if c == positive else 1 - p1 for c in classes])
            pred = np.asarray(classes)[p.argmax(1)]
            acc = float((pred == yd).mean())
            tried.append({"C": C, "lexical": True, "dev_accuracy": round(acc, 4)})
            if acc > best[0]:
                head2 = fit(signal, X, y, C=1.0)  # the head file that carries the router
                head2.router, head2.meta["router_positive"], head2.meta["C"] = router, positive, C
                best = (acc, head2, p, pred)
    else:  # a multinomial one
        for scale in (1.0, 2.0):
            for C in (1.0, 3.0, 10.0):
                router = Router(lexical, np.zeros((1, 1)), np.zeros(1), scale)
                with threadpool_limits(1):
                    clf = LogisticRegression(C=C, max_iter=5000).fit(router.design(texts, X), y)
                order = [list(clf.classes_).index(c) for c in classes]
                router.coef, router.intercept = clf.coef_[order], clf.intercept_[order]
                p = router.proba(dev_texts, Xd)
                pred = np.asarray(classes)[p.argmax(1)]
                acc = float((pred == yd).mean())
                tried.append({"C": C, "emb_scale": scale, "lexical": True, "dev_accuracy": round(acc, 4)})
                if acc > best[0]:
                    head2 = fit(signal, X, y, C=1.0)  # the head file that carries the router
                    head2.router, head2.meta["C"] = router, C
                    best = (acc, head2, p, pred)
    acc, head, p, pred = best
    conf = p.max(1)
    threshold = _threshold(conf, pred == yd, PRECISION_TARGET[signal])
    head.thresholds = {"confidence": threshold}
    covered = conf >= threshold
    head.meta.update({"seed": seed, "n_train": len(train), "n_dev": len(dev), "tried": tried,
                      "data_sha256": file_sha(DATA_DIR / signal / "train.jsonl", DATA_DIR / signal / "dev.jsonl"),
                      "dev_accuracy": round(acc, 4), "dev_coverage": round(float(covered.mean()), 4),
                      "dev_precision_when_confident": round(float((pred == yd)[covered].mean()), 4)})
    path = MODELS / f"{signal}.json"
    head.save(path)
    _head.cache_clear()
    return {"path": str(path.relative_to(ROOT)), "C": head.meta["C"], "dev_accuracy": round(acc, 4),
            "threshold": threshold, "dev_coverage": head.meta["dev_coverage"],
            "dev_precision_when_confident": head.meta["dev_precision_when_confident"], "tried": tried}


def signal_report(signal: str, split: str = "blind") -> dict[str, Any]:
    """Accuracy, per-class precision/recall and coverage at the confidence threshold on a split."""
    from .encoder import embed

    rows = signal_rows(signal, split)
    reader = TurnSignals()
    vectors = embed([r.text for r in rows])
    readings = [reader._read(signal, v, r.text) for v, r in zip(vectors, rows, strict=True)]
    truth = np.asarray([r.label for r in rows])
    best = np.asarray([r.best for r in readings])
    sure = np.asarray([r.label is not None for r in readings])
    per: dict[str, dict[str, float]] = {}
    for c in LABELS[signal]:
        tp = int(((best == c) & (truth == c)).sum())
        per[c] = {"n": int((truth == c).sum()),
                  "precision": round(tp / max(int((best == c).sum()), 1), 3),
                  "recall": round(tp / max(int((truth == c).sum()), 1), 3)}
    return {"signal": signal, "split": split, "n": len(rows), "accuracy": round(float((best == truth).mean()), 3),
            "coverage": round(float(sure.mean()), 3),
            "accuracy_when_confident": round(float((best == truth)[sure].mean()), 3) if sure.any() else None,
            "per_class": per}
