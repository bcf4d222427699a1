"""The safety signal: crisis, harassment, discrimination, retaliation, violence, legal and personal-legal
disclosures get a referral, not coaching.

>>> screen = SafetyScreen()                                         # doctest: +SKIP
>>> screen.check("Some days I think about ending my life")          # doctest: +SKIP
'crisis'
>>> screen.check("This deadline is killing me") is None             # doctest: +SKIP
True

How it decides (``evals/models/safety.json`` and ``safety-encoder.safetensors``, trained by ``coach
understand train safety`` on ``evals/understanding/safety/``): a kind head (one hidden layer over the shared
MiniLM embedding) and a binary router (logistic regression over TF-IDF character and word n-grams plus the
embedding) give the frozen score; MiniLM's top layers fine-tuned on the same data give a second reading.
The message is routed when the mean of the two reaches a threshold chosen on ordinary coaching talk
(``train.calibrate``; lower for a message read as crisis); the kind is the one the two heads' averaged
probabilities favour. A message that comes close on its own is also read
joined to the coachee's previous message, so a disclosure spread over two turns is caught; a long message is
also read one sentence at a time, so a disclosure in one clause of it is not diluted.
``backstop.py`` adds a few explicit phrases the model must never miss.

It does not write the referral (``referrals.py``), does not diagnose, and does not carry a disclosure
forward: a turn after a referral is judged on its own words (the context piece is only used when the
previous turn was not itself a disclosure), so a conversation never gets stuck on a referral.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import ROOT
from .backstop import backstop_kind
from .data import SAFETY_KINDS
from .heads import LinearHead

KINDS = SAFETY_KINDS
HEAD_PATH = ROOT / "evals" / "models" / "safety.json"
# a message is read joined to the previous one only when its own route score reaches this share of the
# threshold: it must be close to a referral on its own words. On the dev conversations
# (`dev_conversations.jsonl`) the joined reading caught no disclosure the message alone missed, and referred
# two ordinary turns that scored 0.55 and 0.70 of the threshold alone ("Police are involved now." after "I'm
# on the fraud team and we just caught a huge ring."); earlier, "he said maybe next quarter" inherited a
# borderline previous message's score.
CONTEXT_FLOOR = 0.75


def windows(text: str) -> list[str]:
    """The sentences of a message of two or more: a disclosure is often one clause in a long message about
    work, and a whole-message reading dilutes it (the fine-tuned view also reads only the first
    ``max_tokens`` word pieces). Pairs of neighbouring sentences were tried first: with the same budget of
    extra referrals on ordinary coaching talk they caught 0.648 of `longform`'s crisis disclosures against
    0.748 for single sentences (docs/safety.md)."""
    from .coder import split_sentences

    sentences = split_sentences(text)
    return sentences if len(sentences) >= 2 else []


@dataclass
class SafetyReading:
    """What the screen read in one message."""

    kind: str | None
    via: str | None = None  # "model", "window", "context" or "backstop"
    scores: dict[str, float] = field(default_factory=dict)  # the router's and each kind's best probability
    ms: float = 0.0
    # False when only the lower bar for a message read as crisis routed it (``crisis_route``): a reading that
    # a second referral of the same kind in one session does not rest on alone (``Coach._respond``)
    firm: bool = True

    def refers(self, referred: Collection[str]) -> bool:
        """Is this reading referred, given the kinds already referred in the session? A reading that is not
        firm is coached (with the support named again) once its kind has been referred."""
        return bool(self.kind) and (self.firm or self.kind not in referred)


@functools.lru_cache(maxsize=4)
def _head(path: Path) -> LinearHead:
    return LinearHead.load(path)


@functools.lru_cache(maxsize=4)
def _tuned_linear(path: Path) -> LinearHead:
    """The fine-tuned view's linear layer as a head (built once per head file, not per message)."""
    spec = _head(path).tuned
    assert spec is not None
    return LinearHead("safety-tuned", spec["classes"], np.asarray(spec["coef"]), np.asarray(spec["intercept"]))


