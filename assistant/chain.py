"""The coaching turn: safety screen, GROW stage, retrieval, prompt chain, guard, fallback, transcript.

>>> from assistant.config import Settings
>>> coach = Coach(Settings(backend="fake", data_dir="/tmp/coach-doctest"))          # doctest: +SKIP
>>> coach.turn("I don't want to manage but I want to grow")["reply"].endswith("?")  # doctest: +SKIP
True

Every coachee turn is stored before anything is generated, and the coach's reply is stored before it is
returned. A reply that fails the guard is never shown: the chain regenerates once with tighter
constraints, then falls back to the best retrieved question. This module does not render UI or parse
command lines.
"""

from __future__ import annotations

import functools
import re
import time
import zlib
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from . import writer
from .config import Settings
from .errors import CoachError, InputError, NotFoundError, check_text
from .guard import check_reply, clean_reply, reflection_problems, reply_grammar
from .knowledge import load_questions
from .llm import LlamaCppChat, backend_failure, get_chat_model, load_writer, token_counter
from .mirror import mirror
from .moves import (
    BANK_FLOOR,
    GENERAL_TOPICS,
    MOVES_CACHE,
    QUESTION_FLOOR,
    REFLECT,
    SITUATION_FLOOR,
    Match,
    Move,
    MoveLibrary,
    feeling_question,
    feeling_reflection,
    plain_reflections,
    presupposes_unsaid,
    topic_reflection,
)
from .people import followup
from .people.memory import Memory, excerpt
from .prompts import load_angles, load_prompt
from .quality import audience_mismatch
from .retrieval import HandbookIndex, Hit
from .stages import AIMS, GrowState, is_commitment
from .transcripts import LOCAL_USER, TranscriptStore, open_store
from .understanding.coder import code_text
from .understanding.encoder import embed
from .understanding.greeting import is_greeting
from .understanding.referrals import referral, reminder_line, resume_line
from .understanding.safety import SafetyScreen
from .understanding.turn import TurnSignals

_INJECTION = re.compile(
    r"(ignore (all |your |the |any )?(previous |prior |above )?(rules|instructions|prompt|guidelines)|"
    r"disregard (your|the|all|any) [\w\s-]{0,30}?(rules?|instructions|prompt|guidelines|polic(y|ies)|restrictions?)|"
    r"system prompt|your (instructions|prompt|rules|guidelines|guard)|"
    r"^\s*(system|developer|admin|override)\s*[:>\]!]|\[(system|admin)[^\]]*\]|<\s*system|you are now|pretend (you are|you're)|"
    r"(^|[.!?]\s+|please |now )act as|role-?play (as|that you|where you)|you (will|must|shall) role-?play|"
    r"from now on,? (you|answer|respond|reply|just|only|do not|don't)|developer mode|jailbreak|"
    r"do anything now|new instructions|override (your|the|all|any|previous) [\w\s-]{0,20}?(rules?|instructions|"
    r"prompt|guard|safety|settings|polic(y|ies)|restrictions?)|"
    r"just (tell|give) me|stop asking (me )?(questions|me questions)|no more questions|no questions,? (please|just)|"
    r"give me (the answer|three|3|a list|steps|a script)|"
    r"tell me what to do|what would you do|answer directly|(give me|want|need) a straight answer(?! from)|"
    r"don't ask me (any )?(more )?questions|"
    r"print (your|the) (prompt|instructions|system|rules|hidden)|repeat (the|your) (text|words|prompt)|"
    r"reveal (your|the) (prompt|instructions|system|rules|hidden)|\bsystem (notice|message|override|update)\b|"
    r"hidden (text|instructions|prompt)|drop the (coaching|questions|act|routine)|stop coaching)", re.I | re.M)
# the "DAN" jailbreak by its name, in capitals only: Dan is a colleague's name in ordinary talk (blind13 c01)
_DAN = re.compile(r"\bDAN\b|\b[Yy]ou are (now )?[Dd]an\b")


# the GROW signal's probability above which a plain reflection may say what the message does: on the grow dev
# split, commitment readings at 0.7 and over are right 34 of 35 times (0.907 over all), options 36 of 37
PLAIN_AIM_SURE = 0.7
# the options stage weighs the options the person named when the grow signal reads options this surely (its
# blind recall of options is the lowest of the aims, 0.78: a message read as options less surely may be more
# of the situation)
OPTIONS_SURE = 0.6
# a message is taken as the person's plan only when the ``next_step`` head also reads a step in it (at least
# this probability). Chosen on the GROW dev split: of 43 commitments the GROW head recorded 39 with or without
# it, and false plans fell from 3 to 1 of 147 (0.4 lost one commitment). In blind conversations the GROW head
# alone took "...I don't know. When you asked what I'd miss, the first thing that came to mind was my colleague
# Ines" for a plan (head 0.25); the plans people did state scored 0.67 and more.
STEP_SURE = 0.3
# a closing question this close (MiniLM cosine) to one already asked in the session is not asked: the pair
# "What might get in the way, and how will you handle it?" / "What could get in the way between now and then,
# and what will you do if it does?" is 0.67 apart, and readers of blind9 noted it as asked twice
NEAR_REPEAT = 0.65
# how a reflection of the person's own clause opens, in turn. A reflective stem, never a bare clause: without
# one, "So you need to make the case for promoting her." reads (to a person and to the coder) as advice
MIRROR_LEADS = ("It sounds like", "You're saying", "What I'm hearing is that")


def _first_unused(options: list[str], used: list[str], fallback: str | None = None) -> str:
    """The first option not used yet in the session; when all are, ``fallback`` or the first option."""
    return next((o for o in options if o not in used), fallback if fallback is not None else options[0])


