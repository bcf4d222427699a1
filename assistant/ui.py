"""The Gradio app: Coach, Rehearse and My sessions tabs (members) and Review (reviewers). Thin by design.

Handlers are generators that stream, copy the ``history`` they are given instead of mutating it, and
turn domain errors into a chat message. Every handler is registered through ``Gate.guard`` with the
role it needs and receives the caller's identity, read on the server from the request
(``people.access``); in the default local mode that is the local user, with no login. The coaching,
rehearsal, scoring and people logic lives elsewhere.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from typing import Any

import gradio as gr

from .config import Settings
from .errors import CoachError
from .people.access import LOCAL, Gate, Identity

TITLE = "The high-performer coach"


def _cites_md(citations: list[dict[str, Any]]) -> str:
    if not citations:
        return ""
    seen = dict.fromkeys(f"**{c['title']}** — `{c['source']}`" for c in citations)
    return "**Drawn from the handbook:**\n\n" + "\n".join(f"- {s}" for s in seen)


def _status(settings: Settings, session: str | None, stage: str | None) -> str:
    stage_txt = (stage or "goal").replace("_", " ")
    return (f"Model: **{settings.backend}** · `{settings.model_name}` · session `{session or 'new'}` · "
            f"GROW stage: **{stage_txt}**")


class Services:
    """Lazily built engines shared by every browser session."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._coach: Any = None
        self._rehearsal: Any = None
        self._lock = threading.RLock()
        self._warmed = threading.Event()
        self._warmed.set()  # cleared while a warm-up runs

    @property
    def coach(self) -> Any:
        # a turn that arrives during the warm-up waits for it: two threads importing torch and loading the
        # encoders at once fail ("partially initialized module 'torch'"), seen with two users' first turns
        if threading.current_thread().name != "warm-up":
            self._warmed.wait(timeout=600)
        with self._lock:
            if self._coach is None:
                from .chain import Coach

                self._coach = Coach(self.settings)
            return self._coach

    def start_warm(self) -> None:
        self._warmed.clear()
        threading.Thread(target=self.warm, name="warm-up", daemon=True).start()

    def warm(self) -> None:
        """Load the index, embeddings, coder and model in the background so the first turn is quick."""
        try:
            coach = self.coach
            coach.index.search("warm up", k=1)
            coach.safety.check("warm up")
            from .understanding.coder import code_text

            code_text("What matters to you?")
            if self.settings.backend == "embedded":
                coach.model.invoke("hi", max_tokens=1)
        except Exception:  # noqa: BLE001 - a failure here shows up, with its message, on the first turn
            pass
        finally:
            self._warmed.set()

    @property
    def rehearsal(self) -> Any:
        store = self.coach.store
        with self._lock:
            if self._rehearsal is None:
                from .rehearsal import Rehearsal

                self._rehearsal = Rehearsal(self.settings, store=store)
            return self._rehearsal


def tension_sparkline(path: list[int]) -> str:
    """Tension after each turn (0-10) as a one-line plot: ▁ calm … █ at its highest."""
    bars = "▁▂▃▄▅▆▇█"
    return "".join(bars[min(max(int(t), 0), 10) * (len(bars) - 1) // 10] for t in path[-24:]) or "▁"


def markdown_text(text: str) -> str:
    """The manager's own words shown literally inside Markdown: no table breaks, links or emphasis."""
    flat = " ".join(html.escape(text).split())
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|>~])", r"\\\1", flat)


def _chat_label(persona: Any) -> str:
    """The rehearsal chat's label: who the manager is talking with."""
    return f"You are the manager, talking with {persona.name}" if persona is not None else "You are the manager"


