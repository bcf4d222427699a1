"""Heads over the shared embedding: multinomial logistic regression, or the same with one hidden ReLU
layer, stored as plain JSON.

>>> head = LinearHead("demo", ["a", "b"], np.zeros((2, 2)), np.array([0.0, 1.0]))
>>> head.proba(np.zeros((1, 2))).round(3).tolist()
[[0.269, 0.731]]

A head file holds its classes, weights, intercepts, thresholds chosen on dev and the figures it was
chosen with; it loads with ``json`` and numpy only (no pickle). Training uses scikit-learn and happens
only in the training commands, never at run time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .encoder import EMBEDDING

FORMAT = 2


class HeadFileError(ValueError):
    """A head file that is missing, damaged or built for other features; the message names the file."""


class LinearHead:
    def __init__(self, name: str, classes: list[str], coef: np.ndarray, intercept: np.ndarray,
                 thresholds: dict[str, float] | None = None, meta: dict[str, Any] | None = None) -> None:
        self.name, self.classes = name, list(classes)
        self.W, self.b = np.asarray(coef, dtype=np.float64).T, np.asarray(intercept, dtype=np.float64)
        self.thresholds = dict(thresholds or {})
        self.meta = dict(meta or {})
        self.router: Router | None = None  # the safety signal's binary router, stored in the same file
        self.hidden: tuple[np.ndarray, np.ndarray] | None = None  # (weights, biases) of a ReLU layer, if any
        # the safety signal's fine-tuned view: {"weights", "sha256", "layers", "max_tokens", "classes", "coef",
        # "intercept"}; the encoder file sits beside the head file
        self.tuned: dict[str, Any] | None = None

    def proba(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        if self.hidden is not None:
            X = np.maximum(X @ self.hidden[0] + self.hidden[1], 0.0)
        z = X @ self.W + self.b
        if len(self.classes) == 2 and z.shape[1] == 1:  # a binary sklearn model has one column
            z = np.hstack([np.zeros_like(z), z])
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        spec = {"format": FORMAT, "name": self.name, "embedding": EMBEDDING, "classes": self.classes,
                "coef": np.round(self.W.T, 6).tolist(), "intercept": np.round(self.b, 6).tolist(),
                "thresholds": self.thresholds, "meta": self.meta}
        if self.router is not None:
            spec["router"] = self.router.to_spec()
        if self.tuned is not None:
            spec["tuned"] = self.tuned
        if self.hidden is not None:
            spec["hidden"] = {"coef": np.round(self.hidden[0], 6).tolist(), "intercept": np.round(self.hidden[1], 6).tolist()}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(spec, separators=(",", ":")) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        try:
            spec = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HeadFileError(f"{path}: no such head file; run `coach understand train`") from None
        except ValueError as exc:
            raise HeadFileError(f"{path}: not valid JSON ({exc})") from None
        for field in ("format", "name", "embedding", "classes", "coef", "intercept"):
            if field not in spec:
                raise HeadFileError(f"{path}: missing field {field!r}")
        if spec["format"] != FORMAT or spec["embedding"] != EMBEDDING:
            raise HeadFileError(f"{path}: built for format {spec['format']} / {spec['embedding']}; "
                                f"this code reads format {FORMAT} / {EMBEDDING}; run `coach understand train`")
        coef = np.asarray(spec["coef"])
        if coef.shape[0] != len(spec["intercept"]):
            raise HeadFileError(f"{path}: field 'coef' has {coef.shape[0]} rows for {len(spec['intercept'])} intercepts")
        head = cls(spec["name"], spec["classes"], coef, np.asarray(spec["intercept"]),
                   spec.get("thresholds"), spec.get("meta"))
        if "hidden" in spec:
            try:
                head.hidden = (np.asarray(spec["hidden"]["coef"]), np.asarray(spec["hidden"]["intercept"]))
            except KeyError as exc:
                raise HeadFileError(f"{path}: field 'hidden' lacks {exc}") from None
        if "tuned" in spec:
            missing = [f for f in ("weights", "sha256", "layers", "max_tokens", "classes", "coef", "intercept")
                       if f not in spec["tuned"]]
            if missing:
                raise HeadFileError(f"{path}: field 'tuned' lacks {missing[0]!r}")
            head.tuned = spec["tuned"]
        if "router" in spec:
            try:
                head.router = Router.from_spec(spec["router"])
            except (KeyError, ValueError) as exc:
                raise HeadFileError(f"{path}: field 'router': {exc}") from None
        return head


def fit(name: str, X: np.ndarray, y: list[str], C: float = 1.0, weights: np.ndarray | None = None,
        class_weight: str | None = "balanced") -> LinearHead:
    """Multinomial logistic regression (scikit-learn, one BLAS thread)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits  # BLAS threads fight over two busy cores

    with threadpool_limits(1):
        clf = LogisticRegression(C=C, class_weight=class_weight, max_iter=5000)
        clf.fit(X, y, sample_weight=weights)
    return LinearHead(name, clf.classes_.tolist(), clf.coef_, clf.intercept_, meta={"C": C})


