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

import re
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from .config import Settings
from .errors import CoachError, InputError
from .guard import check_reply, clean_reply, reflection_problems, reply_grammar
from .llm import backend_failure, echo_reflection, get_chat_model, token_counter
from .prompts import load_data, load_prompt
from .retrieval import HandbookIndex, Hit
from .stages import AIMS, GrowState, is_commitment
from .transcripts import TranscriptStore
from .understanding.coder import code_text
from .understanding.referrals import referral, resume_line
from .understanding.safety import SafetyScreen

_INJECTION = re.compile(
    r"(ignore (all |your |the |any )?(previous |prior |above )?(rules|instructions|prompt|guidelines)|"
    r"disregard (your|the|all)|system prompt|your (instructions|prompt|rules|guidelines|guard)|"
    r"^\s*(system|developer|admin)\s*[:>\]]|\[(system|admin)\]|<\s*system|you are now|pretend (you are|to be|you're)|"
    r"act as|role-?play|from now on|developer mode|jailbreak|\bdan\b|new instructions|override|"
    r"just (tell|give) me|stop asking|no (more )?questions|give me (the answer|three|3|a list|steps|a script)|"
    r"tell me what to do|what would you do|answer directly|straight answer|don't ask me|"
    r"print (your|the)|repeat (the|your) (text|words|prompt)|reveal|\bsystem (notice|message|override|update)\b|"
    r"hidden (text|instructions|prompt)|drop the (coaching|questions|act|routine)|stop coaching)", re.I | re.M)


def is_injection(message: str) -> bool:
    """Prompt-injection and "just tell me" pressure."""
    return bool(_INJECTION.search(message))


_MANAGER = re.compile(r"\b(my (report|reports|team|direct|engineer|engineers|designer|analyst|star|best|top|"
                      r"strongest|senior|employee|employees|staff|people|salesperson|developer|hire|new lead|manager'?s? role)|"
                      r"one of my|keep (someone|people|them|him|her) (motivated|engaged)|my (team|people) (members?|keeps?)|"
                      r"(she|he|they) (wants?|doesn'?t|told me|said)|as (a|her|his|their) manager|i manage)\b", re.I)


def guess_audience(message: str, state: GrowState) -> str:
    """``manager`` when the coachee talks about people they manage, else ``high-performer``; sticky."""
    if state.audience is None:
        state.audience = "manager" if _MANAGER.search(message) else "high-performer"
    return state.audience


