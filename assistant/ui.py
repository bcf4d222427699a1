"""The Gradio app: Coach and Rehearse tabs (and Review, for L&D, from ``review``). Thin by design.

Handlers are generators that stream, copy the ``history`` they are given instead of mutating it, and
turn domain errors into a chat message. The coaching, rehearsal and scoring logic lives elsewhere.
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

    @property
    def coach(self) -> Any:
        if self._coach is None:
            from .chain import Coach

            self._coach = Coach(self.settings)
        return self._coach

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

    @property
    def rehearsal(self) -> Any:
        if self._rehearsal is None:
            from .rehearsal import Rehearsal

            self._rehearsal = Rehearsal(self.settings, store=self.coach.store)
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
        threading.Thread(target=services.warm, name="warm-up", daemon=True).start()

    def coach_turn(message: str, history: list[dict[str, Any]], session: str | None
                   ) -> Iterator[tuple[Any, ...]]:
        history = list(history or [])
        if not (message or "").strip():
            yield history, "", session, gr.update(), gr.update(), gr.update()
            return
        history = [*history, {"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        yield history, "", session, gr.update(), gr.update(), gr.update()
        try:
            for piece in services.coach.stream(message, session):
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

    def new_session() -> tuple[Any, ...]:
        return [], "", None, _status(settings, None, None), "", ""

    def rehearse_turn(message: str, history: list[dict[str, Any]], session: str | None, persona: str,
                      difficulty: str) -> Iterator[tuple[Any, ...]]:
        history = list(history or [])
        if not (message or "").strip():
            yield history, "", session, gr.update()
            return
        history = [*history, {"role": "user", "content": message}]
        try:
            result = services.rehearsal.turn(message, persona_id=persona, difficulty=difficulty, session_id=session)
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

    def try_again(session: str | None, turn: float | None, history: list[dict[str, Any]]) -> tuple[Any, ...]:
        """A new branch of the scene from the manager's ``turn``-th line, with the state it had then."""
        if not session or not turn:
            return history, "", session, gr.update()
        try:
            sid = services.rehearsal.try_again(session, int(turn))
        except CoachError as exc:
            return [*list(history or []), {"role": "assistant", "content": f"⚠️ {exc}"}], "", session, gr.update()
        store = services.rehearsal.store
        shown = [{"role": t.role, "content": t.text} for t in store.turns(sid)]
        state = store.session(sid).state
        return (shown, "", sid, f"Tension: **{state.get('tension')}/10** · over time: "
                f"`{tension_sparkline(state.get('path', []))}` · trying again from your line {int(turn)}")

    def end_rehearsal(session: str | None) -> str:
        if not session:
            return "Start a conversation first."
        from .debrief import debrief

        try:
            d = debrief(services.coach.store, session)
        except CoachError as exc:
            return f"⚠️ {exc}"
        rows = "\n".join(f"| {r['practice']} | {r['rating']} | “{markdown_text(r['quote'])}” | "
                         f"{markdown_text(r['why'])} | `{r['source']}` |" for r in d["scorecard"])
        qs = "\n".join(f"- {markdown_text(q)}" for q in d["questions"])
        return (f"### Questions for you\n\n{qs}\n\n### Scorecard\n\n| practice | rating | your words | why (turn) | handbook |\n"
                f"|---|---|---|---|---|\n{rows}")

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\nIt asks rather than tells: one reflection and one open question per turn.")
        with gr.Tab("Coach"):
            session = gr.State(None)
            status = gr.Markdown(_status(settings, None, None), elem_id="coach-status")
            chat = gr.Chatbot(label="Conversation", elem_id="coach-chat", height=420)
            with gr.Row():
                box = gr.Textbox(placeholder="What's on your mind?", show_label=False, scale=5, elem_id="coach-input")
                send = gr.Button("Send", variant="primary", scale=1, elem_id="coach-send")
            with gr.Row():
                cites = gr.Markdown(elem_id="coach-citations")
                plan = gr.Markdown(elem_id="coach-plan")
            reset = gr.Button("New session", elem_id="coach-new")
            outs = [chat, box, session, status, cites, plan]
            send.click(coach_turn, [box, chat, session], outs)
            box.submit(coach_turn, [box, chat, session], outs)
            reset.click(new_session, None, outs)
        with gr.Tab("Rehearse"):
            from .personas import load_personas

            personas = load_personas()
            r_session = gr.State(None)
            with gr.Row():
                persona = gr.Dropdown([(p.title, p.id) for p in personas], value=personas[0].id if personas else None,
                                      label="Scenario", elem_id="rehearse-persona")
                difficulty = gr.Radio(["easy", "medium", "hard"], value="medium", label="Difficulty",
                                      elem_id="rehearse-difficulty")
            from .personas import persona_brief

            by_id = {p.id: p for p in personas}
            brief = gr.Markdown(persona_brief(personas[0]) if personas else "", elem_id="rehearse-brief")
            tension = gr.Markdown(elem_id="rehearse-tension")
            r_chat = gr.Chatbot(label=_chat_label(personas[0] if personas else None), elem_id="rehearse-chat",
                                height=380)
            with gr.Row():
                r_box = gr.Textbox(placeholder="Open the conversation…", show_label=False, scale=5,
                                   elem_id="rehearse-input")
                r_send = gr.Button("Send", variant="primary", scale=1, elem_id="rehearse-send")
            with gr.Row():
                retry_from = gr.Number(label="Try again from your line number", value=None, precision=0, minimum=1,
                                       scale=2, elem_id="rehearse-from")
                retry = gr.Button("Try again from here", scale=1, elem_id="rehearse-retry")
                end = gr.Button("End and debrief", scale=1, elem_id="rehearse-end")
            report = gr.Markdown(elem_id="rehearse-debrief")
            r_outs = [r_chat, r_box, r_session, tension]
            retry.click(try_again, [r_session, retry_from, r_chat], r_outs)
            r_send.click(rehearse_turn, [r_box, r_chat, r_session, persona, difficulty], r_outs)
            r_box.submit(rehearse_turn, [r_box, r_chat, r_session, persona, difficulty], r_outs)
            end.click(end_rehearsal, [r_session], [report])

            def reset_rehearsal(pid: str) -> tuple[Any, ...]:
                return gr.update(value=[], label=_chat_label(by_id.get(pid))), "", None, ""

            persona.change(reset_rehearsal, persona, r_outs)
            persona.change(lambda pid: persona_brief(by_id[pid]) if pid in by_id else "", persona, brief)
            difficulty.change(reset_rehearsal, persona, r_outs)
        try:
            from .review import build_review_tab
        except ImportError:
            build_review_tab = None
        if build_review_tab is not None:
            with gr.Tab("Review"):
                build_review_tab(settings)
    return demo


# the scorecard's short columns stay on one line ("missing", not "missin g")
CSS = "#rehearse-debrief th, #rehearse-debrief td:nth-child(2) { white-space: nowrap; word-break: normal; }"


def launch(settings: Settings, host: str = "127.0.0.1", port: int = 7860, open_browser: bool = False) -> None:
    demo = build_app(settings, warm=True)
    demo.queue(default_concurrency_limit=2).launch(server_name=host, server_port=port, inbrowser=open_browser,
                                                   show_error=True, css=CSS)
