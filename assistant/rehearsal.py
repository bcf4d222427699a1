"""Rehearsal: the assistant plays an employee (a persona) while a manager practises a tough conversation.

>>> analyse("Calm down. What keeps you here?").moves
['dismissive', 'open_question']

Difficulty is behaviour: every manager message is coded (the coder, the learned next-step head of
``understanding.proposals`` and the manager-move head of ``understanding.manager_moves``) and
moves a tension state (0-10) whose step sizes depend on the difficulty. The tension picks the band of
the persona's reply (guarded, neutral, open); within it ``lines`` picks the line that best answers what
was asked, never one already said. The hidden concern (the ``reveal`` band) is earned, readily on easy
and late on hard; once earned it comes out when the manager's question gives it room, and related
questions draw out more. A proposed next step is agreed at low tension (``agree``) and answered from the
tension's band above it, where the lines resist. Replies are the persona's own scripted lines; a strong
model speaks freely from the card and the scene, a small one may rephrase the chosen line, and either is
used only if it passes the checks of ``voice``. The persona never coaches the manager. This module does not score the manager (see
``debrief``) and does not route safety disclosures (the coaching chain does that).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import InputError, NotFoundError, check_text
from .lines import Choice, LineChooser, message_parts
from .personas import DIFFICULTIES, PERSONAS_DIR, Persona, get_persona, load_personas
from .transcripts import LOCAL_USER, TranscriptStore, open_store
from .understanding.coder import code_text
from .understanding.manager_moves import manager_moves
from .understanding.proposals import proposes_next_step
from .understanding.referrals import referral
from .understanding.safety import real_disclosure
from .voice import speak

if TYPE_CHECKING:  # langchain is slow to import; only a real model needs it
    from langchain_core.language_models import BaseChatModel

# Per difficulty: (fall per good move, rise per bad move, rise for a dismissal).
STEPS: dict[str, tuple[int, int, int]] = {"easy": (2, 1, 2), "medium": (1, 1, 2), "hard": (1, 2, 3)}
# Per difficulty: the hidden concern comes out at tension <= first, after >= second good moves.
REVEAL: dict[str, tuple[int, int]] = {"easy": (4, 1), "medium": (3, 3), "hard": (2, 4)}
# Per difficulty: the highest tension at which the persona agrees to proposed next steps.
AGREE_AT: dict[str, int] = {"easy": 4, "medium": 3, "hard": 3}
GOOD_MOVES = ("open_question", "reflection", "acknowledgement")
# How much more a line of the tension's band must fit the question than the best line of the concern for
# the persona to answer the question instead of telling the concern (cosine; chosen on our own set).
OFF_TOPIC_MARGIN = 0.05
DEFERRED_STEP = 0.02  # the margin grows by this for every turn the earned concern waited

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

    @property
    def dismissive_throughout(self) -> bool:
        """Every sentence is a dismissal: a line of the scene, never the manager's own disclosure ("Sorry, I
        can't do this. Honestly I have been thinking about ending my life." is not)."""
        return bool(self.moves) and all(m == "dismissive" for m in self.moves)


def move_of(code: str, proposal: bool = False, move: str = "other") -> str:
    """The rehearsal move of one sentence from its readings: the coder's ``code``, the next-step head's
    ``proposal`` and the manager-move head's ``move`` (``understanding.manager_moves``)."""
    if move in ("dismissive", "leading_question"):
        return move
    if proposal and code != "open_question":
        return "proposal"  # proposing next steps together is neither advice nor a closed-down question
    if code in ("advice", "open_question"):
        return code
    if code == "reflection":  # a reflection of feeling acknowledges too, but it is the listening the debrief rates
        return code
    if move == "acknowledgement" or code == "affirmation":
        return "acknowledgement"
    if code == "closed_question":
        return code
    return "neutral"


@functools.lru_cache(maxsize=1024)
def code_message(message: str) -> tuple[tuple[str, str], ...]:
    """``coding.code_text``, remembered: the coder may embed sentences, and debriefs recode every line."""
    return tuple(code_text(message))


