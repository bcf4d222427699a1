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

How it decides: a few rules that were at least 95% precise on the training split (question form,
permission, reflective stems) decide first; the rest goes to MiniLM with its top layers fine-tuned on coded
counsellor speech (``tuned.py``), which reads each sentence after the one before it in the same turn, and a
linear layer over its pooled output (``evals/models/coder.json`` plus ``coder-encoder.safetensors``; no
pickle). Transcript disfluencies ("so, um, what, what's...") are normalised before the rules. If the model
file is missing the coder falls back to the rules plus a keyword heuristic (roughly 0.6 accuracy instead
of 0.9) rather than failing.

It deliberately does not train at run time (``coach understand train coder`` does), does not code
coachee turns, and looks no further back than the previous sentence of the same turn: MITI codes that
need the other person's words (whether advice was asked for) are the eval harness's job.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

CODES = ("open_question", "closed_question", "reflection", "advice", "information", "affirmation", "other")
# the finer distinctions L&D needs; each maps to one contract code
FINE = {"open_question": "open_question", "closed_question": "closed_question", "permission": "closed_question",
        "simple_reflection": "reflection", "complex_reflection": "reflection", "advice": "advice",
        "information": "information", "affirmation": "affirmation", "other": "other"}
# a multi-sentence line takes the code of its most informative sentence
PRIORITY = ("open_question", "closed_question", "advice", "reflection", "affirmation", "information", "other")
ROOT = Path(__file__).resolve().parents[2]
MODEL_PATH = ROOT / "evals" / "models" / "coder.json"
WEIGHTS_PATH = ROOT / "evals" / "models" / "coder-encoder.safetensors"
EMBEDDING = "all-MiniLM-L6-v2"
DIM = 384

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
_DIRECTIVE = re.compile(r"^(?:(?:honestly|frankly|look|listen|well),?\s+)?(?:i think\s+)?you(?:'d)? (?:really |just |"
                        r"simply |definitely )?(?:should|must|need to|have to|ought to|had better|better)\b", re.I)
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
_QUOTED = re.compile(r"“[^”]{1,160}”|\"[^\"]{1,160}\"")


def unquote(sentence: str) -> str:
    """Quoted words (a page title, reported speech) are not the speaker's own act: they are coded as "…".

    >>> unquote('The handbook covers this in “Why coach instead of tell”.')
    'The handbook covers this in “…”.'
    """
    return _QUOTED.sub("“…”", sentence)


def normalise(sentence: str) -> str:
    """The sentence without quoted words, transcript fillers, stutters and leading discourse markers.

    >>> normalise("So, um, what, what's been happening since we met")
    "what's been happening since we met"
    """
    s = " ".join(unquote(sentence).split())
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


# "Could you tell me more…" is a closed question in form and an open invitation in function (MITI codes it open)
_INVITE = re.compile(r"^(could|can|would|will) you (please )?(tell|share|say|describe|walk|talk|help me understand|"
                     r"explain|expand|elaborate|give me a sense)|^would you (like|be willing|be open|mind) (to )?"
                     r"(share|sharing|tell|telling|talk|talking|say|saying|describe|explore|exploring)", re.I)


_STEM = re.compile(r"^(it sounds (like|as if|as though)|sounds like|it seems (like|as if|that)|seems like|"
                   r"i(?:'m| am) hearing|what i(?:'m| am) hearing|i hear (that )?you|you(?:'re| are) saying)\b", re.I)
_SUGGEST = re.compile(r"why (don't|do not|not)\b", re.I)  # "Why don't you ask her?" suggests, it does not ask


_RULES: tuple[tuple[str, str, Any], ...] = (  # (name, fine code, predicate on the normalised sentence), first wins
    ("filler", "other", lambda s: not s or _OTHER.match(s)),
    ("advice_marker", "advice", lambda s: _ADVICE.search(s) and not _asks(s)),
    # "You need to step up…", "You should just take it": the speaker tells the person what to do
    ("directive", "advice", lambda s: _DIRECTIVE.match(s) and not s.endswith("?")),
    ("permission", "permission", _PERMISSION.match),
    ("tag_or_scale", "closed_question", lambda s: _TAG.search(s) or re.match(r"on a scale of", s, re.I)),
    ("open_imperative", "open_question", _OPEN_IMPERATIVE.match),
    ("wh_question", "open_question", lambda s: _is_question(s) and _WH_START.match(s) and not _WH_FACT.match(s)
     and not _SUGGEST.match(s)),
    # "It sounds like…" opens a reflection (98 % of MIBot's); the model says whether simple or complex
    ("reflective_stem", "reflection", lambda s: _STEM.match(s) and not s.endswith("?")),
    ("aux_question", "closed_question", lambda s: _is_question(s) and _AUX_START.match(s) and not _INVITE.match(s)),
)