def _check_message(message: str, limit: int) -> str:
    text = (message or "").strip()
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
                 index: HandbookIndex | None = None, safety: SafetyScreen | None = None) -> None:
        self.settings = settings
        self.store = store or TranscriptStore(settings.db_path)
        self._model = model
        self._index = index
        self.safety = safety or SafetyScreen()
        self.template = load_prompt("coach")
        self.angles = load_data("angles")

    @property
    def model(self) -> BaseChatModel:
        if self._model is None:
            self._model = get_chat_model(self.settings)
        return self._model

    @property
    def index(self) -> HandbookIndex:
        if self._index is None:
            self._index = HandbookIndex(self.settings)
            self._index.ensure()
        return self._index

    # -- session ---------------------------------------------------------------------------------
    def _session(self, session_id: str | None) -> tuple[str, GrowState]:
        if session_id and self.store.has_session(session_id):
            return session_id, GrowState.from_dict(self.store.session(session_id).state)
        state = GrowState()
        sid = self.store.create_session(mode="coach", backend=self.settings.backend, model=self.settings.model_name,
                                        state=state.to_dict(), session_id=session_id)
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
    def turn(self, message: str, session_id: str | None = None) -> dict[str, Any]:
        """Run one coachee turn and return the BRIEF's ``ask`` JSON (plus a few extra fields)."""
        result: dict[str, Any] = {}
        for item in self.stream(message, session_id):
            if isinstance(item, dict):
                result = item
        return result

    def stream(self, message: str, session_id: str | None = None) -> Iterator[str | dict[str, Any]]:
        """Yield the approved reply in small pieces, then the result dict."""
        text = _check_message(message, self.settings.max_message_chars)
        started = time.perf_counter()
        sid, state = self._session(session_id)
        self.store.add_turn(sid, "user", text, {"stage": state.stage})
        try:
            reply, meta = self._respond(sid, state, text)
        except CoachError:
            self.store.save_state(sid, state.to_dict())
            raise
        except Exception as exc:  # a client library failed: one line, the user turn is kept
            self.store.save_state(sid, state.to_dict())
            raise backend_failure(exc) from exc
        meta["latency_s"] = round(time.perf_counter() - started, 3)
        meta["codes"] = [c for _, c in code_text(reply)]
        self.store.save_state(sid, state.to_dict())
        self.store.add_turn(sid, "assistant", reply, meta)
        words = reply.split(" ")
        for i in range(0, len(words), 3):
            yield (" " if i else "") + " ".join(words[i:i + 3])
        yield {"reply": reply, "session": sid, "stage": meta.get("stage"), "citations": meta["citations"],
               "codes": meta["codes"], "safety": meta.get("safety"), "action_plan": state.action_plan,
               "guard": meta.get("guard"), "fallback": meta.get("fallback", False),
               "backend": self.settings.backend, "model": self.settings.model_name}

    def _respond(self, sid: str, state: GrowState, text: str) -> tuple[str, dict[str, Any]]:
        earlier = self.store.turns(sid)[:-1]  # the current message is already stored
        referred = [t.meta["safety"] for t in earlier if t.role == "assistant" and t.meta.get("safety")]
        after_referral = bool(earlier) and bool(earlier[-1].meta.get("safety"))
        # the previous message is context for the screen, unless it was itself referred: a disclosure is
        # never carried forward, so the next turn is judged on its own words
        previous = None if after_referral else next((t.text for t in reversed(earlier) if t.role == "user"), None)
        reading = self.safety.read(text, previous=previous)
        if reading.kind:
            meta = {"safety": reading.kind, "stage": state.stage, "citations": [], "route": "safety",
                    "safety_via": reading.via, "safety_scores": reading.scores}
            return referral(reading.kind, self.settings.resources, again=reading.kind in referred), meta
        reply, meta = self._coach(sid, state, text)
        if after_referral and meta.get("route") != "pause":
            reply = f"{resume_line()} {reply}"
        return reply, meta

    def _coach(self, sid: str, state: GrowState, text: str) -> tuple[str, dict[str, Any]]:
        if is_injection(text):
            return self._hold_role(state, text)
        stage = state.update(text)
        if state.low_effort_streak:
            return self._new_angle(state)
        if stage == "way_forward" and is_commitment(text) and not state.action_plan:
            state.action_plan = text
            self.store.save_action_plan(sid, text)
            closing = self.angles["closing_questions"][0]
            return f"{self.angles['reflections']['closing']} {closing}", {
                "stage": stage, "citations": [], "route": "closing"}
        pages = self.index.search(text, k=2)
        questions = self._candidates(text, state, stage, pool=12)[:3]
        reply, meta = self._generate(sid, state, text, stage, pages, questions)
        question = reply.rsplit(". ", 1)[-1]
        state.asked.append(question)
        return reply, meta

    def _candidates(self, text: str, state: GrowState, stage: str, pool: int) -> list[Hit]:
        """Bank questions for this stage, for this coachee's audience, not yet asked, best first."""
        audience = guess_audience(text, state)
        return [q for q in self.index.search(text, k=pool, kind="question", stage=stage)
                if q.text not in state.asked and q.audience in (audience, "both")]

    def _hold_role(self, state: GrowState, text: str) -> tuple[str, dict[str, Any]]:
        pages = self.index.search(text, k=2)
        questions = self._candidates(text, state, state.stage, pool=10)
        question = questions[0].text if questions else self.angles["low_effort"][0]
        state.asked.append(question)
        titles = " and ".join(f"“{t}”" for t in dict.fromkeys(p.title for p in pages))
        reply = f"{self.angles['reflections']['injection']} The handbook covers this in {titles}. {question}"
        cites = [_citation(p) for p in pages] + [_citation(q) for q in questions if q.text == question]
        return reply, {"stage": state.stage, "citations": cites, "route": "injection"}

    def _new_angle(self, state: GrowState) -> tuple[str, dict[str, Any]]:
        if state.low_effort_streak >= 3:
            return self.angles["pause"], {"stage": state.stage, "citations": [], "route": "pause"}
        unused = [q for q in self.angles["low_effort"] if q not in state.asked] or self.angles["low_effort"]
        question = unused[0]
        state.asked.append(question)
        return f"{self.angles['reflections']['low_effort']} {question}", {
            "stage": state.stage, "citations": [], "route": "low_effort"}

    def _generate(self, sid: str, state: GrowState, text: str, stage: str, pages: list[Hit],
                  questions: list[Hit]) -> tuple[str, dict[str, Any]]:
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
        drafts: list[str] = []
        for attempt in range(2):
            kwargs: dict[str, Any] = {}
            if grammar_ok:
                # A 135M model writes unfaithful reflections and aimless questions of its own, so on a
                # grammar-capable backend the reflection is the coachee's own words and the model's job is
                # to choose the retrieved question that fits (constrained to the candidates).
                kwargs = {"grammar": reply_grammar(cand_texts, free=not cand_texts, reflect=False),
                          "temperature": 0.3 if attempt == 0 else 0.0}
            elif attempt == 1:
                values = {**values, "message": text + "\n(Reply with one reflection sentence, then exactly one "
                          "open question that starts with What or How. No advice.)"}
            model = self.model.bind(**kwargs) if kwargs else self.model
            chain = prompt | model | StrOutputParser()
            reply = clean_reply(chain.invoke(values))
            if grammar_ok:
                reply = f"{echo_reflection(text)} {reply}"
            found = check_reply(reply, secret, trusted=cand_texts)
            if not grammar_ok:
                found += reflection_problems(reply, text)
            problems.append(found)
            drafts.append(reply)
            if not found:
                return reply, self._grounding(reply, stage, pages, questions, problems)
        question = cand_texts[0] if cand_texts else self.angles["low_effort"][0]
        reply = f"{echo_reflection(text)} {question}"
        if check_reply(reply):  # the echo itself tripped the guard: use a neutral reflection
            reply = f"It sounds like this matters to you. {question}"
        meta = self._grounding(reply, stage, pages, questions, problems)
        meta["fallback"] = True
        meta["rejected"] = drafts
        return reply, meta

    def _grounding(self, reply: str, stage: str, pages: list[Hit], questions: list[Hit],
                   problems: list[list[str]]) -> dict[str, Any]:
        """Cite what the question drew on: the bank entry it used, and the page chunks it is close to."""
        question = reply.rsplit(". ", 1)[-1]
        cites = [_citation(q) for q in questions if q.text == question]
        if pages:
            vecs = self.index.embedder.embed([question] + [p.text for p in pages])
            for p, v in zip(pages, vecs[1:], strict=True):
                if cites or sum(a * b for a, b in zip(vecs[0], v, strict=True)) >= 0.3:
                    cites.append(_citation(p))
        return {"stage": stage, "citations": cites, "guard": problems, "route": "coach"}
