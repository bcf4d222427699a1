"""The member's own pages in the app: "My sessions" (reopen and continue, share with reviewers) and
"Memory" (see, correct and delete what is remembered; export everything; delete everything about me).

``build_people_tab`` is called inside an open ``gr.Tab`` by ``ui.build_app``; every event it wires goes
through ``Gate.guard("member", ...)`` and every function reads only the caller's own rows. The plain
functions above it are what the tests call. It does not coach or rehearse.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

import gradio as gr

from ..transcripts import TranscriptStore
from .access import Gate, Identity, owned, set_shared
from .memory import Memory
from .rights import export, forget

CONFIRM = "delete"


def session_choices(store: TranscriptStore, user_id: str) -> list[tuple[str, str]]:
    """(label, id) for each of the person's sessions, newest first: title, date, stage or scenario."""
    out = []
    for s in store.sessions(user_id=user_id, limit=500):
        first = next((t.text for t in store.turns(s.id) if t.role == "user"), "(no messages)")
        title = first if len(first) <= 48 else first[:47].rsplit(" ", 1)[0] + "…"
        where = (f"rehearsal: {s.persona} ({s.difficulty})" if s.mode == "rehearse"
                 else f"stage: {str(s.state.get('stage') or 'goal').replace('_', ' ')}")
        shared = " · shared" if s.shared else ""
        out.append((f"{title} · {s.created_at[:16].replace('T', ' ')} · {where}{shared}", s.id))
    return out


def history_of(store: TranscriptStore, sid: str) -> list[dict[str, str]]:
    return [{"role": "user" if t.role == "user" else "assistant", "content": t.text} for t in store.turns(sid)]


def memory_table(memory: Memory, user_id: str) -> list[list[Any]]:
    return [[i.id, i.kind, i.status.replace("_", " "), i.created_at[:10], i.text] for i in memory.items(user_id)]


def memory_choices(memory: Memory, user_id: str) -> list[tuple[str, str]]:
    return [(f"{i.id} · {i.kind} · {i.text[:60]}", str(i.id)) for i in memory.items(user_id)]


def forget_me(store: TranscriptStore, who: Identity, confirm: str, files_root: Any) -> tuple[bool, str]:
    """The person's own "delete everything about me": only when they typed the confirmation word. Returns
    whether anything was deleted and the status line that says what (the same counts as ``coach forget``)."""
    if (confirm or "").strip().lower() != CONFIRM:
        return False, f"Nothing was deleted. To delete everything about you, type **{CONFIRM}** in the box first."
    deleted = forget(store, str(who.user_id), files_root=files_root)
    parts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in deleted.items() if n)
    gone = "Your account is deleted too: you are signed out ([close](/logout))." if deleted["users"] else ""
    return True, f"Deleted everything stored about you: {parts or 'there was nothing stored'}. {gone}".strip()


