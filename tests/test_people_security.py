"""Every registered Gradio endpoint, called over HTTP anonymously, as the other member and with the other
role, in team mode (``COACH_AUTH=users``). The endpoints are listed from the app itself (``demo.fns``), so a
new endpoint is checked the day it is added: it must be registered through ``Gate.guard`` with a role, and
it must refuse the wrong caller on the server. Fake chat model; the app runs in-process on a free port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import httpx
import pytest

from assistant.chain import Coach
from assistant.config import Settings
from assistant.people.access import DENIED, NEEDS, Gate
from assistant.people.accounts import Accounts
from assistant.people.memory import Memory
from assistant.rehearsal import Rehearsal
from assistant.transcripts import TranscriptStore

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
SECRET = "Bluefinch"  # in ana's private coaching and rehearsal sessions, and in her memory
PASSWORDS = {"ana": "ana password 1", "bob": "bob password 1", "rev": "rev password 1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, shared_index_dir: Path) -> Iterator[dict[str, Any]]:
    from assistant.ui import build_app

    data = tmp_path_factory.mktemp("team")
    shutil.copytree(shared_index_dir, data / "chroma")
    settings = Settings(backend="fake", data_dir=data, chroma_path=data / "chroma", auth="users")
    store = TranscriptStore(settings.db_path)
    accounts = Accounts(store)
    accounts.add("ana", "member", PASSWORDS["ana"])
    accounts.add("bob", "member", PASSWORDS["bob"])
    accounts.add("rev", "reviewer", PASSWORDS["rev"])
    coach = Coach(settings, store=store)
    sid = coach.turn(f"I want to grow, and my side project {SECRET} matters to me.", user_id="ana")["session"]
    coach.turn(f"I'll tell my director about {SECRET} before the 14th.", sid, user_id="ana")
    rid = Rehearsal(settings, store=store).turn(f"About {SECRET}: thanks for making time.", "ic-refuses-management",
                                               user_id="ana")["session"]
    if not Memory(store).items("ana"):  # the memory rules are tested elsewhere; here an item must exist
        first = store.turns(sid)[0]
        Memory(store).remember("ana", "goal", first.text, sid, first.id)
    demo = build_app(settings)
    port = _free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **Gate(settings, store).launch_options())
    try:
        yield {"url": f"http://127.0.0.1:{port}", "demo": demo, "sid": sid, "rid": rid, "store": store,
               "item": str(Memory(store).items("ana")[0].id)}
    finally:
        demo.close()


def endpoints(demo: gr.Blocks) -> list[tuple[int, Any]]:
    """Every event handler the app registered (frontend-only events have no ``fn``)."""
    return [(i, f) for i, f in demo.fns.items() if f.fn is not None]


def client(url: str, user: str | None) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=60)
    if user:
        r = c.post("/login", data={"username": user, "password": PASSWORDS[user]})
        assert r.status_code == 200, r.text
    return c


def call(c: httpx.Client, fn_index: int, data: list[Any]) -> tuple[int, bool, str]:
    """(HTTP status of the join, success, everything the server sent back for this event as text)."""
    session = uuid.uuid4().hex
    r = c.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session})
    if r.status_code != 200:
        return r.status_code, False, r.text
    event = r.json()["event_id"]
    seen: list[str] = []
    success = False
    with c.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as resp:
        for line in resp.iter_lines():
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("event_id") not in (None, event):
                continue
            seen.append(json.dumps(msg, ensure_ascii=False))
            if msg.get("msg") == "process_completed":
                success = bool(msg.get("success"))
                break
    return 200, success, "\n".join(seen)


def blank(fn: Any) -> list[Any]:
    """Inputs that pass every component's own checks, so the handler itself is reached."""
    return [[] if isinstance(c, gr.Chatbot) else False if isinstance(c, gr.Checkbox) else None for c in fn.inputs]


