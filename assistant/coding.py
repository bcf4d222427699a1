"""The behaviour coder: labels each coach sentence as open/closed question, reflection, advice,
information, affirmation or other (adapted from MITI 4.2).

>>> code_sentence("What would make this worthwhile for you?")
'open_question'
>>> code_sentence("Did you talk to her?")
'closed_question'
>>> [c for _, c in code_text("You should ask for a raise. What matters most to you?")]
['advice', 'open_question']
>>> code_line("It sounds exhausting. What would help?")
'open_question'

How it decides: a few rules that were at least 97% precise on the training split (question form, explicit
advice markers, permission and tag questions) decide first; a logistic-regression model over MiniLM
sentence embeddings plus cheap hand features (``evals/models/coder.json``, plain JSON, scored with numpy)
decides the rest. Transcript disfluencies ("so, um, what, what's...") are normalised before rules and
features. If the model file is missing the coder falls back to the rules plus a keyword heuristic
(roughly 0.6 accuracy instead of 0.9) rather than failing.

It deliberately does not train at run time (``train()`` is called by ``coach code train``), does not code
coachee turns, and does not look beyond the sentence: MITI codes that need the previous turn (whether
advice was asked for) are the eval harness's job.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

CODES = ("open_question", "closed_question", "reflection", "advice", "information", "affirmation", "other")
# a multi-sentence line takes the code of its most informative sentence
PRIORITY = ("open_question", "closed_question", "advice", "reflection", "affirmation", "information", "other")
ROOT = Path(__file__).resolve().parent.parent
MODEL_PATH = ROOT / "evals" / "models" / "coder.json"
DATA = {"labelled": ROOT / "evals" / "utterances.jsonl", "external": ROOT / "evals" / "utterances_external.jsonl"}
TEST_FRACTION = 0.2
EMBEDDING = "all-MiniLM-L6-v2"

_SENT = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9])")  # closing quotes stay
_FILLER = re.compile(r"\b(?:u+m+|u+h+|e+r+m*|h?m+h?m+|mhm)\b[,.]?\s*|\byou know,\s*|\bi mean,\s*|\blike,\s*", re.I)
_STUTTER = re.compile(r"\b(\w+)\s*[,—–-]*\s+(?=\1\b)", re.I)
_LEAD = re.compile(r"^(?:(?:so|and|okay|ok|alright|all right|but|yeah|then)\b[,—–-]?\s+|"
                   r"(?:well|now|like|right)[,—–-]\s*)+", re.I)
_WH_START = re.compile(r"^(what|how|why|where|who|whom|whose|when|which)\b", re.I)
_WH_FACT = re.compile(r"^(how (many|much|long|old|often|far)|what (time|dose|grade|date|day)|when|who|whose|which)\b",
                      re.I)
_AUX_START = re.compile(
    r"^(do|does|did|is|are|was|were|can|could|would|will|should|shall|have|has|had|may|might|must|am|"
    r"isn't|aren't|don't|doesn't|didn't|won't|wouldn't|couldn't|shouldn't|haven't|hasn't|wasn't|weren't)\b", re.I)
_TAG = re.compile(r",\s*(right|yeah|(is|are|was|were|do|does|did|have|has|can|could|would|will)(n't)?\s+"
                  r"(you|it|he|she|they|we|i|there|that))\s*\??$", re.I)
_OPEN_IMPERATIVE = re.compile(r"^(tell me (about|more|what|how)|describe|walk me through|talk me through|"
                              r"help me understand|say more)\b", re.I)
_PERMISSION = re.compile(r"^(can|could|may) i\b|^(would|is) it be (ok|okay|alright|all right|helpful)|^do you mind if\b"
                         r"|^would you like (me|to hear)\b|^is it (ok|okay|alright|all right)\b", re.I)
_ADVICE = re.compile(r"\b(?<!would )(?<!do )(?<!will )(you (?:really |just )?(?:should|ought to|must|need to)|"
                     r"i(?:'d| would) (?:recommend|suggest|advise|encourage)|i recommend|i suggest|my advice|"
                     r"if i were you|why don't you|why not|make sure|it (?:might|would|could|may) (?:help|be worth|"
                     r"be a good idea)|(?:perhaps|maybe) you could|you could (?:try|ask|talk|start|set|tell)|"
                     r"don't forget to)\b", re.I)
_IMPERATIVE = re.compile(r"^(ask|tell|talk|write|schedule|book|block|set|start|stop|quit|delegate|consider|remember|"
                         r"focus|take|go|send|email|call|speak|plan|prepare|request|push|negotiate|list|keep|avoid|"
                         r"use|try|don't|be|put|check|have a)\b", re.I)
_AFFIRM = re.compile(r"\b(you(?:'ve| have) (?:worked|done|shown|put)|that took (?:courage|guts)|well done|"
                     r"good for you|you clearly|you really care|impressive|i (?:really )?appreciate|"
                     r"thank(?:s| you) for|proud|great job|brilliant|creative|courage|guts|good on you|strong choice|"
                     r"commitment|determination|stuck with|you(?:'re| are) (?:clearly |really )?(?:good|great|"
                     r"skilled|talented|resourceful|committed|determined|brave))", re.I)
_REFLECT = re.compile(r"^(it sounds|sounds like|it seems|seems like|i(?:'m| am) hearing|i hear|part of you|"
                      r"i get the sense|on the one hand|you(?:'re| are| feel| felt|'ve| have| want| don't| wish|"
                      r" care| miss|'d))\b", re.I)
_OTHER = re.compile(r"^(hi|hello|hey|mm+|mhm|uh-huh|okay|ok|right|sure|yes|yeah|i see|thanks|bye|good morning)"
                    r"\W*$", re.I)
_FEELING = re.compile(r"\b(feel\w*|felt|frustrat\w*|worr\w*|stuck|torn|tired|hurt|angry|anxious|scared|afraid|"
                      r"sad|upset|overwhelm\w*|stretched|overlooked|want\w*|wish\w*|miss\w*|fed up)\b", re.I)
_NUMBER = re.compile(r"\d|\b(percent|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|"
                     r"hundred|half)\b", re.I)
_HAND = {  # name -> predicate on the normalised sentence; the order is the model's column order
    "q_mark": lambda s: s.endswith("?"), "no_end_punct": lambda s: s[-1:] not in ".!?",
    "wh_start": _WH_START.match, "wh_fact": _WH_FACT.match,
    "wh_clause": re.compile(r",\s*(what|how|why)\b[^,]*\?$", re.I).search, "aux_start": _AUX_START.match,
    "tag_question": _TAG.search, "open_imperative": _OPEN_IMPERATIVE.match, "permission": _PERMISSION.match,
    "advice_marker": _ADVICE.search, "imperative_start": _IMPERATIVE.match,
    "lets": re.compile(r"let's|we'll|we've got|we're|today", re.I).match, "reflect_start": _REFLECT.match,
    "tentative": re.compile(r"\b(seems?|sounds?|i wonder|i guess|i imagine|maybe|perhaps)\b", re.I).search,
    "feeling": _FEELING.search, "you_start": re.compile(r"you|your", re.I).match,
    "your_noun": re.compile(r"your \w+( \w+)? (is|was|were|are|came|went|has|have)\b", re.I).match,
    "first_person_i": re.compile(r"\bi\b|\bi'", re.I).search, "praise": _AFFIRM.search,
    "number": _NUMBER.search, "filler": _OTHER.match,
    "words_le3": lambda s: len(s.split()) <= 3, "words_4_8": lambda s: 4 <= len(s.split()) <= 8,
    "words_9_16": lambda s: 9 <= len(s.split()) <= 16, "words_gt16": lambda s: len(s.split()) > 16,
}


def normalise(sentence: str) -> str:
    """The sentence without transcript fillers, stutters and leading discourse markers.

    >>> normalise("So, um, what, what's been happening since we met")
    "what's been happening since we met"
    """
    s = " ".join(sentence.split())
    s = _STUTTER.sub("", _FILLER.sub("", s)).strip(" ,—–-")
    return s if _OTHER.match(s) else _LEAD.sub("", s)


def split_sentences(text: str) -> list[str]:
    """Sentences of an utterance; a question mark ends a sentence too.

    >>> split_sentences("It sounds hard. What would help?")
    ['It sounds hard.', 'What would help?']
    """
    text = " ".join(text.split())
    return [s.strip() for s in _SENT.split(text) if s.strip()] if text else []


def _is_question(s: str) -> bool:
    return s.endswith("?") or s[-1:] not in ".!"  # transcripts often drop the question mark


def _asks(s: str) -> bool:
    """A wh- or yes/no question: "What do you think you should do?" asks; "Why don't you ask her?" advises."""
    question = s.endswith("?") and bool(_WH_START.match(s) or _AUX_START.match(s))
    return question and not re.match(r"why (don't|not)\b", s, re.I)


_RULES: tuple[tuple[str, str, Any], ...] = (  # (name, code, predicate on the normalised sentence), first wins
    ("filler", "other", lambda s: not s or _OTHER.match(s)),
    ("advice_marker", "advice", lambda s: _ADVICE.search(s) and not _asks(s)),
    ("permission_or_tag", "closed_question",
     lambda s: _PERMISSION.match(s) or _TAG.search(s) or re.match(r"on a scale of", s, re.I)),
    ("open_imperative", "open_question", _OPEN_IMPERATIVE.match),
    ("wh_question", "open_question", lambda s: _is_question(s) and _WH_START.match(s) and not _WH_FACT.match(s)),
    ("aux_question", "closed_question", lambda s: _is_question(s) and _AUX_START.match(s)),
)


def _rule(sentence: str) -> tuple[str, str] | None:
    """(rule name, code) of the first rule that fires, else None."""
    s = normalise(sentence)
    return next(((name, code) for name, code, hit in _RULES if hit(s)), None)


def rule_code(sentence: str) -> str | None:
    """The code when a rule is reliable (>= 97% precise on the training split), else None.

    >>> rule_code("Why don't you ask for a trial period?"), rule_code("It sounds hard.")
    ('advice', None)
    """
    return (_rule(sentence) or ("", None))[1]


def _heuristic(sentence: str) -> str:
    """The keyword fallback for sentences no rule decides when no model file is present."""
    s = normalise(sentence)
    if _is_question(s) and (_WH_START.match(s) or s.endswith("?")):
        return "open_question" if _WH_START.match(s) and not _WH_FACT.match(s) else "closed_question"
    hits = ((_IMPERATIVE.match, "advice"), (_AFFIRM.search, "affirmation"), (_REFLECT.match, "reflection"))
    return next((code for hit, code in hits if hit(s)), "information")


def hand_features(sentence: str) -> list[float]:
    """The cheap hand features of one sentence, in the order of ``_HAND``."""
    s = normalise(sentence) or "."
    return [float(bool(f(s))) for f in _HAND.values()]


@functools.lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> dict[str, Any] | None:
    """The stored model (cached; numpy only, no training), or None when the file is missing."""
    if not path.exists():
        return None
    spec = json.loads(path.read_text(encoding="utf-8"))
    if spec["features"]["hand"] != list(_HAND) or spec["features"]["embedding"] != EMBEDDING:
        raise ValueError(f"{path}: features differ from this code's; run `coach code train`")
    spec["W"], spec["b"] = np.asarray(spec["coef"]).T, np.asarray(spec["intercept"])
    return spec


def _embed(texts: list[str]) -> np.ndarray:
    import torch  # heavy: imported on first use, like the embedder (absolute import for `-m doctest`)

    from assistant.embeddings import LocalEmbedder

    # one thread: as fast for a reply's few sentences on an idle laptop, 10x faster on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return np.asarray(LocalEmbedder().embed(texts)).reshape(len(texts), -1)
    finally:
        torch.set_num_threads(threads)


def _design(sentences: list[str], vectors: np.ndarray, scale: float) -> np.ndarray:
    return np.hstack([vectors, scale * np.asarray([hand_features(s) for s in sentences]).reshape(len(vectors), -1)])


_CACHE: dict[tuple[str, str], str] = {}  # the guard and the chain code the same reply; the second is free


def code_batch(sentences: list[str], model_path: Path = MODEL_PATH) -> list[str]:
    """One code per sentence; the sentences no rule decides are embedded in one batch.

    Without a model file the undecided sentences get a keyword heuristic instead (about 0.6 accuracy).
    """
    codes = [_CACHE.get((str(model_path), s)) or rule_code(s) for s in sentences]
    todo = [i for i, c in enumerate(codes) if c is None]
    model = load_model(model_path) if todo else None
    if model is None:
        codes = [c or _heuristic(s) for c, s in zip(codes, sentences, strict=True)]
    else:
        texts = [sentences[i] for i in todo]
        scores = _design(texts, _embed(texts), model["features"]["hand_scale"]) @ model["W"] + model["b"]
        for i, k in zip(todo, scores.argmax(axis=1), strict=True):
            codes[i] = _CACHE[(str(model_path), sentences[i])] = model["classes"][k]
        while len(_CACHE) > 4096:
            _CACHE.pop(next(iter(_CACHE)))
    return [c or "other" for c in codes]


def code_sentence(sentence: str) -> str:
    """One code for one sentence."""
    return code_batch([sentence])[0]


def code_text(text: str) -> list[tuple[str, str]]:
    """(sentence, code) for every sentence of an utterance, coded in one batch."""
    sentences = split_sentences(text)
    return list(zip(sentences, code_batch(sentences), strict=True))


def code_utterances(texts: list[str], model_path: Path = MODEL_PATH) -> list[str]:
    """One code per line (``coach code``): its most informative sentence's, in the order of ``PRIORITY``
    (question > advice > reflection > affirmation > information > other); all sentences in one batch."""
    sentences = [split_sentences(t) or [t] for t in texts]
    flat = iter(code_batch([s for ss in sentences for s in ss], model_path))
    return [min((next(flat) for _ in ss), key=PRIORITY.index) for ss in sentences]


def code_line(text: str) -> str:
    """The code of a whole line; see ``code_utterances``."""
    return code_utterances([text])[0]


def is_open_question(sentence: str) -> bool:
    """True when the sentence is coded an open question."""
    return code_sentence(sentence) == "open_question"


# -- training and evaluation ------------------------------------------------------------------------
def rule_precision(texts: list[str], labels: list[str]) -> dict[str, dict[str, Any]]:
    """How often each rule that fires agrees with the labels (train keeps rules that are >= 0.97)."""
    fired = [(_rule(t) or ("", ""))[0] for t in texts]
    hits = {name: [lab for f, lab in zip(fired, labels, strict=True) if f == name] for name, _, _ in _RULES}
    return {name: {"code": code, "n": len(hits[name]),
                   "precision": round(hits[name].count(code) / len(hits[name]), 4) if hits[name] else None}
            for name, code, _ in _RULES}


def _rows(name: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in DATA[name].read_text(encoding="utf-8").splitlines() if line.strip()]


def split_indices(labels: list[str], seed: int = 13) -> tuple[list[int], list[int]]:
    """(train, test) indices: a stratified split, the same for the same labels and seed."""
    rng, test = np.random.RandomState(seed), set()
    for code in sorted(set(labels)):
        ids = rng.permutation([i for i, c in enumerate(labels) if c == code])
        test.update(ids[: round(len(ids) * TEST_FRACTION)].tolist())
    return [i for i in range(len(labels)) if i not in test], sorted(test)


def _metrics(truth: list[str], pred: list[str]) -> dict[str, Any]:
    labels = [c for c in CODES if c in truth or c in pred]
    m = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(truth, pred, strict=True):
        m[labels.index(t), labels.index(p)] += 1
    prec, rec = np.diag(m) / np.maximum(m.sum(0), 1), np.diag(m) / np.maximum(m.sum(1), 1)
    f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-12)
    per = {c: {"precision": round(float(prec[k]), 4), "recall": round(float(rec[k]), 4),
               "f1": round(float(f1[k]), 4), "support": int(m[k].sum())} for k, c in enumerate(labels)}
    return {"accuracy": round(float(np.trace(m) / max(m.sum(), 1)), 4), "macro_f1": round(float(f1.mean()), 4),
            "per_class": per, "confusion": {"labels": labels, "matrix": m.tolist()}, "n": len(truth)}


def evaluate(split: str = "test", model_path: Path = MODEL_PATH) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class figures and the confusion matrix on "train", "test" or "external".

    A line of several sentences gets ``code_utterances``'s code (the most informative sentence's).
    """
    if split not in ("train", "test", "external"):
        raise ValueError(f"unknown split {split!r}; known: train, test, external")
    rows, model = _rows("external" if split == "external" else "labelled"), load_model(model_path)
    if split != "external":
        train_ids, test_ids = split_indices([r["code"] for r in rows], model["seed"] if model else 13)
        rows = [rows[i] for i in (train_ids if split == "train" else test_ids)]
    pred = code_utterances([r["text"] for r in rows], model_path)
    data_hash = hashlib.sha256(DATA["labelled"].read_bytes()).hexdigest()
    return {"split": split, "model": str(model_path) if model else None,
            "data_matches_model": bool(model and model["data_sha256"] == data_hash),
            **_metrics([r["code"] for r in rows], pred)}


