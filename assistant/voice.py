"""The persona's voice on a model: rephrasing a chosen line, or speaking freely from the card and the scene.

>>> breaks_character("As an AI, I would suggest a plan.")
'mentions being an AI or a role-play'
>>> check_reply("I love this team, but I need a fair hearing.", "", _demo(), revealed=False, free=True) is None
True

Two ways a model may speak for the persona, both checked before anything is shown: ``rephrase`` (a small
model says the chosen scripted line in its own words; ``check_rephrase`` also rejects drifting from the
line) and ``free`` (a strong OpenAI-compatible model answers the manager from the character card and the
scene's state: how open the persona is now, what it has told, facts it must not contradict, with the
chosen line as the gist; ``check_reply`` with ``free=True``). Both reject replies that break character,
coach or advise the manager, narrate the scene, or give the hidden concern away before it is earned; a
rejected or failed reply falls back to the chosen line. The state machine in ``rehearsal`` stays the
referee: this module never changes tension, band or what has been revealed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .personas import Persona

if TYPE_CHECKING:  # langchain is slow to import; only a real model needs it
    from langchain_core.language_models import BaseChatModel

_AI = re.compile(r"\b(ai|a\.i\.|language model|assistant|chatbot|role[- ]?play(?:ing)?|persona|"
                 r"in character|out of character|system prompt|simulation|as your coach)\b", re.I)
_COACHING = re.compile(
    r"(it sounds like you|what i'm hearing|how does that make you feel|what would you like to|"
    r"what do you want to achieve|how can i help|what matters most to you|tell me more about|you should|"
    r"you ought to|have you considered|have you tried|my advice|i suggest you|i recommend|i'd recommend|"
    r"why don't you|what's your goal|what is your goal|what are your options)", re.I)
_ADVICE_WORDS = re.compile(r"\b(you should|you could|you need to|you must|try|consider|make sure|"
                           r"i suggest|i recommend|my advice|why don't you)\b", re.I)
# Narrating the scene instead of speaking in it ("I was in a one-on-one with my manager. She said...").
_NARRATION = re.compile(r"(\b(?:my manager|my boss|one-on-one|she said|he said|they said|i replied|i said|"
                        r"the conversation|the manager)\b|[\"“”]|(?:^|\s)'\w)", re.I)
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|i'll|me|my|mine|myself)\b", re.I)
_WORD = re.compile(r"[a-z][a-z']+")
_STOP = set("""about after again also been being both but can could did does doing done down each even
from have having here into just like more most much must need only other over same should some such than
that their them then there these they this those through very want wants were what when where which while
who will with would your yours it's i'm i've i'd that's don't didn't isn't""".split())


# How open the persona is in each band, said to a free-speaking model.
BAND_VOICE: dict[str, str] = {
    "guarded": "You are guarded: answer what was asked in one short sentence, then deflect. Share no feelings.",
    "neutral": "You are polite but careful: answer what was asked with a fact or two, in one or two sentences.",
    "open": "You feel heard: answer what was asked openly, with a concrete example, in two or three sentences.",
    "reveal": "You now trust your manager enough to tell the real reason behind all this, in your own words: {concern}",
    "agree": "Your manager proposed a next step and you are willing: agree to it concretely, in one or two sentences.",
    "dismissed": "You feel dismissed by what your manager just said: react briefly and coolly, in one sentence.",
}


def breaks_character(text: str) -> str | None:
    """Why a persona reply breaks character (empty, AI/role-play talk, coaching the manager), or None."""
    if not text.strip():
        return "empty reply"
    if _AI.search(text):
        return "mentions being an AI or a role-play"
    if _COACHING.search(text):
        return "coaches the manager"
    return None


def _content(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(text.lower()) if len(w) > 3 and w not in _STOP}


def check_rephrase(text: str, line: str, persona: Persona, revealed: bool) -> str | None:
    """Why a model's rephrasing of ``line`` must be rejected, or None when it may be used."""
    return check_reply(text, line, persona, revealed)