def build_people_tab(store: TranscriptStore, gate: Gate, open_coach: Callable[[Identity, str], tuple[Any, ...]],
                     open_rehearsal: Callable[[Identity, str], tuple[Any, ...]], coach_outs: list[Any],
                     rehearse_outs: list[Any], tabs: gr.Tabs, files_root: Any = None,
                     cleared: tuple[Any, ...] | None = None) -> tuple[Callable[..., Any], list[Any]]:
    """My sessions and Memory. ``cleared`` holds the values that start the Coach and Rehearse outputs afresh
    (after "delete everything about me"); ``files_root`` is the data folder whose ``people/USER`` goes too.
    Returns the guarded refresh handler and its outputs (the tab's select uses them)."""
    memory = Memory(store)
    gr.Markdown("### My sessions\nYour own coaching and rehearsal sessions, newest first. Nobody else sees them; "
                "a reviewer reads one only if you share it.")
    with gr.Row():
        pick = gr.Dropdown([], label="Session", elem_id="my-sessions", scale=4, value=None)
        refresh = gr.Button("Refresh", size="sm", elem_id="my-refresh", scale=1)
    with gr.Row():
        reopen = gr.Button("Open and continue", variant="primary", elem_id="my-open")
        shared = gr.Checkbox(False, label="Share this session with reviewers", elem_id="my-share")
    status = gr.Markdown(elem_id="my-status")
    gr.Markdown("### Memory\nWhat the coach remembers from your sessions, in your own words: your goal and the "
                "plans you wrote. The next session opens by asking how your plan went. Correct or delete anything.")
    table = gr.Dataframe(None, headers=["id", "kind", "status", "date", "your words"], interactive=False, wrap=True,
                         elem_id="memory-table")
    with gr.Row():
        item = gr.Dropdown([], label="Item", elem_id="memory-item", scale=2, value=None)
        words = gr.Textbox(label="Your words", elem_id="memory-text", scale=4)
    with gr.Row():
        save = gr.Button("Save correction", elem_id="memory-save")
        delete = gr.Button("Delete item", variant="stop", elem_id="memory-delete")
        dump = gr.Button("Export my data (JSON)", elem_id="memory-export")
    note = gr.Markdown(elem_id="memory-status")
    exported = gr.Code(language="json", label="Everything stored about you", visible=False, elem_id="memory-json")
    gr.Markdown("### Delete everything about me\nYour sessions, their transcripts and plans, what is remembered "
                "and your saved exports" + (", and your account" if gate.mode != "none" else "") +
                ". This cannot be undone; export first if you want a copy.")
    with gr.Row():
        confirm = gr.Textbox(label=f"Type {CONFIRM} to confirm", elem_id="forget-confirm", scale=3)
        wipe = gr.Button("Delete everything about me", variant="stop", elem_id="forget-me", scale=1)
    wiped = gr.Markdown(elem_id="forget-status")

    def on_refresh(who: Identity) -> tuple[Any, ...]:
        uid = str(who.user_id)
        return (gr.Dropdown(choices=session_choices(store, uid), value=None), memory_table(memory, uid) or None,
                gr.Dropdown(choices=memory_choices(memory, uid), value=None))

    def on_pick(who: Identity, sid: str | None) -> bool:
        sid = owned(store, str(who.user_id), sid)
        return bool(store.session(sid).shared) if sid else False

    def on_share(who: Identity, sid: str | None, value: bool) -> str:
        if not owned(store, str(who.user_id), sid):
            return "Pick one of your sessions first."
        set_shared(store, str(who.user_id), str(sid), bool(value))
        return "Reviewers can now read this session." if value else "This session is private again."

    def on_open(who: Identity, sid: str | None) -> tuple[Any, ...]:
        sid = owned(store, str(who.user_id), sid)
        keep = [gr.update()] * (len(coach_outs) + len(rehearse_outs))
        if not sid:
            return (*keep, gr.update(), "Pick one of your sessions first.")
        if store.session(sid).mode == "rehearse":
            return (*[gr.update()] * len(coach_outs), *open_rehearsal(who, sid), gr.Tabs(selected="rehearse"),
                    "Opened the rehearsal: carry on where you stopped.")
        return (*open_coach(who, sid), *[gr.update()] * len(rehearse_outs), gr.Tabs(selected="coach"),
                "Opened the coaching session: carry on where you stopped.")

    def on_item(who: Identity, item_id: str | None) -> str:
        try:
            return memory.get(int(item_id or 0), str(who.user_id)).text
        except Exception:  # noqa: BLE001 - not theirs, or gone: show nothing
            return ""

    def on_save(who: Identity, item_id: str | None, text: str) -> tuple[Any, ...]:
        uid = str(who.user_id)
        try:
            memory.correct(int(item_id or 0), text, uid)
            msg = f"Saved item {html.escape(str(item_id))}."
        except Exception as exc:  # noqa: BLE001 - a domain error becomes the status line
            msg = f"⚠️ {exc}"
        return memory_table(memory, uid) or None, gr.Dropdown(choices=memory_choices(memory, uid)), msg

    def on_delete(who: Identity, item_id: str | None) -> tuple[Any, ...]:
        uid = str(who.user_id)
        try:
            memory.delete(int(item_id or 0), uid)
            msg = f"Deleted item {html.escape(str(item_id))}."
        except Exception as exc:  # noqa: BLE001
            msg = f"⚠️ {exc}"
        return memory_table(memory, uid) or None, gr.Dropdown(choices=memory_choices(memory, uid), value=None), "", msg

    def on_export(who: Identity) -> Any:
        data = export(store, str(who.user_id))
        return gr.Code(json.dumps(data, ensure_ascii=False, indent=1), visible=True)

    cleared = cleared if cleared is not None else (gr.update(),) * (len(coach_outs) + len(rehearse_outs))
    if len(cleared) != len(coach_outs) + len(rehearse_outs):
        raise ValueError("cleared needs one value per Coach and Rehearse output")

    def on_forget(who: Identity, word: str) -> tuple[Any, ...]:
        done, msg = forget_me(store, who, word, files_root)
        if not done:
            return (gr.update(),) * (3 + len(cleared)) + (gr.update(), gr.update(), msg)
        # the open Coach and Rehearse tabs pointed at sessions that are gone: start them afresh
        return (gr.Dropdown(choices=[], value=None), None, gr.Dropdown(choices=[], value=None), *cleared, "",
                gr.Code(visible=False), msg)

    member = gate.guard
    refresh_handler = member("member", on_refresh)
    refresh.click(refresh_handler, None, [pick, table, item])
    pick.change(member("member", on_pick), [pick], [shared])
    shared.input(member("member", on_share), [pick, shared], [status])
    reopen.click(member("member", on_open), [pick], [*coach_outs, *rehearse_outs, tabs, status])
    item.change(member("member", on_item), [item], [words])
    save.click(member("member", on_save), [item, words], [table, item, note])
    delete.click(member("member", on_delete), [item], [table, item, words, note])
    dump.click(member("member", on_export), None, [exported])
    wipe.click(member("member", on_forget), [confirm],
               [pick, table, item, *coach_outs, *rehearse_outs, confirm, exported, wiped])
    return refresh_handler, [pick, table, item]