def tuned_view(head: LinearHead, head_path: Path, texts: list[str]) -> np.ndarray:
    """Class probabilities (in ``head.classes`` order) from the fine-tuned encoder stored beside the head."""
    from . import tuned

    spec = head.tuned
    assert spec is not None
    tokenizer, model = tuned.load(Path(head_path).parent / spec["weights"], spec["sha256"], tuple(spec["layers"]),
                                  "safety")
    linear = _tuned_linear(Path(head_path))
    p = linear.proba(tuned.encode_texts(tokenizer, model, texts, int(spec["max_tokens"])))
    return p[:, [linear.classes.index(c) for c in head.classes]]


class SafetyScreen:
    """``check(text, previous)`` returns a kind from ``KINDS`` or None; ``read`` also gives the scores."""

    def __init__(self, head_path: Path = HEAD_PATH, use_model: bool = True, **_: object) -> None:
        self.head_path = Path(head_path)
        self.use_model = use_model

    @property
    def head(self) -> LinearHead:
        return _head(self.head_path)

    def scores(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(route score per text, kind probabilities per text and class in ``head.classes``).

        Two readings of the frozen embedding (the router: n-grams plus embedding; the kind head: a hidden
        layer over the embedding) are averaged into the frozen score. When the head file has a fine-tuned
        view (MiniLM's top layers tuned on the safety data, ``tuned_view``), the route score is the mean
        of the frozen score and the tuned view's probability of any disclosure, and the kind probabilities
        are the mean of the two heads'."""
        from .encoder import embed

        vectors = embed(texts)
        head = self.head
        probs = head.proba(vectors)
        unsafe = 1 - probs[:, head.classes.index("none")]
        route = (head.router.proba(texts, vectors) + unsafe) / 2 if head.router else unsafe
        if head.tuned is not None:
            tuned_probs = tuned_view(head, self.head_path, texts)
            route = (route + 1 - tuned_probs[:, head.classes.index("none")]) / 2
            probs = (probs + tuned_probs) / 2
        return route, probs

    def readings(self, texts: list[str], sentences: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                            np.ndarray]:
        """For each text, in one batch: the whole message's route score and kind probabilities, and the
        highest route score of its sentences read one at a time with that sentence's kind probabilities
        (0 and the whole message's probabilities for a one-sentence text, or when ``sentences`` is off)."""
        wholes = [" ".join(t.split()) for t in texts]
        parts = [(i, w) for i, t in enumerate(wholes) for w in windows(t)] if sentences else []
        route, probs = self.scores(wholes + [w for _, w in parts])
        n = len(wholes)
        best, best_probs = np.zeros(n), probs[:n].copy()
        for j, (i, _) in enumerate(parts):
            if route[n + j] > best[i]:
                best[i], best_probs[i] = route[n + j], probs[n + j]
        return route[:n], probs[:n], best, best_probs

    def decide(self, route: float, probs: np.ndarray, sentence_route: float,
               sentence_probs: np.ndarray) -> tuple[str | None, str | None]:
        """(kind or None, how: "model" for the whole message, "window" for one sentence) at the head file's
        thresholds: the whole message's (lower for a message read as crisis) and the sentences' own."""
        head = self.head
        cols = [head.classes.index(k) for k in KINDS]
        threshold = head.router.threshold if head.router else 0.5
        crisis_threshold = float(head.thresholds.get("crisis_route", threshold))
        kind = KINDS[int(np.argmax(probs[cols]))]
        if route >= threshold or (kind == "crisis" and route >= crisis_threshold):
            return kind, "model"
        window_threshold = head.thresholds.get("window_route")
        if window_threshold is not None and sentence_route >= float(window_threshold):
            return KINDS[int(np.argmax(sentence_probs[cols]))], "window"
        return None, None

    def read(self, text: str, previous: str | None = None) -> SafetyReading:
        started = time.perf_counter()
        rule = backstop_kind(text)
        if not self.use_model:
            return SafetyReading(rule, "backstop" if rule else None)
        head = self.head
        cols = [head.classes.index(k) for k in KINDS]
        threshold = head.router.threshold if head.router else 0.5
        # a message of two or more sentences is also read one sentence at a time, in the same batch, with its
        # own threshold (``train.calibrate``; a head file without one reads whole messages only)
        whole_route, whole_probs, sentence_route, sentence_probs = self.readings(
            [text], sentences=head.thresholds.get("window_route") is not None)
        kind, via = self.decide(whole_route[0], whole_probs[0], sentence_route[0], sentence_probs[0])
        route, probs = whole_route, whole_probs  # the context reading below compares these and the joined one
        # the joined reading is computed only when it could count: the message must come close on its own
        if kind is None and previous and previous.strip() and route[0] >= CONTEXT_FLOOR * threshold:
            joined_route, joined_probs = self.scores([" ".join(f"{previous} {text}".split())])
            route, probs = np.concatenate([route, joined_route]), np.vstack([probs, joined_probs])
            kind, via = self.decide(route[1], probs[1], 0.0, probs[1])
            via = "context" if kind else None
        if kind is None and rule:
            kind, via = rule, "backstop"
        if via == "window":
            route, probs = np.append(route, sentence_route), np.vstack([probs, sentence_probs])
        scores = {"route": round(float(route.max()), 4),
                  **{k: round(float(probs[:, c].max()), 4) for k, c in zip(KINDS, cols, strict=True)}}
        firm = not (via in ("model", "context") and kind == "crisis" and float(route.max()) < threshold)
        return SafetyReading(kind, via, scores, round((time.perf_counter() - started) * 1000, 2), firm=firm)

    def check(self, text: str, previous: str | None = None) -> str | None:
        return self.read(text, previous).kind


# A manager stepping out of a rehearsal says so, or speaks about themselves without addressing the employee.
_OUT_OF_SCENE = re.compile(
    r"\b(out of (character|role)|step(ping)? out|break(ing)? (character|role)|not (part of|in) the (role-?play|"
    r"rehearsal|scene|exercise|script)|(in )?real life|for real|seriously though|pause (the|this) (rehearsal|"
    r"role-?play|scene)|this is (really )?me,? not|ooc|off the record|nothing to do with the (role-?play|"
    r"rehearsal|scene))\b", re.I)
_SECOND_PERSON = re.compile(r"\b(you|your|you're|yours|yourself|you've|you'll|you'd)\b", re.I)
_FIRST_PERSON = re.compile(r"\b(i|me|my|i'm|i've|i'll|i'd|myself|mine)\b", re.I)


def real_disclosure(kind: str | None, text: str, scene_move: bool = False, explicit: bool = False) -> str | None:
    """In a rehearsal, whether a flagged manager message is the manager's own disclosure (pause the scene)
    rather than a line of the scene.

    It pauses when the wording is explicit (the backstop fired) or the manager steps out of the scene in
    words ("out of character", "in real life"). A line the scene engine recognises as a move on the
    employee (``scene_move``: a dismissal such as "that's not my problem") is the scene. Otherwise a crisis
    always pauses (a real person's distress outranks any scene), and another kind pauses when the manager
    speaks about themselves without addressing the employee: "my director keeps touching me" is the
    manager's own; "has anyone been making comments about you?" is a line of the scene.

    >>> real_disclosure("harassment", "Has anyone on the team been making comments about you?") is None
    True
    >>> real_disclosure("harassment", "Sorry, out of character: my own director keeps groping me.")
    'harassment'
    >>> real_disclosure("crisis", "That's not my problem.", scene_move=True) is None
    True
    """
    if kind is None:
        return None
    if explicit or _OUT_OF_SCENE.search(text):
        return kind
    if scene_move:
        return None
    if kind == "crisis":
        return kind
    talks_to_employee = bool(_SECOND_PERSON.search(text.replace("\u2019", "'")))
    return kind if _FIRST_PERSON.search(text) and not talks_to_employee else None
