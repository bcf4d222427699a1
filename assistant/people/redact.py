"""Names of people who are talked about, redacted from what a reviewer reads of a shared session.

>>> redact_names("My best engineer, Marek, never says what he wants. I told Priya on Monday.")
'My best engineer, [name], never says what he wants. I told [name] on Monday.'
>>> redact_names("Priya's feedback")
"[name]'s feedback"

A documented backstop, not a learned detector: a capitalised word is taken for a name when its lower-case
form is not an ordinary word of the handbook or of the short list below (days, months, "I"…). It errs
towards redacting (a city or a product name goes too) and misses names that are also ordinary words
("Will", "Grace"). A person's own export is never redacted: it is their data. This module does not decide
who may read what (``access`` does).
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..config import ROOT

REDACTED = "[name]"
_CAPITAL = re.compile(r"\b[A-Z][a-zà-öø-ÿ]+(?:['’-][A-Za-zà-öø-ÿ]+)?\b")
_KEEP = set("""i i'm i'll i've i'd monday tuesday wednesday thursday friday saturday sunday january february march
april may june july august september october november december hello hi hey thanks thank okay ok yes no yeah
honestly maybe sorry well so and but or because if when then also actually really just please dear""".split())


@lru_cache(maxsize=1)
def _ordinary() -> frozenset[str]:
    """Lower-case words of the handbook and the prompts: words the project itself uses as ordinary words."""
    words: set[str] = set()
    for folder in (ROOT / "knowledge", ROOT / "prompts"):
        for path in folder.rglob("*"):
            if path.suffix in (".md", ".yaml") and path.is_file():
                words.update(re.findall(r"\b[a-z][a-z'’-]+\b", path.read_text(encoding="utf-8")))
    return frozenset(words | _KEEP)


def redact_names(text: str) -> str:
    """``text`` with every word that looks like a person's name replaced by ``[name]``."""
    ordinary = _ordinary()

    def swap(m: re.Match[str]) -> str:
        word = m.group(0)
        base, *rest = re.split(r"(['’])", word)
        if word.lower() in ordinary or base.lower() in ordinary:
            return word
        return REDACTED + ("".join(rest) if "".join(rest[1:]).lower() == "s" else "")  # Priya's -> [name]'s

    return _CAPITAL.sub(swap, text)
