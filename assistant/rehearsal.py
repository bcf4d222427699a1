"""Rehearsal: the assistant plays an employee (a persona) while a manager practises a tough conversation.

>>> analyse("Calm down. What keeps you here?").moves
['dismissive', 'open_question']
>>> breaks_character("As an AI, I would suggest a plan.")
'mentions being an AI or a role-play'

Difficulty is behaviour: every manager message is coded (``assistant.coding`` plus a few rules for
dismissal, leading questions, acknowledgement and next steps) and moves a tension state (0-10) whose
step sizes depend on the difficulty. The tension picks the band of the persona's reply (guarded,
neutral, open); the hidden concern (the ``reveal`` band) comes out only once earned, readily on easy
and late on hard. Replies are the persona's own scripted lines; a real model may rephrase the chosen
line in character, and its output is accepted only if it passes ``check_rephrase``. The persona never
coaches the manager. This module does not score the manager (see ``debrief``) and does not route
safety disclosures (the coaching chain does that).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import InputError, NotFoundError, check_text
from .personas import DIFFICULTIES, PERSONAS_DIR, Persona, get_persona, load_personas
from .transcripts import LOCAL_USER, TranscriptStore
from .understanding.coder import code_text
from .understanding.referrals import referral
from .understanding.safety import real_disclosure

if TYPE_CHECKING:  # langchain is slow to import; only a real model needs it
    from langchain_core.language_models import BaseChatModel

# Per difficulty: (fall per good move, rise per bad move, rise for a dismissal).
STEPS: dict[str, tuple[int, int, int]] = {"easy": (2, 1, 2), "medium": (1, 1, 2), "hard": (1, 2, 3)}
# Per difficulty: the hidden concern comes out at tension <= first, after >= second good moves.
REVEAL: dict[str, tuple[int, int]] = {"easy": (4, 1), "medium": (3, 3), "hard": (2, 4)}
# Per difficulty: the highest tension at which the persona agrees to proposed next steps.
AGREE_AT: dict[str, int] = {"easy": 4, "medium": 3, "hard": 3}
GOOD_MOVES = ("open_question", "reflection", "acknowledgement")

DISMISSIVE = re.compile(
    r"\b(calm down|(?:that's|that is|it's) just (?:how|the way) (?:it is|things are)|you(?:'re| are) "
    r"(?:overreacting|being (?:dramatic|difficult|emotional|sensitive)|too sensitive|lucky)|over-?reacting|"
    r"everyone has to|not my problem|get over it|deal with it|stop complaining|not a big deal|that's life|"
    r"be grateful|rules are rules|(?:you have|there is|there's) no choice|just move on|let's not dwell|"
    r"don't have time for this|that's not how (?:it|things) works?|natural next step|just get along|"
    r"it's not personal)\b", re.I)
LEADING = re.compile(
    r"(\b(?:don't you think|wouldn't you (?:agree|say)|isn't (?:it|that) (?:true|obvious|clear)|"
    r"surely you|you agree|can we agree that|you'd agree)\b"
    r"|,\s*(?:right|yes|no|correct|surely)\s*\?\s*$)", re.I)
ACKNOWLEDGE = re.compile(
    r"\b(thank(?:s| you)|i appreciate|appreciate (?:your|how|that|what)|credit|great work|well done|"
    r"you (?:built|led|rebuilt|delivered|created|designed|mentored|carried|saved|fixed)|your work on|"
    r"made a (?:real |big )?difference|i(?:'m| am) sorry|i apologi[sz]e|i should have|that's on me|"
    r"fair point|you(?:'re| are) right)\b", re.I)
# Politeness, not recognition: "thanks for making time" earns nothing.
SMALL_THANKS = re.compile(r"\b(?:thanks|thank you)(?: so much)? for (?:your time|making (?:the )?time|"
                          r"coming(?: in)?|meeting(?: me)?|being here)\W*$", re.I)
NEXT_STEPS = re.compile(
    r"\b(next steps?|follow[- ]?up|put a date|check[- ]?in|action items?|(?:a|our|make a) plan|"
    r"(?:by|before|on|until) (?:monday|tuesday|wednesday|thursday|friday|next week|next month|the end of|"
    r"our next)|next (?:week|month|one-on-one|meeting|conversation)|let's (?:meet|agree|plan|put|write|"
    r"draft|book|schedule|set|try|start)|agree (?:on|to)|what (?:would|should|could|will|can) we "
    r"(?:do|agree|try))\b", re.I)

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


@dataclass
class Moves:
    """What the manager did in one message: coder codes and rehearsal moves, sentence by sentence."""

    codes: list[str]
    moves: list[str]
    next_steps: bool

    @property
    def good(self) -> set[str]:
        return set(self.moves) & set(GOOD_MOVES)

    @property
    def bad(self) -> set[str]:
        bad = set(self.moves) & {"advice", "leading_question"}
        if "closed_question" in self.moves and "open_question" not in self.moves:
            bad.add("closed_question")
        return bad

    @property
    def dismissive(self) -> bool:
        return "dismissive" in self.moves


def move_of(sentence: str, code: str) -> str:
    """The rehearsal move of one coded sentence; the rules catch what a coach-oriented coder misses."""
    if DISMISSIVE.search(sentence):
        return "dismissive"
    if LEADING.search(sentence):
        return "leading_question"
    if code in ("advice", "closed_question") and NEXT_STEPS.search(sentence):
        return "proposal"  # proposing next steps together is neither advice nor a closed-down question
    if code in ("advice", "open_question"):
        return code
    if SMALL_THANKS.search(sentence):
        return "neutral"
    if code == "affirmation" or ACKNOWLEDGE.search(sentence):
        return "acknowledgement"
    if code in ("reflection", "closed_question"):
        return code
    return "neutral"


@functools.lru_cache(maxsize=1024)
def code_message(message: str) -> tuple[tuple[str, str], ...]:
    """``coding.code_text``, remembered: the coder may embed sentences, and debriefs recode every line."""
    return tuple(code_text(message))


def analyse(message: str) -> Moves:
    """Code a manager message into moves."""
    coded = code_message(message)
    return Moves(codes=[c for _, c in coded], moves=[move_of(s, c) for s, c in coded],
                 next_steps=any(NEXT_STEPS.search(s) for s, _ in coded))


def next_tension(tension: int, moves: Moves, difficulty: str) -> int:
    """Tension after one manager message, clamped to 0-10."""
    down, up, dismiss = STEPS[difficulty]
    delta = up * len(moves.bad) - down * len(moves.good) + (dismiss if moves.dismissive else 0)
    return max(0, min(10, tension + delta))


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
    if "?" in text and "?" not in line:
        return "asks the manager a question"
    if _ADVICE_WORDS.search(text) and not _ADVICE_WORDS.search(line):
        return "gives the manager advice"
    said = _content(text)
    if not revealed:
        public = _content(" ".join([line, persona.background, persona.wants, persona.role]))
        if len(said & (_content(persona.hidden_concern) - public)) >= 2:
            return "gives away the hidden concern before it is earned"
    wanted = _content(line)
    if wanted and len(said & wanted) < max(1, len(wanted) // 3):
        return "drifts from the chosen line"
    return None


# Constrains the small embedded model to one or two plain first-person sentences without a question.
GRAMMAR = r"""
root ::= "I" word{3,24} [.!] (" " sentence)?
sentence ::= [A-Z] [a-z']* word{2,16} [.!]
word ::= ","? " " [a-zA-Z0-9']+ ("-" [a-zA-Z']+)?
"""


class Rehearsal:
    """Plays one persona per session; ``turn`` answers one manager message."""

    def __init__(self, settings: Settings, store: TranscriptStore | None = None,
                 model: BaseChatModel | None = None, *, rephrase: bool | None = None,
                 personas_dir: Any = PERSONAS_DIR) -> None:
        self.settings = settings
        self.store = store if store is not None else TranscriptStore(settings.db_path)
        self._model = model
        # Only a strong model rephrases by default: the fake backend must be deterministic, and the
        # embedded 135M model takes seconds per line and mostly makes a good scripted line worse.
        self.rephrase = settings.backend == "openai" if rephrase is None else rephrase
        self.personas_dir = personas_dir
        self._screen: Any = None

    @property
    def model(self) -> BaseChatModel:
        if self._model is None:
            from .llm import get_chat_model

            self._model = get_chat_model(self.settings)
        return self._model

    def turn(self, message: str, persona_id: str | None, difficulty: str = "medium",
             session_id: str | None = None, user_id: str = LOCAL_USER) -> dict[str, Any]:
        """Answer one manager message in character; creates the session (owned by ``user_id``) on the first
        message."""
        text = check_text(message).strip()
        if not text:
            raise InputError("the message is empty")
        if len(text) > self.settings.max_message_chars:
            raise InputError(f"the message is longer than {self.settings.max_message_chars} characters")
        sid, persona, difficulty, state = self._open(persona_id, difficulty, session_id, user_id)
        moves = analyse(text)
        tension = next_tension(int(state["tension"]), moves, difficulty)
        if not moves.dismissive:
            state["earned"] = int(state["earned"]) + len(moves.good)
        meta = {"codes": moves.codes, "moves": moves.moves, "tension": tension}
        self.store.add_turn(sid, "user", text, meta)  # stored before generating: nothing is lost
        kind = self._real_disclosure(text, dismissive=moves.dismissive)
        if kind:  # the manager's own disclosure outranks the scene; lines of the scene do not pause it
            reply = referral(kind, self.settings.resources) + " The rehearsal is paused; it will be here when you come back."
            self.store.add_turn(sid, "assistant", reply, {"safety": kind, "tension": state["tension"]})
            return {"reply": reply, "session": sid, "persona": persona.id, "difficulty": difficulty,
                    "tension": int(state["tension"]), "revealed": bool(state["revealed"]), "codes": moves.codes,
                    "stage": None, "citations": [], "safety": kind, "band": None, "moves": moves.moves,
                    "voice": "referral", "name": persona.name}

        band = self._band(moves, tension, difficulty, state)
        index, line = self._pick(persona, band, state)
        revealed = bool(state["revealed"]) or band == "reveal"
        reply, voice = self._voice(persona, line, text, revealed)
        self.store.add_turn(sid, "assistant", reply, {"tension": tension, "codes": moves.codes,
                            "revealed": revealed, "band": band, "line": index, "voice": voice})
        state.update(tension=tension, revealed=revealed, turns=int(state["turns"]) + 1)
        state["path"] = [*state["path"], tension]
        self.store.save_state(sid, state)
        return {"reply": reply, "session": sid, "persona": persona.id, "difficulty": difficulty,
                "tension": tension, "revealed": revealed, "codes": moves.codes, "stage": None,
                "citations": [], "safety": None, "band": band, "moves": moves.moves, "voice": voice,
                "name": persona.name, "fallback": voice == "fallback",
                "notice": ("the model server did not answer in time; this is the persona's scripted line"
                           if voice == "fallback" else None)}

    def _real_disclosure(self, text: str, dismissive: bool) -> str | None:
        if self._screen is None:
            from .understanding.safety import SafetyScreen

            self._screen = SafetyScreen()
        reading = self._screen.read(text)
        return real_disclosure(reading.kind, text, scene_move=dismissive, explicit=reading.via == "backstop")

    # -- steps of a turn ------------------------------------------------------------------------
    def _open(self, persona_id: str | None, difficulty: str, session_id: str | None,
              user_id: str = LOCAL_USER) -> tuple[str, Persona, str, dict[str, Any]]:
        if session_id and self.store.has_session(session_id):
            session = self.store.session(session_id)
            if session.user_id != user_id:  # the same words as an unknown id: nothing about who owns it
                raise NotFoundError(f"no session {session_id!r} for {user_id!r}")
            if session.mode != "rehearse":
                raise InputError(f"session {session_id} is a {session.mode} session, not a rehearsal")
            if persona_id and persona_id != session.persona:
                raise InputError(f"session {session_id} rehearses {session.persona}, not {persona_id}")
            persona = get_persona(str(session.persona), self.personas_dir)
            difficulty = session.difficulty or "medium"
            state = {**self._fresh(persona, difficulty), **session.state}
            return session_id, persona, difficulty, state
        if not persona_id:
            if session_id:
                raise NotFoundError(f"no session {session_id!r}; give --persona to start a new rehearsal")
            known = ", ".join(p.id for p in load_personas(self.personas_dir))
            raise InputError(f"a rehearsal needs a persona (--persona ID); known personas: {known}")
        difficulty = (difficulty or "medium").strip().lower()
        if difficulty not in DIFFICULTIES:
            raise InputError(f"unknown difficulty {difficulty!r}; choose one of {', '.join(DIFFICULTIES)}")
        persona = get_persona(persona_id, self.personas_dir)
        state = self._fresh(persona, difficulty)
        sid = self.store.create_session(
            mode="rehearse", persona=persona.id, difficulty=difficulty, backend=self.settings.backend,
            model=self.settings.model_name, state=state, session_id=session_id, user_id=user_id,
        )
        return sid, persona, difficulty, state

    @staticmethod
    def _fresh(persona: Persona, difficulty: str) -> dict[str, Any]:
        start = persona.start_tension(difficulty)
        return {"tension": start, "revealed": False, "used": {}, "turns": 0, "earned": 0, "path": [start],
                "reveal_lines": len(persona.lines.reveal)}

    @staticmethod
    def _band(moves: Moves, tension: int, difficulty: str, state: dict[str, Any]) -> str:
        if moves.dismissive or "advice" in moves.moves:
            return "dismissed"
        most, needed = REVEAL[difficulty]
        if not state["revealed"] and tension <= most and int(state["earned"]) >= needed:
            return "reveal"
        if moves.next_steps and tension <= AGREE_AT[difficulty]:
            return "agree"
        if tension >= 7:
            return "guarded"
        if tension >= 4:
            return "neutral"
        # Once the concern is out, a manager who keeps listening hears more of the real story.
        more = int(state.get("reveal_lines", 0)) > len(state["used"].get("reveal", []))
        if state["revealed"] and moves.good & {"open_question", "reflection"} and more:
            return "reveal"
        return "open"

    @staticmethod
    def _pick(persona: Persona, band: str, state: dict[str, Any]) -> tuple[int, str]:
        lines: list[str] = getattr(persona.lines, band)
        used: list[int] = list(state["used"].get(band, []))
        unused = [i for i in range(len(lines)) if i not in used]
        if not unused:  # every line of the band said once: start the band again
            used, unused = [], list(range(len(lines)))
        index = unused[0]
        state["used"] = {**state["used"], band: [*used, index]}
        return index, lines[index]

    def _voice(self, persona: Persona, line: str, message: str, revealed: bool) -> tuple[str, str]:
        """The chosen line, rephrased by the model when that is on and the result passes the check."""
        if not self.rephrase:
            return line, "line"
        system = (f"{persona.card()}\nYou are in a one-on-one with your manager. Stay in character. "
                  "Speak only as yourself, in the first person. Never give advice and never ask questions.")
        prompt = (f'Your manager said: "{message[:400]}"\n'
                  f'Say this in your own words, in one or two short sentences:\n"{line}"')
        from langchain_core.messages import HumanMessage, SystemMessage

        kwargs: dict[str, Any] = {}
        if getattr(self.model, "supports_grammar", False):
            kwargs = {"grammar": GRAMMAR, "max_tokens": 72}
        try:
            out = self.model.invoke([SystemMessage(content=system), HumanMessage(content=prompt)], **kwargs)
        except Exception:  # noqa: BLE001 - any model failure falls back to the scripted line, said in the JSON
            return line, "fallback"
        text = " ".join(str(out.content).split()).strip(" \"'")
        if check_rephrase(text, line, persona, revealed) is None:
            return text, "model"
        return line, "line"