def build_app(settings: Settings, warm: bool = False) -> gr.Blocks:
    services = Services(settings)
    if warm:
        services.start_warm()
    from .transcripts import open_store

    store = open_store(settings)
    gate = Gate(settings, store)
    team = settings.auth != "none"

    def coach_turn(who: Identity, message: str, history: list[dict[str, Any]], session: str | None
                   ) -> Iterator[tuple[Any, ...]]:
        history = list(history or [])
        if not (message or "").strip():
            yield history, "", session, gr.update(), gr.update(), gr.update()
            return
        history = [*history, {"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        yield history, "", session, gr.update(), gr.update(), gr.update()
        try:
            for piece in services.coach.stream(message, session, str(who.user_id)):
                if isinstance(piece, dict):
                    result = piece
                    plan = result.get("action_plan")
                    plan_md = f"### Your action plan\n\n> {html.escape(plan)}" if plan else ""
                    yield (history, "", result["session"], _status(settings, result["session"], result["stage"]),
                           _cites_md(result["citations"]), plan_md)
                else:
                    last = history[-1]
                    history = [*history[:-1], {"role": "assistant", "content": last["content"] + piece}]
                    yield history, "", session, gr.update(), gr.update(), gr.update()
        except CoachError as exc:
            history = [*history[:-1], {"role": "assistant", "content": f"⚠️ {exc}"}]
            yield history, message, session, gr.update(), gr.update(), gr.update()

    def new_session(who: Identity) -> tuple[Any, ...]:
        return [], "", None, _status(settings, None, None), "", ""

    def open_coach(who: Identity, sid: str) -> tuple[Any, ...]:
        """A session of the caller's, reopened in the Coach tab (outputs as ``coach_turn``'s)."""
        from .people.panel import history_of

        state = store.session(sid).state
        plan = store.action_plan(sid)
        return (history_of(store, sid), "", sid, _status(settings, sid, state.get("stage")), "",
                f"### Your action plan\n\n> {html.escape(plan)}" if plan else "")

    def open_rehearsal(who: Identity, sid: str) -> tuple[Any, ...]:
        from .people.panel import history_of
        from .personas import load_personas

        s = store.session(sid)
        path = s.state.get("path", [])
        found = [p for p in load_personas() if p.id == s.persona]
        chat = gr.update(value=history_of(store, sid), label=_chat_label(found[0] if found else None))
        return (chat, "", sid, f"Tension: **{s.state.get('tension', '?')}/10** · over time: "
                f"`{tension_sparkline(path)}`", gr.update(value=s.persona), gr.update(value=s.difficulty))

    def rehearse_turn(who: Identity, message: str, history: list[dict[str, Any]], session: str | None, persona: str,
                      difficulty: str) -> Iterator[tuple[Any, ...]]:
        history = list(history or [])
        if not (message or "").strip():
            yield history, "", session, gr.update()
            return
        history = [*history, {"role": "user", "content": message}]
        try:
            result = services.rehearsal.turn(message, persona_id=persona, difficulty=difficulty, session_id=session,
                                             user_id=str(who.user_id))
        except CoachError as exc:
            yield [*history, {"role": "assistant", "content": f"⚠️ {exc}"}], message, session, gr.update()
            return
        words = result["reply"].split(" ")
        shown = ""
        for i in range(0, len(words), 3):
            shown = (shown + " " + " ".join(words[i:i + 3])).strip()
            yield [*history, {"role": "assistant", "content": shown}], "", result["session"], gr.update()
        path = services.rehearsal.store.session(result["session"]).state.get("path", [])
        yield ([*history, {"role": "assistant", "content": result["reply"]}], "", result["session"],
               f"Tension: **{result['tension']}/10** · over time: `{tension_sparkline(path)}`"
               + (" · the real concern has come out" if result["revealed"] else ""))

    def try_again(who: Identity, session: str | None, turn: float | None,
                  history: list[dict[str, Any]]) -> tuple[Any, ...]:
        """A new branch of the scene from the manager's ``turn``-th line, with the state it had then."""
        if not session or not turn:
            return history, "", session, gr.update()
        try:
            sid = services.rehearsal.try_again(session, int(turn), str(who.user_id))
        except CoachError as exc:
            return [*list(history or []), {"role": "assistant", "content": f"⚠️ {exc}"}], "", session, gr.update()
        rstore = services.rehearsal.store
        shown = [{"role": t.role, "content": t.text} for t in rstore.turns(sid)]
        state = rstore.session(sid).state
        return (shown, "", sid, f"Tension: **{state.get('tension')}/10** · over time: "
                f"`{tension_sparkline(state.get('path', []))}` · trying again from your line {int(turn)}")

    def end_rehearsal(who: Identity, session: str | None) -> str:
        if not session:
            return "Start a conversation first."
        from .debrief import debrief

        try:
            d = debrief(services.coach.store, session, user_id=str(who.user_id))
        except CoachError as exc:
            return f"⚠️ {exc}"
        rows = "\n".join(f"| {r['practice']} | {r['rating']} | “{markdown_text(r['quote'])}” | "
                         f"{markdown_text(r['why'])} | `{r['source']}` |" for r in d["scorecard"])
        qs = "\n".join(f"- {markdown_text(q)}" for q in d["questions"])
        return (f"### Questions for you\n\n{qs}\n\n### Scorecard\n\n| practice | rating | your words | why (turn) | "
                f"handbook |\n|---|---|---|---|---|\n{rows}")

    def reset_rehearsal(who: Identity, pid: str | None) -> tuple[Any, ...]:
        from .personas import load_personas

        found = [p for p in load_personas() if p.id == pid]
        return gr.update(value=[], label=_chat_label(found[0] if found else None)), "", None, ""

    def show_brief(who: Identity, pid: str | None) -> str:
        from .personas import load_personas, persona_brief

        found = [p for p in load_personas() if p.id == pid]
        return persona_brief(found[0]) if found else ""

    def on_load(who: Identity) -> tuple[Any, ...]:
        """Show the tabs the caller's role may use (the handlers check the role again on every call)."""
        if not team:  # the local user sees every tab already; changing nothing keeps a tab the person opened
            return (gr.update(),) * 6
        is_member, is_reviewer = who.may("member"), who.may("reviewer")
        return (f"Signed in as **{who.user_id}** ({who.role}) · [log out](/logout)", gr.Tab(visible=is_member),
                gr.Tab(visible=is_member), gr.Tab(visible=is_member), gr.Tab(visible=is_reviewer),
                gr.Tabs(selected="coach" if is_member else "review"))

    member, anyone = (lambda fn: gate.guard("member", fn)), (lambda fn: gate.guard("anyone", fn))
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\nIt asks rather than tells: one reflection and one open question per turn.")
        signed_in = gr.Markdown(elem_id="signed-in")
        with gr.Tabs(selected="coach") as tabs:
            with gr.Tab("Coach", id="coach", visible=not team) as coach_tab:
                session = gr.State(None)
                status = gr.Markdown(_status(settings, None, None), elem_id="coach-status")
                chat = gr.Chatbot(label="Conversation", elem_id="coach-chat", height=420)
                with gr.Row():
                    box = gr.Textbox(placeholder="What's on your mind?", show_label=False, scale=5,
                                     elem_id="coach-input")
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="coach-send")
                with gr.Row():
                    cites = gr.Markdown(elem_id="coach-citations")
                    plan = gr.Markdown(elem_id="coach-plan")
                reset = gr.Button("New session", elem_id="coach-new")
                outs = [chat, box, session, status, cites, plan]
                send.click(member(coach_turn), [box, chat, session], outs)
                box.submit(member(coach_turn), [box, chat, session], outs)
                reset.click(member(new_session), None, outs)
            with gr.Tab("Rehearse", id="rehearse", visible=not team) as rehearse_tab:
                from .personas import load_personas, persona_brief

                personas = load_personas()
                r_session = gr.State(None)
                with gr.Row():
                    persona = gr.Dropdown([(p.title, p.id) for p in personas],
                                          value=personas[0].id if personas else None, label="Scenario",
                                          elem_id="rehearse-persona")
                    difficulty = gr.Radio(["easy", "medium", "hard"], value="medium", label="Difficulty",
                                          elem_id="rehearse-difficulty")
                brief = gr.Markdown(persona_brief(personas[0]) if personas else "", elem_id="rehearse-brief")
                tension = gr.Markdown(elem_id="rehearse-tension")
                r_chat = gr.Chatbot(label=_chat_label(personas[0] if personas else None), elem_id="rehearse-chat",
                                    height=380)
                with gr.Row():
                    r_box = gr.Textbox(placeholder="Open the conversation…", show_label=False, scale=5,
                                       elem_id="rehearse-input")
                    r_send = gr.Button("Send", variant="primary", scale=1, elem_id="rehearse-send")
                with gr.Row():
                    retry_from = gr.Number(label="Try again from your line number", value=None, precision=0,
                                           minimum=1, scale=2, elem_id="rehearse-from")
                    retry = gr.Button("Try again from here", scale=1, elem_id="rehearse-retry")
                    end = gr.Button("End and debrief", scale=1, elem_id="rehearse-end")
                report = gr.Markdown(elem_id="rehearse-debrief")
                r_outs = [r_chat, r_box, r_session, tension]
                r_send.click(member(rehearse_turn), [r_box, r_chat, r_session, persona, difficulty], r_outs)
                r_box.submit(member(rehearse_turn), [r_box, r_chat, r_session, persona, difficulty], r_outs)
                end.click(member(end_rehearsal), [r_session], [report])
                # a person's choice starts a new rehearsal; a reopened session setting these does not
                retry.click(member(try_again), [r_session, retry_from, r_chat], r_outs)
                persona.input(member(reset_rehearsal), persona, r_outs)
                persona.change(member(show_brief), persona, brief)
                difficulty.input(member(reset_rehearsal), persona, r_outs)
            with gr.Tab("My sessions", id="mine", visible=not team) as mine_tab:
                from .people.panel import build_people_tab

                cleared = (*new_session(LOCAL), [], "", None, "", gr.update(), gr.update())
                refresh_mine, mine_outs = build_people_tab(store, gate, open_coach, open_rehearsal, outs,
                                                           [*r_outs, persona, difficulty], tabs,
                                                           files_root=settings.data_dir, cleared=cleared)
            with gr.Tab("Review", id="review", visible=not team) as review_tab:
                from .review import build_review_tab

                build_review_tab(settings, gate)
        demo.load(anyone(on_load), None, [signed_in, coach_tab, rehearse_tab, mine_tab, review_tab, tabs])
        mine_tab.select(refresh_mine, None, mine_outs)
    return demo


# the scorecard's short columns stay on one line ("missing", not "missin g")
CSS = "#rehearse-debrief th, #rehearse-debrief td:nth-child(2) { white-space: nowrap; word-break: normal; }"


def queued(demo: gr.Blocks, settings: Settings) -> gr.Blocks:
    """The app's queue as `coach serve` runs it: ``settings.turn_slots`` turns at once."""
    return demo.queue(default_concurrency_limit=settings.turn_slots)


def launch(settings: Settings, host: str = "127.0.0.1", port: int = 7860, open_browser: bool = False) -> None:
    from .people.access import Gate
    from .transcripts import open_store

    demo = build_app(settings, warm=True)
    queued(demo, settings).launch(server_name=host, server_port=port, inbrowser=open_browser, show_error=True,
                                  css=CSS, **Gate(settings, open_store(settings)).launch_options())