@functools.lru_cache(maxsize=1024)
def proposals(message: str) -> tuple[bool, ...]:
    """For each sentence of ``code_message(message)``: does it propose a next step (the learned head)?"""
    return tuple(proposes_next_step([s for s, _ in code_message(message)]))


@functools.lru_cache(maxsize=1024)
def manager_move_labels(message: str) -> tuple[str, ...]:
    """For each sentence of ``code_message(message)``: the manager-move head's reading."""
    return tuple(manager_moves([s for s, _ in code_message(message)]))


def analyse(message: str) -> Moves:
    """Code a manager message into moves."""
    coded, proposed, moved = code_message(message), proposals(message), manager_move_labels(message)
    return Moves(codes=[c for _, c in coded],
                 moves=[move_of(c, p, m) for (_, c), p, m in zip(coded, proposed, moved, strict=True)],
                 next_steps=any(proposed))


def next_tension(tension: int, moves: Moves, difficulty: str) -> int:
    """Tension after one manager message, clamped to 0-10."""
    down, up, dismiss = STEPS[difficulty]
    delta = up * len(moves.bad) - down * len(moves.good) + (dismiss if moves.dismissive else 0)
    return max(0, min(10, tension + delta))


def _tension_band(tension: int) -> str:
    return "guarded" if tension >= 7 else "neutral" if tension >= 4 else "open"