def check_reply(text: str, line: str, persona: Persona, revealed: bool, *, free: bool = False) -> str | None:
    """Why a model's reply must be rejected, or None when it may be used. ``line`` is the chosen line;
    a free reply may leave its words (and ask a plain question), a rephrasing may not."""
    reason = breaks_character(text)
    if reason:
        return reason
    if len(text.split()) > 60:
        return "longer than 60 words"
    if any(len(w) > 18 for w in text.split()):
        return "not plain words"
    if not _FIRST_PERSON.search(text):
        return "not in the first person"
    if _NARRATION.search(text) and not _NARRATION.search(line):
        return "narrates the scene instead of speaking in it"
    if "?" in text and "?" not in line and not free:
        return "asks the manager a question"
    if _ADVICE_WORDS.search(text) and not _ADVICE_WORDS.search(line):
        return "gives the manager advice"
    said = _content(text)
    if not revealed:
        public = _content(" ".join([line, persona.background, persona.wants, persona.role]))
        if len(said & (_content(persona.hidden_concern) - public)) >= 2:
            return "gives away the hidden concern before it is earned"
    wanted = _content(line)
    if not free and wanted and len(said & wanted) < max(1, len(wanted) // 3):
        return "drifts from the chosen line"
    return None


# Constrains the small embedded model to one or two plain first-person sentences without a question.
GRAMMAR = r"""
root ::= "I" word{3,24} [.!] (" " sentence)?
sentence ::= [A-Z] [a-z']* word{2,16} [.!]
word ::= ","? " " [a-zA-Z0-9']+ ("-" [a-zA-Z']+)?
"""


def _demo() -> Persona:
    from .personas import get_persona

    return get_persona("ic-refuses-management")


def speak(model: BaseChatModel, persona: Persona, line: str, message: str, *, band: str, revealed: bool,
          history: list[tuple[str, str]], free: bool, grammar: bool = False) -> tuple[str, str]:
    """The persona's reply and its voice: ``model`` when a checked model reply is used, ``line`` when the
    scripted line is (the check failed), ``fallback`` when the model failed."""
    from langchain_core.messages import HumanMessage, SystemMessage

    rules = ("Stay in character. Speak only as yourself, in the first person, to your manager. "
             "Never give advice, never coach your manager, never mention being an AI.")
    if free:
        concern = persona.hidden_concern if band == "reveal" else ""
        told = (f"You have already told them the real reason: {persona.hidden_concern}" if revealed and band != "reveal"
                else "You have NOT told them the real reason behind this; do not hint at it.")
        system = (f"{persona.card()}\nFacts you must not contradict: {persona.background}\n"
                  f"You are in a one-on-one with your manager. {rules}\n"
                  f"{BAND_VOICE[band].format(concern=concern)}\n{told}")
        said = "\n".join(f"{'Manager' if role == 'user' else persona.name}: {text[:300]}" for role, text in history[-6:])
        prompt = (f"{said}\nManager: {message[:400]}\n\nAnswer what your manager just said, as {persona.name}. "
                  f'If unsure, the gist of your answer is: "{line}"\n{persona.name}:')
    else:
        system = f"{persona.card()}\nYou are in a one-on-one with your manager. {rules} Never ask questions."
        prompt = (f'Your manager said: "{message[:400]}"\n'
                  f'Say this in your own words, in one or two short sentences:\n"{line}"')
    kwargs: dict[str, Any] = {"grammar": GRAMMAR, "max_tokens": 72} if grammar and not free else {}
    try:
        out = model.invoke([SystemMessage(content=system), HumanMessage(content=prompt)], **kwargs)
    except Exception:  # noqa: BLE001 - any model failure falls back to the scripted line, said in the JSON
        return line, "fallback"
    text = " ".join(str(out.content).split()).strip(" \"'")
    text = re.sub(rf"^{re.escape(persona.name)}:\s*", "", text)
    if check_reply(text, line, persona, revealed, free=free) is None:
        return text, "model"
    return line, "line"

