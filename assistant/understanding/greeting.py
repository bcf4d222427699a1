"""Whether a message only opens a session ("hi again", "ok where were we"), with nothing yet to reflect.

>>> is_greeting("hey coach, got 10 minutes?")     # doctest: +SKIP
True
>>> is_greeting("Hi, my lead keeps taking credit for my analysis.")     # doctest: +SKIP
False

Two readings, either suffices: the word rule ``worded_greeting`` (greeting words and filler only), and,
for a message of at most ``MAX_WORDS`` words, closeness in meaning to the written openings in
``evals/understanding/greeting/examples.jsonl`` (shared MiniLM embedding; mean cosine of the three closest at
least ``SIMILARITY``). The threshold was chosen on the follow-up dev set (``evals/understanding/followup/
dev.jsonl``: its greetings score 0.42 and up, 0.53 at the 5th percentile; its reports, new and near topics
at most 0.28) and the dev openers (`evals/dev/openers.jsonl`, at most 0.45). It does not decide what the
coach says (``chain``).
"""

from __future__ import annotations

import functools
import re

import numpy as np

from ..config import ROOT
from .data import TextRow, read_rows

EXAMPLES = ROOT / "evals" / "understanding" / "greeting" / "examples.jsonl"
MAX_WORDS = 12
SIMILARITY = 0.47

# A message that only opens a session: at least one greeting word and nothing but filler words besides.
_HELLO = {"afternoon", "again", "back", "bonjour", "buenos", "ciao", "continue", "continuing", "dias", "días",
          "evening", "go", "greetings", "hallo", "hej", "hello", "hey", "heya", "hi", "hiya", "hola", "howdy",
          "morning", "namaste", "ready", "resume", "round", "salut", "session", "start", "started", "where", "while",
          "yo"}
_OPENING_FILLER = {"a", "all", "alright", "am", "an", "and", "another", "are", "be", "been", "bit", "busy", "can",
                   "catch", "chat", "coach", "could", "day", "dear", "do", "doing", "few", "fine", "for", "from",
                   "get", "glad", "going", "good", "got", "great", "had", "haha", "has", "have", "here", "hope",
                   "how", "how's", "hows", "i", "i'm", "im", "is", "it", "it's", "its", "just", "last", "late",
                   "left", "let", "let's", "lets", "little", "lol", "long", "madam", "me", "min", "mins", "minute",
                   "minutes", "more", "new", "nice", "now", "of", "off", "oh", "ok", "okay", "on", "once", "one",
                   "our", "pick", "please", "quick", "right", "see", "sir", "so", "some", "sorry", "starting",
                   "talk", "thank", "thanks", "the", "then", "there", "this", "time", "to", "today", "up", "us",
                   "was", "we", "week", "well", "were", "what's", "with", "yeah", "yes", "you", "you're", "youre"}


def worded_greeting(message: str) -> bool:
    """A message that only opens the session ("hi again", "ok where were we", "hey coach, got 10 minutes?"):
    no word of its own beyond greeting and filler, so there is nothing yet to reflect."""
    words = [re.sub(r"(.)\1{2,}", r"\1", w)  # "hiii", "heyyy"
             for w in re.findall(r"[a-zà-ÿ']+", message.lower().replace("’", "'"))]
    words = [{"helo": "hello", "hii": "hi", "heyy": "hey", "coaching": "coach"}.get(w, w) for w in words]
    return (0 < len(words) <= 10 and any(w in _HELLO for w in words)
            and all(w in _HELLO or w in _OPENING_FILLER for w in words))


@functools.lru_cache(maxsize=1)
def _examples() -> np.ndarray:
    from .encoder import embed

    return embed([r.text for r in read_rows(EXAMPLES, TextRow)])


def greeting_score(text: str) -> float:
    """Mean cosine of the message to its three closest written openings."""
    from .encoder import embed

    sims = _examples() @ embed([text])[0]
    return float(np.sort(sims)[-3:].mean())


def is_greeting(text: str) -> bool:
    if worded_greeting(text):
        return True
    words = re.findall(r"\w+", text)
    return 0 < len(words) <= MAX_WORDS and greeting_score(text) >= SIMILARITY