def train(out_path: Path = MODEL_PATH, seed: int = 13) -> dict[str, Any]:
    """Fit the classifier on the training split, choose C and the hand-feature weight by 5-fold
    cross-validation (rules applied, as at run time), write ``out_path`` and report."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits  # BLAS threads fight over 2 busy cores: 40x slower

    rows = _rows("labelled")
    train_ids, _ = split_indices([r["code"] for r in rows], seed)
    texts, y = [rows[i]["text"] for i in train_ids], np.array([rows[i]["code"] for i in train_ids])
    precision, rules = rule_precision(texts, y.tolist()), [_rule(t) for t in texts]
    if weak := [n for n, v in precision.items() if v["n"] and v["precision"] < 0.97]:
        raise ValueError(f"rules below 97% precision on the training split: {weak}; fix or drop them")
    vectors = _embed(texts)
    folds, best = StratifiedKFold(5, shuffle=True, random_state=seed), (-1.0, 0.0, 0.0)
    with threadpool_limits(1):
        for c, scale in [(c, scale) for c in (1.0, 3.0, 10.0, 30.0) for scale in (0.3, 1.0)]:
            clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
            pred = cross_val_predict(clf, _design(texts, vectors, scale), y, cv=folds)
            acc = float(np.mean([(r[1] if r else p) == t for r, p, t in zip(rules, pred, y, strict=True)]))
            best = max(best, (acc, c, scale), key=lambda b: b[0])  # ties keep the smaller C
        acc, c, scale = best
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(_design(texts, vectors, scale), y)
    spec = {"format": 1, "classes": clf.classes_.tolist(), "coef": np.round(clf.coef_, 6).tolist(),
            "intercept": np.round(clf.intercept_, 6).tolist(),
            "features": {"embedding": EMBEDDING, "hand": list(_HAND), "hand_scale": scale},
            "params": {"C": c, "class_weight": "balanced"}, "seed": seed, "test_fraction": TEST_FRACTION,
            "data_sha256": hashlib.sha256(DATA["labelled"].read_bytes()).hexdigest(), "n_train": len(texts),
            "cv_accuracy": round(acc, 4), "rule_precision": precision}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(spec, separators=(",", ":")) + "\n", encoding="utf-8")
    load_model.cache_clear()
    _CACHE.clear()
    return {k: v for k, v in spec.items() if k not in ("coef", "intercept")} | {"path": str(out_path)}