def _mirrored(state: GrowState, text: str) -> str | None:
    """The person's own main clause, parsed and put in the second person, led differently each time; none when
    a reader would call it garbled (the guard would refuse the reply, and the fallback kept the same reflection)."""
    from .quality import broken_sentences

    lead = MIRROR_LEADS[len(state.reflected) % len(MIRROR_LEADS)]
    said = mirror(text, lead=lead)
    if said and said.startswith(f"{lead} what ") and lead.endswith(" that"):
        said = mirror(text)  # not "What I'm hearing is that what you want is…": "It sounds like what you want is…"
    return None if said and broken_sentences(said) else said


# words that offer an alternative ("I could…, or…", "option", a list): "those options" needs two of them, one
# of them a word of choice (two "could"s in one idea are not two options)
_CHOICE = re.compile(r"\b(?:or|options?|alternatively|either|another|otherwise|instead)\b", re.I)
_POSSIBLE = re.compile(r"\b(?:could|might|maybe|perhaps)\b", re.I)
_LISTED = re.compile(r"(?:^\s*[-*•]\s|(?:^|\s)\d[.)]\s)", re.M)


# a step the person says they will take themselves ("I'll ask her…", "I'm going to…", "my plan is…")
_OWN_STEP = re.compile(r"\b(?:i'll|i will|i'm going to|i am going to|im going to|i'm gonna|plan is|plan:|my plan|i plan to|"
                       r"i've decided|i have decided|i'd like to start|first i|then i)\b", re.I)


def names_options(text: str) -> bool:
    """Whether the message offers at least two alternatives in words, so a question about "those options" fits:
    blind readers scored "Which of those would you choose…?" 0 after "she can be prickly" and after one idea,
    both read by the grow signal as options (blind15 c02.3, c08.3)."""
    choice = len(_CHOICE.findall(text))
    return len(_LISTED.findall(text)) >= 2 or choice >= 1 and choice + len(_POSSIBLE.findall(text)) >= 2


def is_injection(message: str) -> bool:
    """Prompt-injection and "just tell me" pressure."""
    return bool(_INJECTION.search(message) or _DAN.search(message))


def _check_message(message: str, limit: int) -> str:
    text = check_text(message or "").strip()
    if not text:
        raise InputError("the message is empty")
    if len(text) > limit:
        raise InputError(f"the message is {len(text)} characters; the limit is {limit} (COACH_MAX_MESSAGE_CHARS)")
    return text


def _citation(hit: Hit) -> dict[str, Any]:
    return {"source": hit.source, "title": hit.title, "topics": hit.topics, "heading": hit.heading}