def probing(fn: Any, team: dict[str, Any]) -> list[list[Any]]:
    """Inputs naming ana's things: each of her ids in every text-like input."""
    out = []
    for value in (team["sid"], team["rid"], team["item"], f"{team['sid']}:0"):
        out.append([[] if isinstance(c, gr.Chatbot) else True if isinstance(c, gr.Checkbox)
                    else None if isinstance(c, gr.Radio) else value for c in fn.inputs])
    return out


def test_every_endpoint_is_registered_with_a_role(team: dict[str, Any]) -> None:
    found = endpoints(team["demo"])
    needs = {(f.name, getattr(f.fn, "coach_need", None)) for _, f in found}
    assert len(found) >= 20, needs
    assert all(n in NEEDS for _, n in needs), [p for p in needs if p[1] not in NEEDS]
    assert {("coach_turn", "member"), ("rehearse_turn", "member"), ("on_open", "member"), ("on_export", "member"),
            ("on_session", "reviewer"), ("on_save", "reviewer"), ("on_export", "reviewer")} <= needs


def test_anonymous_callers_get_nothing(team: dict[str, Any]) -> None:
    anon = client(team["url"], None)
    checked = []
    for i, fn in endpoints(team["demo"]):
        status, success, text = call(anon, i, blank(fn))
        assert status == 401 and not success and SECRET not in text, (fn.name, status, text)
        # and the handler itself refuses a request with no identity (the check is ours, not only Gradio's)
        with pytest.raises(gr.Error, match=DENIED):
            result = fn.fn(*blank(fn), SimpleNamespace(username=None, headers={}))
            if hasattr(result, "__next__"):
                next(result)
        checked.append(fn.name)
    assert len(checked) == len(endpoints(team["demo"]))


@pytest.mark.parametrize("user,forbidden", [("ana", "reviewer"), ("rev", "member")])
def test_the_other_role_is_refused_on_the_server(team: dict[str, Any], user: str, forbidden: str) -> None:
    c = client(team["url"], user)
    refused = []
    for i, fn in endpoints(team["demo"]):
        if fn.fn.coach_need != forbidden:
            continue
        status, success, text = call(c, i, blank(fn))
        assert status == 200 and not success and DENIED in text and SECRET not in text, (fn.name, text)
        refused.append(fn.name)
    assert refused, f"no {forbidden} endpoints found"


def test_another_member_never_sees_anas_sessions_or_memory(team: dict[str, Any]) -> None:
    bob = client(team["url"], "bob")
    i, fn = next((i, f) for i, f in endpoints(team["demo"]) if f.name == "on_refresh" and f.fn.coach_need == "member")
    status, success, text = call(bob, i, blank(fn))  # his own list, before he has said anything
    assert success and team["sid"] not in text and team["rid"] not in text and SECRET not in text, text
    for i, fn in endpoints(team["demo"]):
        if fn.fn.coach_need == "reviewer":
            continue
        for data in [blank(fn), *probing(fn, team)]:
            status, _, text = call(bob, i, data)
            assert status == 200 and SECRET not in text, (fn.name, data, text)
    store: TranscriptStore = team["store"]
    assert all(SECRET not in t.text for s in store.sessions(user_id="bob") for t in store.turns(s.id))


def test_a_reviewer_cannot_read_a_private_session(team: dict[str, Any]) -> None:
    rev = client(team["url"], "rev")
    for i, fn in endpoints(team["demo"]):
        if fn.fn.coach_need == "member":
            continue
        for data in [blank(fn), *probing(fn, team)]:
            status, _, text = call(rev, i, data)
            assert status == 200 and SECRET not in text, (fn.name, data, text)
    from assistant.review import show_session

    assert SECRET not in show_session(team["store"], team["sid"])  # even when the id is known


def test_the_same_member_can_use_her_own_endpoints(team: dict[str, Any]) -> None:
    ana = client(team["url"], "ana")
    i, fn = next((i, f) for i, f in endpoints(team["demo"]) if f.name == "on_refresh" and f.fn.coach_need == "member")
    status, success, text = call(ana, i, blank(fn))
    assert status == 200 and success and team["sid"] in text and SECRET[:8] in text, text