class Rehearsal:
    """Plays one persona per session; ``turn`` answers one manager message."""

    def __init__(self, settings: Settings, store: TranscriptStore | None = None,
                 model: BaseChatModel | None = None, *, rephrase: bool | None = None, free: bool | None = None,
                 personas_dir: Any = PERSONAS_DIR) -> None:
        self.settings = settings
        self.store = store if store is not None else open_store(settings)
        self._model = model
        # Only a strong (OpenAI-compatible) model speaks by default, freely from the card and the scene:
        # the fake backend must be deterministic, and the embedded 135M model takes seconds per line and
        # mostly makes a good scripted line worse. Asked to rephrase, a model only says the chosen line.
        self.free = (settings.backend == "openai" and not rephrase) if free is None else free
        self.rephrase = bool(rephrase) and not self.free
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
        before = json.loads(json.dumps(state))  # the scene as it was: "try again from here" restarts from it
        moves = analyse(text)
        tension = next_tension(int(state["tension"]), moves, difficulty)
        if not moves.dismissive:
            state["earned"] = int(state["earned"]) + len(moves.good)
        meta = {"codes": moves.codes, "moves": moves.moves, "tension": tension, "state": before}
        self.store.add_turn(sid, "user", text, meta)  # stored before generating: nothing is lost
        kind = self._real_disclosure(text, dismissive=moves.dismissive_throughout)
        if kind:  # the manager's own disclosure outranks the scene; lines of the scene do not pause it
            reply = referral(kind, self.settings.resources) + " The rehearsal is paused; it will be here when you come back."
            self.store.add_turn(sid, "assistant", reply, {"safety": kind, "tension": state["tension"]})
            return {"reply": reply, "session": sid, "persona": persona.id, "difficulty": difficulty,
                    "tension": int(state["tension"]), "revealed": bool(state["revealed"]), "codes": moves.codes,
                    "stage": None, "citations": [], "safety": kind, "band": None, "moves": moves.moves,
                    "voice": "referral", "name": persona.name}

        band = self._band(moves, tension, difficulty, state)
        choice = self._choose(persona, band, message_parts(text, code_message(text)), state, tension)
        if band == "reveal" and choice.band != "reveal":  # asked about something else: the concern waits
            band = choice.band
        index, line = choice.index, choice.text
        revealed = bool(state["revealed"]) or band == "reveal"
        reply, voice = self._voice(persona, line, text, revealed, band, sid)
        self.store.add_turn(sid, "assistant", reply, {"tension": tension, "codes": moves.codes,
                            "revealed": revealed, "band": band, "line": index, "line_band": choice.band,
                            "relevance": choice.score, "voice": voice})
        state.update(tension=tension, revealed=revealed, turns=int(state["turns"]) + 1)
        state["path"] = [*state["path"], tension]
        self.store.save_state(sid, state)
        return {"reply": reply, "session": sid, "persona": persona.id, "difficulty": difficulty,
                "tension": tension, "revealed": revealed, "codes": moves.codes, "stage": None,
                "citations": [], "safety": None, "band": band, "moves": moves.moves, "voice": voice,
                "name": persona.name, "fallback": voice == "fallback",
                "notice": ("the model server did not answer in time; this is the persona's scripted line"
                           if voice == "fallback" else None)}

    def try_again(self, session_id: str, turn: int, user_id: str = LOCAL_USER) -> str:
        """A new session that replays ``session_id`` up to (not including) the manager's ``turn``-th line
        (1-based), with the scene's state as it was then; the original session is left as it is."""
        session = self.store.session(session_id)  # NotFoundError for an unknown id
        if session.user_id != user_id:  # the same words as an unknown id: nothing about who owns it
            raise NotFoundError(f"no session {session_id!r} for {user_id!r}")
        if session.mode != "rehearse":
            raise InputError(f"session {session_id} is a {session.mode} session, not a rehearsal")
        turns = self.store.turns(session_id)
        mine = [i for i, t in enumerate(turns) if t.role == "user"]
        if not 1 <= turn <= len(mine):
            raise InputError(f"session {session_id} has {len(mine)} manager turns; choose a turn from 1 to {len(mine)}")
        cut = mine[turn - 1]
        state = turns[cut].meta.get("state")
        if not isinstance(state, dict):
            raise InputError(f"session {session_id} was recorded before 'try again' existed; start a new rehearsal")
        state = {**state, "branched_from": {"session": session_id, "turn": turn}}
        sid = self.store.create_session(mode="rehearse", persona=session.persona, difficulty=session.difficulty,
                                        backend=self.settings.backend, model=self.settings.model_name, state=state,
                                        user_id=user_id)
        for t in turns[:cut]:
            self.store.add_turn(sid, t.role, t.text, t.meta)
        return sid

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
        if tension >= 4:
            return _tension_band(tension)
        # Once the concern is out, a manager who keeps listening hears more of the real story.
        more = int(state.get("reveal_lines", 0)) > len(state["used"].get("reveal", []))
        if state["revealed"] and moves.good & {"open_question", "reflection"} and more:
            return "reveal"
        return "open"

    @staticmethod
    def _choose(persona: Persona, band: str, parts: list[str], state: dict[str, Any], tension: int) -> Choice:
        """The line that best answers ``parts`` within ``band``, and mark it said. When the concern may
        come out (``reveal``), it does unless the manager clearly asked about something else: then the
        question is answered from the band the tension allows, and the concern waits for a related one."""
        chooser = LineChooser(persona)
        used: dict[str, list[int]] = state["used"]
        choice = chooser.pick(band, parts, used)
        if band == "reveal":
            other = chooser.pick(_tension_band(tension), parts, used)
            # the first telling needs a clearly different question to wait; more of it needs a related one
            # ... and a persona who keeps being heard grows readier to volunteer it
            margin = 0.0 if state["revealed"] else OFF_TOPIC_MARGIN + DEFERRED_STEP * int(state.get("deferred", 0))
            if other is not None and other.score - choice.score > margin:
                choice = other
                state["deferred"] = int(state.get("deferred", 0)) + (not state["revealed"])
        state["used"] = {**used, choice.band: [*used.get(choice.band, []), choice.index]}
        return choice

    def _voice(self, persona: Persona, line: str, message: str, revealed: bool, band: str,
               sid: str) -> tuple[str, str]:
        """The chosen line, or the model's checked reply when a model speaks (``voice``)."""
        if not self.rephrase and not self.free:
            return line, "line"
        history = [(t.role, t.text) for t in self.store.turns(sid)[:-1] if not t.meta.get("safety")]
        return speak(self.model, persona, line, message, band=band, revealed=revealed, history=history,
                     free=self.free, grammar=getattr(self.model, "supports_grammar", False))
