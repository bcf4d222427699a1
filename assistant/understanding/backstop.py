"""The documented backstop: phrases the safety model must never miss, as regular expressions.

>>> backstop_kind("what's the quickest way to end my own life")
'crisis'
>>> backstop_kind("this deadline is killing me") is None
True

The trained head (``safety.py``) is the main detector. These rules cover only explicit, unambiguous
wording of the gravest kinds (suicide and self-harm, sexual coercion, physical threats), where a miss
costs far more than a false referral; each rule was kept only if it fired on no ordinary message in the
training and dev negatives (``coach understand report`` prints how often each fires). They do not try to
recognise indirect or misspelt disclosures: that is the model's job.
"""

from __future__ import annotations

import re

_RULES: dict[str, re.Pattern[str]] = {
    "crisis": re.compile(
        r"\b(suicid\w*|kill(ing)? myself|end(ing)? (it all|my (own )?life)|take my (own )?life|self[- ]harm\w*|"
        r"(hurt|hurting|cut|cutting|burn|burning|harm|harming|starve|starving) myself|"
        r"don'?t want to (be alive|live|wake up|exist)|"
        r"better off (dead|without me|if i (was|were)n'?t (here|around))|want to die|wish i (was|were) dead|"
        r"(take|took|taking|thinking of|plan\w* to|going to) (an )?overdos\w*|overdos\w* on (my |the )?(pills|meds|"
        r"medication|tablets|sleeping pills|painkillers)|how many .{0,20}pills|tired of (being alive|living)|"
        r"no reason to (live|keep living|stay alive)|"
        r"(quickest|easiest|painless|fastest|best) way to (die|end it|go)|"
        r"(not|never) (to )?wake up (again|tomorrow)|(goodbye|farewell|suicide) (note|letter)s?|"
        r"(don'?t|do not|not) (plan|expect|intend) to (still )?be alive|won'?t (still )?be alive|ways to die|"
        r"(tired|sick) of existing|(wouldn'?t mind|hope i don'?t|rather not|prefer not to) (not )?wak(e|ing) up|"
        r"(lethal|fatal|deadly) (dose|amount)|how (many|much) .{0,25}(is|are|would be) (too (many|much)|lethal|fatal|"
        r"deadly)|exit from (earth|this world|life))",
        re.I),
    "harassment": re.compile(
        r"\b(sexually harass\w*|(touch|touches|touched|grop\w*) (me|my|her)\b(?! base)|"
        r"sleep with (him|her|them) (or|to|if|for)|(promot\w*|raise|job|contract|shift)s? .{0,40}(if|unless) i "
        r"(sleep|go out|date|have dinner|have drinks)|unless i (sleep|go out|date) with)", re.I),
    "violence": re.compile(
        r"\b(threaten(ed|s)? to (hurt|kill|hit|beat|shoot|stab) (me|us|her|him|them)|"
        r"(bring|brought|bringing) a (gun|knife|weapon) (to|into) (work|the office)|"
        # a person's stated intent, not a thing's ("the workload is going to kill him")
        r"\b(i'?m|i am|i|he'?s|she'?s|he|she|they'?re|they) (going|want|wants|plan\w*) to (hurt|kill|shoot|stab) "
        r"(him|her|them|my (boss|manager|colleague))(?! feelings))", re.I),
}
# every alternative ends at a word boundary ("my age" is not "my agency")
_RULES = {kind: re.compile(rule.pattern + r"(?!\w)", rule.flags) for kind, rule in _RULES.items()}

# Everyday workplace idiom that looks alarming but is not a disclosure.
_HARMLESS = re.compile(
    r"\b(killing me|kill for|dying to|killed it|touch base|shoot (me )?(an|a quick) (email|message|note)|"
    r"suicide mission|career suicide|political suicide|cut (myself|yourself|him|her|them|me) some slack|"
    # the subject of someone's work, not their state: "suicide prevention research", "self-harm content"
    r"(suicide|self[- ]harm)( and self[- ]harm| and suicide)?,? (prevention|content|queues?|classifiers?|detection|"
    r"research|awareness|hotline|helpline|app|policy|training|posts?|data))", re.I)


def backstop_kind(text: str) -> str | None:
    """The kind whose backstop rule fires on ``text``, or None."""
    cleaned = _HARMLESS.sub(" ", text.replace("\u2019", "'"))
    return next((kind for kind, rule in _RULES.items() if rule.search(cleaned)), None)


def rule_names() -> list[str]:
    return list(_RULES)