def fit_mlp(name: str, X: np.ndarray, y: list[str], hidden: int = 256, alpha: float = 0.01, seed: int = 13) -> LinearHead:
    """One hidden ReLU layer (scikit-learn's MLPClassifier, softmax output), as a ``LinearHead``."""
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        clf = MLPClassifier((hidden,), alpha=alpha, max_iter=300, random_state=seed).fit(X, y)
    if len(clf.classes_) < 3:
        raise ValueError("fit_mlp needs three or more classes (a binary MLP has a logistic output)")
    head = LinearHead(name, clf.classes_.tolist(), clf.coefs_[1].T, clf.intercepts_[1],
                      meta={"hidden": hidden, "alpha": alpha})
    head.hidden = (clf.coefs_[0], clf.intercepts_[0])
    return head


class LexicalFeatures:
    """TF-IDF character and word n-grams, stored as vocabularies and idf weights (no pickle).

    Spelling variants and misspellings share character n-grams, which the sentence embedding smooths
    away; the router reads both.
    """

    SETTINGS = {"char": {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 2, "max_features": 20000},
                "word": {"analyzer": "word", "ngram_range": (1, 2), "min_df": 2}}

    def __init__(self, vectorizers: dict[str, Any]) -> None:
        self.vectorizers = vectorizers

    @classmethod
    def fit(cls, texts: list[str]) -> LexicalFeatures:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return cls({name: TfidfVectorizer(sublinear_tf=True, **kw).fit(texts) for name, kw in cls.SETTINGS.items()})

    def transform(self, texts: list[str]) -> Any:
        from scipy.sparse import hstack

        return hstack([v.transform(texts) for v in self.vectorizers.values()]).tocsr()

    def to_spec(self) -> dict[str, Any]:
        return {name: {"vocabulary": {k: int(i) for k, i in v.vocabulary_.items()},
                       "idf": np.round(v.idf_, 5).tolist()} for name, v in self.vectorizers.items()}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> LexicalFeatures:
        from sklearn.feature_extraction.text import TfidfVectorizer

        out = {}
        for name, kw in cls.SETTINGS.items():
            args = {k: v for k, v in kw.items() if k not in ("min_df", "max_features")}
            v = TfidfVectorizer(sublinear_tf=True, vocabulary=spec[name]["vocabulary"], **args)
            v.idf_ = np.asarray(spec[name]["idf"])
            out[name] = v
        return cls(out)


class Router:
    """A head over lexical features and the scaled sentence embedding: binary (disclosure or not; ``coef`` a
    vector, ``proba`` the positive class's probability) or multinomial (``coef`` one row per class of the
    head, ``proba`` a row of class probabilities per text)."""

    def __init__(self, lexical: LexicalFeatures, coef: np.ndarray, intercept: float | np.ndarray, emb_scale: float,
                 threshold: float = 0.5) -> None:
        self.lexical, self.coef = lexical, np.asarray(coef, dtype=np.float64)
        self.intercept: Any = np.asarray(intercept, dtype=np.float64) if self.coef.ndim == 2 else float(intercept)
        self.emb_scale, self.threshold = emb_scale, threshold

    @property
    def multiclass(self) -> bool:
        return self.coef.ndim == 2

    def design(self, texts: list[str], vectors: np.ndarray) -> Any:
        from scipy.sparse import csr_matrix, hstack

        return hstack([self.lexical.transform(texts), csr_matrix(vectors * self.emb_scale)]).tocsr()

    def proba(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        design = self.design(texts, vectors)
        if self.multiclass:
            z = np.asarray(design @ self.coef.T) + self.intercept
            z = np.exp(z - z.max(1, keepdims=True))
            return z / z.sum(1, keepdims=True)
        z = design @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.asarray(z).ravel()))

    def to_spec(self) -> dict[str, Any]:
        intercept = np.round(self.intercept, 6).tolist() if self.multiclass else round(self.intercept, 6)
        return {"lexical": self.lexical.to_spec(), "coef": np.round(self.coef, 6).tolist(),
                "intercept": intercept, "emb_scale": self.emb_scale, "threshold": self.threshold}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Router:
        return cls(LexicalFeatures.from_spec(spec["lexical"]), np.asarray(spec["coef"]), spec["intercept"],
                   spec["emb_scale"], spec["threshold"])