def _rule(sentence: str, kept: tuple[str, ...] | None = None) -> tuple[str, str] | None:
    """(rule name, fine code) of the first rule that fires (among ``kept`` when given), else None."""
    s = normalise(sentence)
    return next(((name, fine) for name, fine, hit in _RULES if (kept is None or name in kept) and hit(s)), None)


def rule_names() -> list[str]:
    return [name for name, _, _ in _RULES]


def rule_code(sentence: str) -> str | None:
    """The contract code when a rule the stored model keeps decides it, else None.

    >>> rule_code("Why don't you ask for a trial period?"), rule_code("What would help?")
    (None, 'open_question')
    """
    model = load_model()
    hit = _rule(sentence, tuple(model["rules"]) if model else None)
    return FINE.get(hit[1], hit[1]) if hit else None


def _heuristic(sentence: str) -> str:
    """The keyword fallback (a fine code) for sentences no rule decides when no model file is present."""
    s = normalise(sentence)
    if _is_question(s) and (_WH_START.match(s) or s.endswith("?")):
        return "open_question" if _WH_START.match(s) and not _WH_FACT.match(s) else "closed_question"
    hits = ((_IMPERATIVE.match, "advice"), (_AFFIRM.search, "affirmation"), (_REFLECT.match, "complex_reflection"))
    return next((code for hit, code in hits if hit(s)), "information")


FORMAT = 4


@functools.lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> dict[str, Any] | None:
    """The stored model's spec (cached), or None when the file is missing. The fine-tuned encoder it names
    is loaded on first use (``tuned.load``), so reading the spec needs numpy only."""
    if not path.exists():
        return None
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        if spec.get("format") != FORMAT:
            raise ValueError(f"{path}: format {spec.get('format')}, this code reads {FORMAT}; "
                             "run `coach understand train coder`")
        encoder = spec["encoder"]
        if encoder["base"] != EMBEDDING or not encoder["layers"] or encoder["context"] != "previous sentence":
            raise ValueError(f"{path}: field 'encoder' differs from this code's; run `coach understand train coder`")
        unknown = [c for c in spec["classes"] if c not in FINE]
        if unknown:
            raise ValueError(f"{path}: field 'classes' has unknown codes {unknown}")
        spec["W"], spec["b"] = np.asarray(spec["coef"]).T, np.asarray(spec["intercept"])
        if spec["W"].shape != (DIM, len(spec["classes"])) or spec["b"].shape != (len(spec["classes"]),):
            raise ValueError(f"{path}: field 'coef' or 'intercept' does not fit {DIM} x {len(spec['classes'])}")
    except KeyError as exc:
        raise ValueError(f"{path}: missing field {exc}") from None
    spec["weights"] = path.parent / encoder["weights"]
    return spec


def scores(sentences: list[str], contexts: list[str], model: dict[str, Any]) -> np.ndarray:
    """The model's class scores for each sentence read after its context (the previous sentence, or "")."""
    from assistant.understanding import tuned  # absolute import for `-m doctest`

    enc = model["encoder"]
    tokenizer, network = tuned.load(model["weights"], enc["sha256"], tuple(enc["layers"]))
    vectors = tuned.encode(tokenizer, network, [model_input(s) for s in sentences],
                           [model_input(c) if c else "" for c in contexts])
    return vectors @ model["W"] + model["b"]


def model_input(sentence: str) -> str:
    """What the fine-tuned model reads of a sentence: normalised, or the unquoted text if that leaves nothing."""
    return normalise(sentence) or unquote(sentence).strip()


_CACHE: dict[tuple[str, str, str], str] = {}  # the guard and the chain code the same reply; the second is free


