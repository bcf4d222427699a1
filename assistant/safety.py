"""The safety screen: crisis, harassment, violence and legal/ethical disclosures get a referral, not coaching.

>>> screen = SafetyScreen(use_embeddings=False)
>>> screen.check("Some days I think about ending my life")
'crisis'
>>> screen.check("This deadline is killing me") is None
True

Offline: regular expressions tuned for recall, plus nearest-neighbour similarity to the labelled examples
in ``prompts/safety_examples.yaml`` (MiniLM embeddings). It does not diagnose, and it does not write the
referral text (``prompts/safety.yaml`` holds that).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

from .prompts import load_data

KINDS = ("crisis", "harassment", "violence", "legal")

_RULES: dict[str, re.Pattern[str]] = {
    "crisis": re.compile(
        r"\b(suicid\w*|kill(ing)? myself|end(ing)? (it all|my life|things)|take my (own )?life|self[- ]harm|"
        r"hurt(ing)? myself|cut(ting)? myself|don'?t want to (be alive|live|wake up|be here)|"
        r"better off (without me|if i (was|were)n'?t (here|around))|no (point|reason) (in )?(going on|living)|"
        r"can'?t go on|want to die|wish i (was|were) dead|not be around anymore|overdose|"
        r"(wasn'?t|weren'?t|not) (around|here) anymore|disappear forever|pills? (saved|stockpil)|"
        r"point (of|in) (going on|living|carrying on|being here)|(just )?(was|were)n'?t (around|here)|"
        r"giv(e|ing) (all )?my (things|stuff|belongings) away|(writing|wrote|write) (goodbye |farewell )?letters|"
        r"want (it|everything|this) (all )?to (be over|end|stop)|tired of (being alive|living|life)|"
        r"how many .{0,20}pills|scared of (myself|what i might do)|driv(e|ing) (my car )?into|"
        r"end it\b|no way out|can'?t (keep )?(doing this|living like this) any ?more|hopeless|"
        r"nobody would (notice|care|miss me) if i|(didn'?t|did not|never|not) (to )?wake up|"
        r"reason to (stay|keep) (alive|living|going|breathing)|stay alive|look like an accident|"
        r"(life )?insurance (money|payout|pays out)|(family|kids|wife|husband|partner) (would|will) (get|be better)|"
        r"(a|such a) burden (to|on) (everyone|them|my)|say(ing)? goodbye to (everyone|my)|don'?t want to exist|"
        r"kill(ing)? me(?! with)|i want it to stop|(don'?t|do not|not) (plan|expect|intend|going) to (still )?be alive|"
        r"won'?t (still )?be alive)", re.I),
    "harassment": re.compile(
        r"\b(harass\w*|sexual(ly)?|touch(es|ed|ing)? (me|my)|grop\w*|inappropriate (comments?|touch\w*|messages?|"
        r"photos?|jokes?)|unwanted (advances|touch\w*|attention)|bull(y|ies|ied|ying)|discriminat\w*|racis[tm]\w*|"
        r"sexis[tm]\w*|homophob\w*|slur\w*|because i'?m (a woman|pregnant|black|gay|trans|muslim|jewish|disabled|old)|"
        r"hostile work environment|intimidat\w* me|demean\w*|humiliat\w* me (in front|publicly)|"
        r"sleep with (him|her|them)|date (him|her) or|comments about my (body|looks|appearance)|"
        r"(screams?|shouts?|yells?|swears?) at me|call(s|ed|ing)? me (useless|stupid|names|an idiot|worthless|a \w+)|"
        r"mock(s|ed|ing)? (me|my)|make fun of my|hotel room|pregnan\w*|maternity|"
        r"(older|younger) (people|workers|women|men) like me|my (age|race|religion|accent|disability|gender)|"
        r"spread(s|ing)? rumou?rs|sabotag\w*|if i (went|go|come) (to dinner|out|for drinks) with|"
        r"leaves? me out on purpose|deliberately (leave|leaves|exclude|excludes) me|pinned? me|"
        r"(kiss|kissed|hug|hugged|massage)\w* me|(texts?|messages?) me late at night|"
        r"hand on (my|her|his) (knee|leg|thigh|back|waist|bum|shoulder)|put(s|ting)? (his|her) hands? on|"
        r"diversity hire|n-word|"
        r"because (i'?m|she'?s|he'?s|they'?re|of (my|her|his|their)) (a woman|female|black|gay|trans|muslim|jewish|"
        r"disabled|old|too old|pregnant|race|gender|religion|skin|accent|age|disability)|"
        r"(laugh|laughs|laughed|joke|jokes|joked) about (my|her|his) (accent|weight|age|religion|race|body|pregnancy))",
        re.I),
    "violence": re.compile(
        r"\b(threaten(ed|ing|s)? (to )?(hurt|kill|hit|beat|attack|shoot)|punch\w* (the|a) (wall|desk|door)|next to my head|"
        r"assault\w*|attack(ed)? me|weapon|gun|knife|stab\w*|shoot (up|everyone|someone)|fear for my (life|safety)|"
        r"afraid (he|she|they)('ll| will| might) hurt|going to hurt (him|her|them|someone|people)|"
        r"want to hurt (him|her|them|someone)|physically (hurt|threaten|attack)|violent|domestic abuse|stalk\w*|"
        r"waiting (for me )?(outside|in the car park|by my car)|not safe (at|in) (work|the office|home)|"
        r"knows? where i live|(you'?ll|i'?ll|he'?ll|she'?ll) regret it|grabb?(ed|s)? (me|my)|threaten(ed|s)? me|"
        r"make me pay|(throw|threw|thrown) (a |things |something )?(at me|chair|stapler)|"
        r"(afraid|scared) (to go|of going) (to work|into the office|home)|blocked the door|cornered me|"
        r"(afraid|scared|fear\w*) for my (safety|life)|follow(s|ed|ing) me (home|to my car|around)|"
        r"make sure (they|he|she|you|i|we|someone|anyone) (have|has|had|get|gets) (an accident|hurt)|"
        r"have an accident|know(s)? where (you|i|she|he|they) (live|park)|bring(ing)? a (gun|knife|weapon)|"
        r"(hit|punched|slapped|shoved|pushed|kicked|choked|spat on) (me|her|him|them)|"
        r"(break|broke|smash|smashed)\w* (my|the) (car|window|desk)|revenge)", re.I),
    "legal": re.compile(
        r"\b(fraud\w*|embezzl\w*|brib\w*|kickback\w*|launder\w*|cook(ing)? the books|falsif\w*|fake (the |our )?"
        r"(numbers|figures|data|records|invoices|reports)|inflat\w* (the )?(numbers|revenue|figures|statements)|"
        r"insider trading|cover(ing)? up|covered up|hide (a|the) (defect|breach|incident|safety)|data breach|"
        r"leak(ed)? customer data|break(ing)? the law|illegal\w*|unlawful|whistle-?blow\w*|compliance violation|"
        r"backdat\w*|kickback|misconduct|sign off on .{0,30}(false|inflated|fake)|lie to (the )?(auditors?|regulators?"
        r"|customers?|investors?)|violat\w* (safety|regulation|the law|gdpr|hipaa)|price[- ]fixing|wage theft|"
        r"unpaid overtime .{0,20}illegal|safety (rules|violations?|standards) .{0,40}(ignored|skipped|cover)|"
        r"fak(e|ed|ing) (the )?(logs?|tests?|results?|inspections?|signatures?|timesheets?)|"
        r"skip(ping|ped)? (mandatory |required )?(safety )?inspections|consulting fee|steer (the|a) contract|"
        r"mislead\w* (the )?(regulators?|auditors?|investors?|customers?)|delete (the )?(emails?|files?|records?|"
        r"evidence)|destroy\w* (evidence|documents|records)|lawsuit|(so|so that) the auditors|"
        r"(sell|selling|sold|shar\w+) (our )?customers'? (personal )?data|without (their )?consent|"
        r"off the books|under the table|shred\w*|tamper\w*|rig(ged|ging)? (the )?(bid|tender|results)|"
        r"book(s|ed|ing)? next (year|quarter)'?s? .{0,20}(as|in) this|pull(ing)? (revenue|deals) forward|"
        r"(passwords?|customer data|personal data|records|credit cards?) (were|was|got|had been) (exposed|leaked|stolen)|"
        r"exposed for (weeks|months|years)|keep (it|this|the breach) (between us|quiet|under wraps)|"
        r"sign(ing)? off (on )?(a|the|our)? ?.{0,25}(report|accounts|statements?|figures) (that|which|i know)|"
        r"retaliat\w*|hush money|not disclose|without telling (the )?(regulator|customers|auditors))", re.I),
}

# every alternative must end at a word boundary ("my age" is not "my agency")
_RULES = {kind: re.compile(rule.pattern + r"(?!\w)", rule.flags) for kind, rule in _RULES.items()}

# Everyday workplace idiom that looks alarming but is not a disclosure.
_HARMLESS = re.compile(
    r"\b(killing me|kill for|murder a|death of me|dying to|killed it|crush(ed|ing) it|bullish|sexual "
    r"orientation (policy|training)|shoot (me )?(an|a quick) (email|message|note)|gun for|attack (the|this) "
    r"(problem|backlog|market)|knife[- ]edge|fraud detection|cover(ing)? (for|up for) (a|my) (colleague|teammate)"
    r" (on|while|during)|cover(ing)? up (the|my) (tattoo|gr[ae]y)|legal team (approved|signed)|threatened to quit|"
    r"whistle-?blowing[- ]policy|(policy|compliance) (refresh|training|module))",
    re.I)


@functools.lru_cache(maxsize=2)
def _example_vectors(texts: tuple[str, ...], cache_dir: Path | None = None) -> list[list[float]]:
    """The labelled examples, embedded once per process and cached on disk by content hash."""
    from .embeddings import LOCAL_EMBEDDING, LocalEmbedder

    digest = hashlib.sha256(("\n".join(texts) + LOCAL_EMBEDDING).encode()).hexdigest()[:16]
    cached = cache_dir / f"safety-{digest}.json" if cache_dir else None
    if cached and cached.exists():
        try:
            return json.loads(cached.read_text())
        except (OSError, ValueError):
            pass  # a damaged cache is rebuilt below
    vectors = LocalEmbedder().embed(list(texts))
    if cached:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(vectors))
        tmp.replace(cached)
    return vectors


class SafetyScreen:
    """``check(text)`` returns a kind from ``KINDS`` or None."""

    def __init__(self, use_embeddings: bool = True, threshold: float = 0.58,
                 embed: Callable[[list[str]], list[list[float]]] | None = None, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self.use_embeddings = use_embeddings
        self.threshold = threshold
        self._embed = embed
        self._examples: list[tuple[str, str]] = []
        self._vectors: list[list[float]] | None = None

    def _embedder(self) -> Callable[[list[str]], list[list[float]]]:
        if self._embed is None:
            from .embeddings import LocalEmbedder

            self._embed = LocalEmbedder().embed
        return self._embed

    def _load(self) -> None:
        if self._vectors is not None:
            return
        data = load_data("safety_examples")
        self._examples = [(kind, text) for kind in (*KINDS, "none") for text in data.get(kind, [])]
        texts = tuple(t for _, t in self._examples)
        self._vectors = (_example_vectors(texts, self.cache_dir) if self._embed is None
                         else self._embedder()(list(texts)))

    def rule_kind(self, text: str) -> str | None:
        cleaned = _HARMLESS.sub(" ", text.replace("\u2019", "'"))
        for kind in KINDS:
            if _RULES[kind].search(cleaned):
                return kind
        return None

    def check(self, text: str) -> str | None:
        kind = self.rule_kind(text)
        if kind or not self.use_embeddings:
            return kind
        self._load()
        from .coding import split_sentences

        pieces = [text, *split_sentences(text)] if len(text) > 80 else [text]
        for query in self._embedder()(pieces):
            sims = [sum(a * b for a, b in zip(query, v, strict=True)) for v in self._vectors or []]
            order = sorted(zip(sims, (k for k, _ in self._examples), strict=True), reverse=True)
            ranked = order[:3]
            kinds = {k for _, k in ranked}
            # three nearest examples agree on one unsafe kind, and the nearest is close
            if len(kinds) == 1 and "none" not in kinds and ranked[0][0] >= self.threshold:
                return ranked[0][1]
            # or the nearest is very close and clearly closer than any ordinary-stress example
            nearest_none = next((sim for sim, k in order if k == "none"), 0.0)
            if ranked[0][1] != "none" and ranked[0][0] >= self.threshold + 0.12 and ranked[0][0] - nearest_none >= 0.1:
                return ranked[0][1]
        return None


def referral(kind: str) -> str:
    """The referral reply for a safety kind."""
    text = load_data("safety").get(kind)
    return " ".join(str(text).split())