class Coach:
    """One coach, reused across turns and sessions (models load once)."""

    def __init__(self, settings: Settings, store: TranscriptStore | None = None, model: BaseChatModel | None = None,
                 index: HandbookIndex | None = None, safety: SafetyScreen | None = None, remember: bool = True) -> None:
        self.settings = settings
        self.store = store or open_store(settings)
        self._model = model
        self._index = index
        self.safety = safety or SafetyScreen()
        self.template = load_prompt("coach")
        self.angles = load_angles()
        self.signals = TurnSignals()
        # memory across sessions (people.memory); off for eval and blind-set runs, whose sessions are not a person's
        self.memory = Memory(self.store) if remember else None
        self._moves: MoveLibrary | None = None

    @property
    def moves(self) -> MoveLibrary:
        if self._moves is None:
            self._moves = MoveLibrary.load(cache=MOVES_CACHE)
        return self._moves

    @property
    def model(self) -> BaseChatModel:
        if self._model is None:
            self._model = get_chat_model(self.settings)
        return self._model

    @functools.cached_property
    def opening_questions(self) -> frozenset[str]:
        """Bank questions asked only as a session's first question (``opening: true``)."""
        return frozenset(q.text for q in load_questions(self.settings.knowledge_dir) if q.opening)

    @property
    def index(self) -> HandbookIndex:
        if self._index is None:
            self._index = HandbookIndex(self.settings)
            self._index.ensure()
        return self._index

    # -- session ---------------------------------------------------------------------------------
    def _session(self, session_id: str | None, user_id: str) -> tuple[str, GrowState]:
        if session_id and self.store.has_session(session_id):
            found = self.store.session(session_id)
            if found.user_id != user_id:  # the same words as an unknown id: nothing about who owns it
                raise NotFoundError(f"no session {session_id!r} for {user_id!r}")
            if found.mode != "coach":
                raise InputError(f"session {session_id} is a {found.mode} session; continue it with --mode {found.mode}")
            return session_id, GrowState.from_dict(found.state)
        state = GrowState()
        sid = self.store.create_session(mode="coach", backend=self.settings.backend, model=self.settings.model_name,
                                        state=state.to_dict(), session_id=session_id, user_id=user_id)
        return sid, state

    def _history(self, sid: str, budget: int) -> str:
        """Recent turns within ``budget`` tokens; older coachee turns folded into a one-line summary."""
        turns = self.store.turns(sid)[:-1]  # the current message is passed separately
        count = token_counter(self.model)
        lines: list[str] = []
        used = 0
        for t in reversed(turns[-6:]):
            line = f"{'Coachee' if t.role == 'user' else 'Coach'}: {t.text}\n"
            cost = count(line)
            if used + cost > budget:
                break
            lines.insert(0, line)
            used += cost
        older = [t.text for t in turns[: len(turns) - len(lines)] if t.role == "user"]
        if older:  # a short extractive summary of what fell out of the window
            summary = "Earlier the coachee said: " + " / ".join(o.split(".")[0][:60] for o in older[-3:])
            lines.insert(0, summary[:240] + "\n")
        return "".join(lines)

    # -- the turn --------------------------------------------------------------------------------
    def turn(self, message: str, session_id: str | None = None, user_id: str = LOCAL_USER) -> dict[str, Any]:
        """Run one coachee turn and return the BRIEF's ``ask`` JSON (plus a few extra fields)."""
        result: dict[str, Any] = {}
        for item in self.stream(message, session_id, user_id):
            if isinstance(item, dict):
                result = item
        return result

    def stream(self, message: str, session_id: str | None = None,
               user_id: str = LOCAL_USER) -> Iterator[str | dict[str, Any]]:
        """Yield the approved reply in small pieces, then the result dict (``user_id`` owns the session)."""
        text = _check_message(message, self.settings.max_message_chars)
        started = time.perf_counter()
        sid, state = self._session(session_id, user_id)
        user_turn = self.store.add_turn(sid, "user", text, {"stage": state.stage})
        try:
            reply, meta = self._respond(sid, state, text, user_id)
        except CoachError:
            self.store.save_state(sid, state.to_dict())
            raise
        except Exception as exc:  # a client library failed: one line, the user turn is kept
            self.store.save_state(sid, state.to_dict())
            raise backend_failure(exc, self.settings.base_url, self.settings.timeout) from exc
        meta["latency_s"] = round(time.perf_counter() - started, 3)
        meta["codes"] = [c for _, c in code_text(reply)]
        remember = meta.pop("remember", [])
        self.store.save_state(sid, state.to_dict())
        self.store.add_turn(sid, "assistant", reply, meta)
        for kind, words in remember if self.memory else []:  # after the reply is stored: memory checks the turn
            try:  # was not referred and the words are the person's own; a refused item never fails the turn
                self.memory.remember(user_id, kind, words, sid, user_turn)
            except InputError:
                pass
        words = reply.split(" ")
        for i in range(0, len(words), 3):
            yield (" " if i else "") + " ".join(words[i:i + 3])
        yield {"reply": reply, "session": sid, "stage": meta.get("stage"), "citations": meta["citations"],
               "codes": meta["codes"], "safety": meta.get("safety"), "action_plan": state.action_plan,
               "guard": meta.get("guard"), "fallback": meta.get("fallback", False), "followup": meta.get("followup"),
               "safety_reminder": (meta.get("safety_reminder") or {}).get("kind"),
               "backend": self.settings.backend, "model": self.settings.model_name}

    def _respond(self, sid: str, state: GrowState, text: str, user_id: str) -> tuple[str, dict[str, Any]]:
        earlier = self.store.turns(sid)[:-1]  # the current message is already stored
        referred = [t.meta["safety"] for t in earlier if t.role == "assistant" and t.meta.get("safety")]
        after_referral = bool(earlier) and bool(earlier[-1].meta.get("safety"))
        # the previous message is context for the screen, unless it was itself referred: a disclosure is
        # never carried forward, so the next turn is judged on its own words
        previous = None if after_referral else next((t.text for t in reversed(earlier) if t.role == "user"), None)
        reading = self.safety.read(text, previous=previous)
        # once a crisis referral has been given, a message that only the lower crisis bar routes is coached,
        # with the support named again: three referrals in a row for a father who snapped at his son and a
        # man who wants out of his company left no conversation (a firm reading is still referred again)
        reminded = bool(reading.kind) and not reading.refers(referred)
        if reading.refers(referred):
            meta = {"safety": reading.kind, "stage": state.stage, "citations": [], "route": "safety",
                    "safety_via": reading.via, "safety_scores": reading.scores}
            return referral(reading.kind, self.settings.resources, again=reading.kind in referred,
                            firm=reading.firm), meta
        greeting = not earlier and is_greeting(text)  # a first message that only opens the session
        remembered = self._followup(state, text, user_id, first=not earlier, greeting=greeting) if self.memory else None
        if remembered:
            return remembered
        if greeting:  # "hi" with no plan to follow up: nothing to reflect yet, so a welcome and the goal question
            return self.angles["welcome"], {"stage": state.stage, "citations": [], "route": "welcome"}
        said = [t.text for t in earlier if t.role == "user"]
        # earlier themes: the last remembered goal, in the person's own words, is context for the first question
        goals = self.memory.items(user_id, "goal")[:1] if self.memory and not said else []
        # and once a session, a later message close in meaning to an earlier goal or plan brings it back
        themes = (self.memory, user_id) if self.memory and said and not state.theme_linked else None
        reply, meta = self._coach(sid, state, text, [g.text for g in goals] + said, themes=themes,
                                  opening=said[0] if said else None)
        if not state.goal_noted and state.stage != "goal" and meta.get("route") == "coach":
            state.goal_noted = True  # the message that met the goal stage's aim, remembered in the person's words
            meta["remember"] = [("goal", excerpt(text, "goal"))]
        if reminded and reading.kind:
            reply = f"{reminder_line(reading.kind, self.settings.resources)} {reply}"
            meta.pop("remember", None)  # words read as close to a crisis are not kept as a goal
            meta["safety_reminder"] = {"kind": reading.kind, "via": reading.via, "scores": reading.scores}
        elif after_referral and meta.get("route") != "pause":
            reply = f"{resume_line()} {reply}"
        return reply, meta

    def _coach(self, sid: str, state: GrowState, text: str, earlier: list[str],
               themes: tuple[Memory, str] | None = None, opening: str | None = None) -> tuple[str, dict[str, Any]]:
        """One coaching reply; ``earlier`` is what the person said before, oldest first; ``themes`` the memory
        and person whose earlier goals and plans may be brought back; ``opening`` the session's first message."""
        if is_injection(text):
            return self._hold_role(state, text)
        read = self._understand(state, text, earlier[-1] if earlier else None, opening)
        read["said"] = " ".join([*earlier, text])
        aim = read["aim"]
        # a plan said while options are open ends the options stage even when the aim head reads it as more of
        # the situation: words of a commitment and a step the next-step head reads ("im going to sit down with
        # him tuesday…" read as reality, 0.61, after the options it chose from; blind14 c02)
        if state.stage == "options" and aim != "commitment" and is_commitment(text) and self._names_step(read, text):
            aim = "commitment"
        stage = state.update(text, aim)
        if state.low_effort_streak:
            return self._new_angle(state, read)
        # someone who wants time before deciding, naming nothing they will do, is not pushed to a plan (the
        # learned `not_yet` signal; the phrase list it replaced found a third of a blind writer's messages)
        if stage in ("options", "way_forward") and self.signals.not_yet(read["vector"], text).label == "not_yet":
            return self._not_yet(state, text, stage)
        # a plan is recorded only when the grow signal is fairly sure it is one (a false plan ends the GROW arc)
        committed = read["aim"] == "commitment" and read["aim_p"] >= 0.5 if read["aim"] is not None else False
        if (stage == "way_forward" and (committed or is_commitment(text)) and not state.action_plan
                and self._names_step(read, text)):
            return self._close(sid, state, text, read)
        # options the person has just named (the grow signal reads options; naming them ends the options stage)
        # are weighed, not added to
        if (stage in ("options", "way_forward") and not state.action_plan and read["aim"] == "options"
                and read.get("aim_p", 0.0) >= OPTIONS_SURE and names_options(text)
                and any(q not in state.asked for q in self.angles["weighing"])):
            return self._before_plan(state, text, read, angle="weighing", stage=stage)
        # the way forward before any step is named: a question that invites one and assumes none
        if (stage == "way_forward" and not state.action_plan and read["aim"] not in ("options", "commitment")
                and any(q not in state.asked for q in self.angles["before_plan"])):
            return self._before_plan(state, text, read)
        linked = (followup.earlier_theme(themes[0], themes[1], sid, read["vector"])
                  if themes and stage in ("reality", "options") else None)
        if linked:  # the person's own earlier words, quoted, and how this connects with them
            reflection = self._reflection(state, text, read)
            question = followup.theme_question(linked[0])
            state.theme_linked = True
            state.asked.append(question)
            meta = {"stage": stage, "citations": [], "route": "theme", "memory_item": linked[0].id,
                    "theme_p": round(linked[1], 3), **self._signals_meta(read)}
            return f"{reflection} {question}", meta
        pages = self.index.search(text, k=2)
        questions = self._candidates(text, state, stage, read, pool=12)[:3]
        reflection = self._reflection(state, text, read)
        # on the embedded model (it chooses among candidates; a free-writing model writes its own question from
        # the person's words): the words they put in quotes, or the feeling they named, when the library has
        # nothing closer to this message
        own_words = getattr(self.model, "supports_grammar", False) and not any(q.kind == "move" for q in questions)
        own = self._quoted_question(state, text, stage, reflection) if own_words else None
        if own:
            quoted, route = own
            state.asked.append(quoted)
            reply = f"{reflection} {quoted}"
            meta = self._grounding(reply, stage, pages, [], [])
            meta.update({"route": route, **self._signals_meta(read)})
            return reply, meta
        written, problems = self._written(sid, state, text, stage, read)
        if written:
            reflection, question = writer.split_reply(written) or ("", written)
            state.reflected.append(reflection)
            state.asked.append(question)
            meta = self._grounding(written, stage, pages, [], [])
            meta.update({"route": "written", **self._signals_meta(read)})
            if problems:
                meta["writer_rejected"] = problems  # the greedy draft's problems, when the sampled one was used
            return written, meta
        reply, meta = self._generate(sid, state, text, stage, pages, questions, reflection)
        meta.update(self._signals_meta(read))
        if problems:
            meta["writer_rejected"] = problems
        question = reply.rsplit(". ", 1)[-1]
        state.asked.append(question)
        return reply, meta

    # -- understanding the message: audience, GROW aim, situation ------------------------------------
    def _understand(self, state: GrowState, text: str, previous: str | None = None,
                    opening: str | None = None) -> dict[str, Any]:
        """One embedding of the message; the audience and GROW-aim signals and the closest situation.
        ``opening`` (the session's first message, which usually says what the situation is) is read too, so a
        later message that only says how it feels keeps the session's situation."""
        vector = embed([text])[0]
        before = embed([previous])[0] if previous else None
        opened = embed([opening])[0] if opening else None
        aim = self.signals.grow(vector, text)
        audience = state.audience
        first = state.audience is None and not state.audience_lean
        if audience is None:  # sticky once the signal is confident; until then a guess from the session so far
            heard = self.signals.audience(vector, text)
            state.audience, audience = heard.label, heard.label or self._audience_guess(state, vector, heard)
        match = self.moves.match(vector, audience)
        # a confident situation settles who is speaking only in the first message: later ones often describe
        # someone else ("I used to enjoy being the person colleagues consulted" is not a manager's)
        if match and match.confident and state.audience is None and first and match.situation.audience != "both":
            state.audience = match.situation.audience
        return {"vector": vector, "previous": before, "opening": opened, "aim": aim.label, "aim_p": aim.p,
                "match": match, "audience": audience}

    def _followup(self, state: GrowState, text: str, user_id: str, first: bool,
                  greeting: bool) -> tuple[str, dict[str, Any]] | None:
        """A new session that opens with a greeting follows up a remembered plan, and the next turn answers how
        it went; a first message that already says how it went is answered at once."""
        assert self.memory is not None
        if first and state.followup is None:
            if greeting:  # the session only opens: the remembered plan is the natural first question
                opened = followup.opening(self.memory, user_id)
                if opened:
                    reply, meta, fstate = opened
                    state.followup = fstate.to_dict()
                    return reply, meta
                return None
            item = self.memory.open_plan(user_id)
            if item is None or is_injection(text) or not followup.reports_on(text, item.text):
                return None  # something new: it is coached as it is, and the plan waits for a later session
            fstate = followup.State(item=item.id, plan=item.text)  # they already say how it went: answer that
            reply, meta = followup.answer(self.memory, fstate, text, state.asked)
            state.followup = fstate.to_dict()
            return reply, meta
        if state.followup and not state.followup["answered"] and not is_injection(text):
            fstate = followup.State(**state.followup)
            reply, meta = followup.answer(self.memory, fstate, text, state.asked)
            state.followup = fstate.to_dict()
            return reply, meta
        return None

    def _not_yet(self, state: GrowState, text: str, stage: str) -> tuple[str, dict[str, Any]]:
        """They want time before deciding: reflect that, and ask about the thinking time, not a first step."""
        angle = self.angles["not_yet"]
        options = [r for r in (_mirrored(state, text), angle["reflection"]) if r]
        reflection = _first_unused(options, state.reflected, fallback=angle["reflection"])
        state.reflected.append(reflection)
        question = _first_unused(angle["questions"], state.asked)
        state.asked.append(question)
        reply = f"{reflection} {question}"
        meta = self._grounding(reply, stage, self.index.search(text, k=2), [], [])
        meta["route"] = "not_yet"
        return reply, meta

    def _unlike_asked(self, questions: list[str], state: GrowState) -> list[str]:
        """The questions not asked yet in this session and not close in meaning to one that was (cosine
        ``NEAR_REPEAT``): "What could get in the way between now and then…" after "What might get in the
        way, and how will you handle it?" reads as the same question twice."""
        fresh = [q for q in questions if q not in state.asked]
        if not fresh or not state.asked:
            return fresh
        sims = self.moves.question_vectors(fresh) @ self.moves.question_vectors(state.asked).T
        return [q for q, row in zip(fresh, sims, strict=True) if float(row.max()) < NEAR_REPEAT]

    def _before_plan(self, state: GrowState, text: str, read: dict[str, Any], angle: str = "before_plan",
                     stage: str = "way_forward") -> tuple[str, dict[str, Any]]:
        """The way-forward stage while the person is still making sense of things (no step or option named):
        a reflection, and the unused inviting question closest in meaning to what they said. With ``angle``
        "weighing": the options stage after the person named options, a question that weighs them."""
        reflection = self._reflection(state, text, read)
        unused = [q for q in self.angles[angle] if q not in state.asked]
        sims = self.moves.question_vectors(unused) @ read["vector"]
        question = unused[max(range(len(unused)), key=lambda i: float(sims[i]))]
        state.asked.append(question)
        reply = f"{reflection} {question}"
        meta = self._grounding(reply, stage, self.index.search(text, k=2), [], [])
        meta.update({"route": angle, **self._signals_meta(read)})
        return reply, meta

    def _close(self, sid: str, state: GrowState, text: str, read: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The person's own plan, stored in their words (and remembered for next time); the question helps
        them follow it through."""
        state.action_plan = text
        self.store.save_action_plan(sid, text)
        moves = self._library_questions(state, "way_forward", read)
        fitting = self._unlike_asked([c["question"] for c in self.angles.get("closing_by_plan", [])
                                      if re.search(c["when"], text, re.I)], state)
        unused = fitting + self._unlike_asked(self.angles["closing_questions"], state)
        # a question that fits what the plan holds comes first: blind readers scored it 1.55 on average (38
        # replies, blind5-blind8), a library way-forward question in a conversation 0.92 (13), a stock one ~1
        question = fitting[0] if fitting else moves[0][0].text if moves else (unused or self.angles["closing_questions"])[0]
        state.asked.append(question)
        cites = [moves[0][0].situation.citation()] if moves and not fitting else []
        return f"{self._plan_reflection(text)} {question}", {
            "stage": "way_forward", "citations": cites, "route": "closing", **self._signals_meta(read),
            "remember": [("plan", excerpt(text, "plan"))]}

    def _quoted_question(self, state: GrowState, text: str, stage: str,
                         reflection: str = "") -> tuple[str, str] | None:
        """The person's own question about what to do, asked back about that action ("What would it take to
        keep your best engineer from leaving?"), while they are still working out what they want, what is
        going on and what they could do; else a question about the words they put in quotes ("What do you make
        of "so close"?"), else one built on a clause of theirs about what they want, do not want, have to do,
        love or miss ("What would it cost you to leave the classroom?"), else about the feeling they named, else
        how someone of theirs sees it ("How do you think your best engineer sees it?"), in the first two stages;
        only if not asked already, and a clause question only of a kind not asked this session, preferring a
        clause the reflection does not already say. Returns the question and its route ("asked", "quoted",
        "clause" or "feeling")."""
        from .mirror import asked_action, clause_questions, one_person, quoted_phrase

        found: list[tuple[str | None, str]] = []
        asked = self.angles.get("asked_questions") or {}
        if asked and stage in ("goal", "reality", "options"):
            action = asked_action(text)
            followups = self.angles.get("asked_followups") or {}
            if action and reflection.rstrip(".").endswith(action[1]) and action[0] in followups:
                found.append((followups[action[0]], "asked"))  # the reflection has just said the action
            else:
                found.append((asked[action[0]].format(action=action[1]) if action and action[0] in asked else None,
                              "asked"))
        if stage in ("goal", "reality"):
            template = self.angles.get("quoted_question")
            phrase = quoted_phrase(text) if template else None
            # else a question about the feeling they named ("What is the restlessness pointing you toward?")
            found.append((template.format(phrase=phrase) if phrase else None, "quoted"))
            built = self._clause_questions(state, clause_questions(text), reflection, one_person(text))
            found += [(q, "clause") for q, kind in built if kind != "other_side"]
            found.append((feeling_question(text), "feeling"))
            found += [(q, "clause") for q, kind in built if kind == "other_side"]
        return next(((q, route) for q, route in found if q and q not in state.asked), None)

    def _clause_questions(self, state: GrowState, built: list[tuple[str, dict[str, str], str]],
                          reflection: str, pronoun: str | None = None) -> list[tuple[str, str]]:
        """(question, kind) for each clause, of kinds not asked yet this session, clauses the reflection
        does not already say first: ``prompts/angles.yaml: clause_questions`` name the clause's words; after a
        reflection that has just said the clause, ``clause_followups`` ask about it without saying it twice
        ("It sounds like you don't want to leave the classroom. What would it cost you if you had to?")."""
        fulls = self.angles.get("clause_questions") or {}
        followups = self.angles.get("clause_followups") or {}
        used = {kind for kind in fulls for t in [*fulls[kind], *followups.get(kind, [])]
                if any(re.fullmatch(re.sub(r"\\{\w+\\}", ".+?", re.escape(t)), q) for q in state.asked)}
        out = []
        for kind, slots, clause in sorted(built, key=lambda b: b[2] in reflection):
            if kind not in fulls or kind in used:
                continue
            said = clause in reflection
            items = followups.get(kind, fulls[kind]) if said else fulls[kind]
            if said and kind in ("other_side", "their_wish") and slots["who"] not in ("he", "she"):
                # the reflection has just named them: "she" when the person calls them so (and no one "he"), else
                # "they" ("What do you think matters most to them?" of "my best engineer… she has an offer")
                if pronoun and (slots.get("verb") == "sees" or slots.get("hope") == "hopes"):  # not "your leads"
                    slots = {**slots, "who": pronoun, "whom": {"he": "him", "she": "her"}[pronoun]}
                else:
                    slots = {**slots, "who": "they", "verb": "see", "hope": "hope", "whom": "them"}
            # which wording first depends on the clause, so different people are not all asked the same
            start = zlib.crc32(clause.encode()) % len(items)
            question = next((q for t in items[start:] + items[:start] if (q := t.format(**slots)) not in state.asked),
                            None)
            if question:
                out.append((question, kind))
        return out

    def _plan_reflection(self, text: str) -> str:
        """The plan's clearest step quoted back in the person's words, else the plain closing reflection."""
        from .mirror import plan_pieces, quoted_plan
        from .understanding.coder import split_sentences
        from .understanding.proposals import proposal_scores

        pieces = plan_pieces(split_sentences(text))
        quoted = quoted_plan(pieces, proposal_scores(pieces))
        template = self.angles["reflections"].get("closing_quote")
        return template.format(plan=quoted) if quoted and template else self.angles["reflections"]["closing"]

    def _names_step(self, read: dict[str, Any], text: str) -> bool:
        """Does the message name a step the person will take (the ``next_step`` head, read once per turn)?"""
        if "step_p" not in read:
            read["step_p"] = self.signals.step_p(read["vector"], text)
        return bool(read["step_p"] >= STEP_SURE)

    def _audience_guess(self, state: GrowState, vector: Any, heard: Any) -> str:
        """The head's probability averaged with the audiences of the five closest situations (their example
        messages are written in each audience's voice): 50 of 56 dev openers right, against 48 for the head.
        Later messages add to the first rather than replace it (``GrowState.audience_lean``): one message
        about a colleague does not turn a high performer into a manager for a turn."""
        top = self.moves.scores(vector)[:5]
        total = sum(max(v, 0.0) for _, v in top) or 1.0
        p_situations = sum(max(v, 0.0) for s, v in top if s.audience == "manager") / total
        p_head = heard.p if heard.best == "manager" else 1 - heard.p
        p = (p_head + p_situations) / 2
        state.audience_lean += [round(p, 4)] * (2 if not state.audience_lean else 1)
        return "manager" if sum(state.audience_lean) / len(state.audience_lean) >= 0.5 else "high-performer"

    def _move_citation(self, hit: Hit) -> dict[str, Any]:
        """A library question cites its situation's handbook page and section."""
        situation = self.moves.by_id(hit.id)
        assert situation is not None  # library hits are built from the library
        return situation.citation()

    @staticmethod
    def _signals_meta(read: dict[str, Any]) -> dict[str, Any]:
        m: Match | None = read["match"]
        return {"aim": read["aim"], "situation": m.situation.id if m else None,
                "situation_score": round(m.score, 3) if m else None}

    def _reflection(self, state: GrowState, text: str, read: dict[str, Any]) -> str:
        """Well-formed by construction: a library reflection when one is close in meaning to the message, a
        feeling the person named, or a plain reflection of what the message does (its GROW aim). Never one
        already used in the session."""
        options: list[str] = []
        close = self.moves.rank([(read["vector"], 1.0)], "reflection", read["audience"], set(state.reflected),
                                situations=3, prior=False)
        if close and close[0][1] >= REFLECT:
            options.append(close[0][0].text)
        said = _mirrored(state, text)
        if said:
            options.append(said)
        felt = feeling_reflection(text)
        if felt:
            options.append(felt)
        asked = self._asked_reflection(text) if not said else None
        if asked:
            options.append(asked)
        # a plain reflection names what the message does ("You have a step in mind"): only when the GROW
        # signal is sure, else it is a misreading ("a step in mind" to someone who said they had no plan)
        aim = read["aim"] if read["aim"] and read.get("aim_p", 0.0) >= PLAIN_AIM_SURE else "reality"
        if aim == "commitment" and not (self._names_step(read, text) and _OWN_STEP.search(text)):
            aim = "reality"  # "You have a step in mind" needs a step of their own in words: readers scored it 0 in
            # 8 of 10 first messages that named none ("Meeting tomorrow.", "my director told me to…")
        about = topic_reflection(text, aim)
        if about:
            options.append(about)
        options += plain_reflections()["aims"].get(aim, [])
        options += plain_reflections()["aims"]["reality"]
        reflection = _first_unused(options, state.reflected)
        state.reflected.append(reflection)
        return reflection

    def _asked_reflection(self, text: str) -> str | None:
        """The person's own question about what to do, reflected ("It sounds like you're weighing whether to tell
        your boss you have another offer."), when their words give nothing else to reflect."""
        from .mirror import asked_action

        templates = self.angles.get("asked_reflections") or {}
        action = asked_action(text) if templates else None
        return templates[action[0]].format(action=action[1]) if action and action[0] in templates else None

    def _library_questions(self, state: GrowState, stage: str, read: dict[str, Any]) -> list[tuple[Move, float]]:
        """Library questions for this stage and audience, not yet asked, closest to what was just said (and,
        with less weight, to what the session is about); only those within reach of the best."""
        context = [(read["vector"], 1.0)]
        previous_weight = 0.35 if read.get("previous") is not None else 0.0
        if previous_weight:
            context.append((read["previous"], previous_weight))
        # the situation is the one closest to this message or to the session's opening message
        about = [read["opening"]] if read.get("opening") is not None else []
        ranked = self.moves.rank(context, stage, read["audience"], set(state.asked), situation_from=about,
                                 min_close=SITUATION_FLOOR)
        # never a question that takes for granted what the person has not said, or speaks to the other audience
        ranked = [(m, v) for m, v in ranked if not presupposes_unsaid(m.text, read["said"])
                  and not audience_mismatch(m.text, read["audience"])]
        if not ranked or ranked[0][1] - previous_weight * 0.5 < QUESTION_FLOOR:  # not sure it is about this
            return []
        return [(m, v) for m, v in ranked[:3] if v >= ranked[0][1] - 0.03]

    def _candidates(self, text: str, state: GrowState, stage: str, read: dict[str, Any], pool: int) -> list[Hit]:
        """The library's questions closest to the message, else bank questions for this stage and audience;
        never one already asked."""
        moves = self._library_questions(state, stage, read)
        if moves:
            return [Hit(m.situation.page, m.situation.title, [], m.text, v, heading=m.situation.section, kind="move",
                        stage=stage, id=m.situation.id, audience=m.situation.audience) for m, v in moves]
        # bank questions: for this audience only once it is known (both-audience ones until then), never one
        # that takes for granted what the person has not said
        audience = state.audience
        later = state.coachee_turns > 1  # a question about what brought them here only opens a session
        found = [q for q in self.index.search(text, k=pool * 3, kind="question", stage=stage)
                 if q.text not in state.asked and (q.audience == "both" or q.audience == audience)
                 and not (later and q.text in self.opening_questions)
                 and not presupposes_unsaid(q.text, read.get("said", text))
                 and not audience_mismatch(q.text, read["audience"])]
        return self._topical(found, read["vector"])

    def _topical(self, questions: list[Hit], vector: Any) -> list[Hit]:
        """Bank questions that fit this message: a general one always, a topic one only when it is close in
        meaning to the message (``BANK_FLOOR``); retrieval alone offered the same topic questions to many
        messages they did not fit. When none is left, the general ones of the stage."""
        if not questions:
            return questions
        sims = self.moves.question_vectors([q.text for q in questions]) @ vector
        kept = [q for q, s in zip(questions, sims, strict=True)
                if set(q.topics) <= GENERAL_TOPICS or float(s) >= BANK_FLOOR]
        return kept or [q for q in questions if set(q.topics) <= GENERAL_TOPICS] or questions

    def _hold_role(self, state: GrowState, text: str) -> tuple[str, dict[str, Any]]:
        pages = self.index.search(text, k=2)
        read = self._understand(state, text)
        read["said"] = text
        questions = self._candidates(text, state, state.stage, read, pool=10)
        # under pressure, the plainest open form: a What/How question first
        questions.sort(key=lambda q: not q.text.startswith(("What ", "How ")))
        question = questions[0].text if questions else self.angles["low_effort"][0]
        state.asked.append(question)
        titles = " and ".join(f"“{t}”" for t in dict.fromkeys(p.title for p in pages))
        reply = f"{self.angles['reflections']['injection']} The handbook covers this in {titles}. {question}"
        cites = [_citation(p) for p in pages] + [self._move_citation(q) for q in questions[:1] if q.kind == "move"]
        return reply, {"stage": state.stage, "citations": cites, "route": "injection"}

    def _new_angle(self, state: GrowState, read: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if state.low_effort_streak >= 3:
            return self.angles["pause"], {"stage": state.stage, "citations": [], "route": "pause"}
        if read.get("previous") is not None:  # a different question on what they said before
            moves = self._library_questions(state, state.stage, {**read, "vector": read["previous"], "previous": None})
            if moves:
                m = moves[0][0]
                state.asked.append(m.text)
                return f"{self.angles['reflections']['low_effort']} {m.text}", {
                    "stage": state.stage, "citations": [m.situation.citation()], "route": "low_effort"}
        question = _first_unused(self.angles["low_effort"], state.asked)
        state.asked.append(question)
        return f"{self.angles['reflections']['low_effort']} {question}", {
            "stage": state.stage, "citations": [], "route": "low_effort"}

    def _generate(self, sid: str, state: GrowState, text: str, stage: str, pages: list[Hit],
                  questions: list[Hit], reflection: str) -> tuple[str, dict[str, Any]]:
        grammar_ok = getattr(self.model, "supports_grammar", False)
        # the embedded model only chooses among candidates: a short prompt keeps prompt evaluation fast
        snippet = 90 if grammar_ok else 220
        context = "\n".join(f"- {p.title}: {p.text.split(chr(10), 2)[-1][:snippet]}" for p in pages)
        candidates = "\n".join(f"- {q.text}" for q in questions)
        history = self._history(sid, budget=120 if grammar_ok else max(self.settings.n_ctx // 4, 200))
        values = {"stage": stage.replace("_", " "), "stage_aim": AIMS[stage], "context": context,
                  "candidates": candidates, "history": history, "message": text}
        prompt = ChatPromptTemplate.from_messages([("system", self.template.system), ("human", self.template.user)])
        secret = self.template.system.split("Coaching stage")[0]
        problems: list[list[str]] = []
        cand_texts = [q.text for q in questions]
        if not cand_texts:  # never let the model write a question of its own on a grammar backend
            plain = [q for q in self.angles["stage_questions"][stage] if q not in state.asked]
            cand_texts = plain[:1] or [self.angles["low_effort"][0]]
        drafts: list[str] = []
        drafts_questions: list[str] = []  # candidates already chosen: a second draft chooses another
        started = time.perf_counter()
        for attempt in range(2):
            if attempt and time.perf_counter() - started > self.settings.timeout / 2:
                break  # no time for a second draft within the turn's budget: the constructed reply below
            kwargs: dict[str, Any] = {}
            if grammar_ok:
                # A 135M model writes unfaithful reflections and aimless questions of its own, so on a
                # grammar-capable backend the reflection is built without it (``_reflection``) and the
                # model's job is to choose among the situation's questions (constrained to the candidates).
                kwargs = {"grammar": reply_grammar(cand_texts, free=not cand_texts, reflect=False),
                          "temperature": 0.3 if attempt == 0 else 0.0}
            elif attempt == 1:
                values = {**values, "message": text + "\n(Reply with one reflection sentence, then exactly one "
                          "open question that starts with What or How. No advice.)"}
            choose = getattr(self.model, "choose", None)
            if grammar_ok and choose is not None and cand_texts:
                # the same choice as the grammar at temperature 0, reading only where the candidates part
                left = [q for q in cand_texts if q not in drafts_questions] or cand_texts
                reply = left[choose(prompt.format_messages(**values), left)]
                drafts_questions.append(reply)
            else:
                model = self.model.bind(**kwargs) if kwargs else self.model
                chain = prompt | model | StrOutputParser()
                reply = clean_reply(chain.invoke(values))
            if grammar_ok:
                reply = f"{reflection} {reply}"
            found = check_reply(reply, secret, trusted=cand_texts)
            if not grammar_ok:
                found += reflection_problems(reply, text)
            problems.append(found)
            drafts.append(reply)
            if not found:
                return reply, self._grounding(reply, stage, pages, questions, problems)
        question = cand_texts[0] if cand_texts else self.angles["low_effort"][0]
        reply = f"{reflection} {question}"
        meta = self._grounding(reply, stage, pages, questions, problems)
        meta["fallback"] = True
        meta["rejected"] = drafts
        return reply, meta

    @functools.cached_property
    def writer_model(self) -> Any:
        """The embedded model with the writer's adapter (``assistant/writer.py``), when it is shipped and on."""
        model = self._model if self._model is not None else (self.model if self.settings.backend == "embedded"
                                                              else None)
        if not (self.settings.writer and isinstance(model, LlamaCppChat) and writer.ADAPTER.is_file()):
            return None
        return load_writer(model.model_path, str(writer.ADAPTER), model.n_ctx, model.n_threads)

    def _written(self, sid: str, state: GrowState, text: str, stage: str,
                 read: dict[str, Any]) -> tuple[str | None, list[str]]:
        """The writer's reply, or None and why (nothing when there is no writer)."""
        if self.writer_model is None:
            return None, []
        turns = self.store.turns(sid)[:-1]
        previous = [{"person": a.text, "coach": b.text} for a, b in zip(turns, turns[1:], strict=False)
                    if a.role == "user" and b.role == "assistant" and not b.meta.get("safety")]
        return writer.write(self.writer_model, read["audience"], stage, previous[-3:], text, state.asked,
                            state.reflected)

    def _grounding(self, reply: str, stage: str, pages: list[Hit], questions: list[Hit],
                   problems: list[list[str]]) -> dict[str, Any]:
        """Cite what the question drew on: a situation's question cites its page and section; any other
        question cites the handbook chunks it is close to (the closest always, so a reader can open it)."""
        question = reply.rsplit(". ", 1)[-1]
        cites = [self._move_citation(q) for q in questions if q.text == question and q.kind == "move"]
        if pages:
            vecs = self.index.embedder.embed([question] + [p.text for p in pages])
            sims = [sum(a * b for a, b in zip(vecs[0], v, strict=True)) for v in vecs[1:]]
            for i, (p, sim) in enumerate(sorted(zip(pages, sims, strict=True), key=lambda x: -x[1])):
                if (not cites and i == 0) or sim >= 0.3:
                    cites.append(_citation(p))
        return {"stage": stage, "citations": cites, "guard": problems, "route": "coach"}