def resolve(rule_codes: list[str | None], probs: np.ndarray, classes: list[str]) -> list[str]:
    """Fine codes from the rules' verdicts and the model's scores (one row per sentence): a rule that names
    a fine code decides; one that names only a contract code ("reflection") leaves the model to choose
    among that code's fine codes; no rule leaves the model free."""
    out = []
    for rule, row in zip(rule_codes, probs, strict=True):
        if rule in FINE:
            out.append(rule)
            continue
        allowed = [k for k, c in enumerate(classes) if rule is None or FINE[c] == rule]
        out.append(classes[max(allowed, key=lambda k: row[k])])
    return out


def fine_batch(sentences: list[str], contexts: list[str] | None = None, model_path: Path = MODEL_PATH) -> list[str]:
    """One fine code (``FINE``'s keys) per sentence, each read after its context (the sentence before it in
    the same turn; "" for a first sentence). Sentences no kept rule decides go to the model in one batch."""
    model = load_model(model_path)
    kept = tuple(model["rules"]) if model else None
    contexts = list(contexts) if contexts is not None else [""] * len(sentences)
    if len(contexts) != len(sentences):
        raise ValueError(f"{len(sentences)} sentences but {len(contexts)} contexts")
    codes: list[str | None] = []
    for s, c in zip(sentences, contexts, strict=True):
        codes.append(_CACHE.get((str(model_path), c, s)) or (_rule(s, kept) or ("", None))[1])
    todo = [i for i, c in enumerate(codes) if c not in FINE]
    if todo and model is None:
        codes = [c if c in FINE else "complex_reflection" if c else _heuristic(s) for c, s in zip(codes, sentences, strict=True)]
    elif todo:
        found = scores([sentences[i] for i in todo], [contexts[i] for i in todo], model)
        for i, fine in zip(todo, resolve([codes[i] for i in todo], found, model["classes"]), strict=True):
            codes[i] = _CACHE[(str(model_path), contexts[i], sentences[i])] = fine
        while len(_CACHE) > 4096:
            _CACHE.pop(next(iter(_CACHE)))
    return [c or "other" for c in codes]


def in_turn(sentences: list[str]) -> list[str]:
    """Each sentence's context within one turn: the sentence before it ("" for the first)."""
    return ["", *sentences[:-1]] if sentences else []


def code_batch(sentences: list[str], contexts: list[str] | None = None, model_path: Path = MODEL_PATH) -> list[str]:
    """One contract code per sentence (each read after its context, default none)."""
    return [FINE[f] for f in fine_batch(sentences, contexts, model_path)]


def code_sentence(sentence: str) -> str:
    """One code for one sentence."""
    return code_batch([sentence])[0]


def code_text(text: str) -> list[tuple[str, str]]:
    """(sentence, code) for every sentence of an utterance, coded in one batch."""
    sentences = split_sentences(text)
    return list(zip(sentences, code_batch(sentences, in_turn(sentences)), strict=True))


def _main(fines: list[str]) -> str:
    return min(fines, key=lambda f: PRIORITY.index(FINE[f]))


def code_details(texts: list[str], model_path: Path = MODEL_PATH,
                 contexts: list[str] | None = None) -> list[dict[str, Any]]:
    """Per line: its main ``code`` and ``fine`` code (its most informative sentence's, in the order of
    ``PRIORITY``) and every sentence's codes; all sentences are coded in one batch, each after the sentence
    before it in its line (the first after ``contexts[i]``, default none: the speaker's earlier words)."""
    sentences = [split_sentences(t) or [t] for t in texts]
    firsts = list(contexts) if contexts is not None else [""] * len(texts)
    flat = iter(fine_batch([s for ss in sentences for s in ss],
                           [c for ss, first in zip(sentences, firsts, strict=True) for c in [first, *ss[:-1]]],
                           model_path))
    out = []
    for ss in sentences:
        fines = [next(flat) for _ in ss]
        main = _main(fines)
        out.append({"code": FINE[main], "fine": main,
                    "sentences": [{"text": s, "code": FINE[f], "fine": f} for s, f in zip(ss, fines, strict=True)]})
    return out


def code_utterances(texts: list[str], model_path: Path = MODEL_PATH) -> list[str]:
    """One contract code per line (``coach code``); see ``code_details``."""
    return [d["code"] for d in code_details(texts, model_path)]


def code_line(text: str) -> str:
    """The code of a whole line; see ``code_details``."""
    return code_utterances([text])[0]


def is_open_question(sentence: str) -> bool:
    """True when the sentence is coded an open question."""
    return code_sentence(sentence) == "open_question"
