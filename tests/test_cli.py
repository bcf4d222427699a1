"""The ``coach`` console script, run as a subprocess exactly as external checks call it (BRIEF contract).

Each subprocess inherits the isolated data paths that the autouse fixture put in the environment.
Most tests use the fake backend (``--dry-run`` / ``--backend fake``); one slow test runs the embedded model.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assistant.transcripts import TranscriptStore

COACH = Path(sys.executable).parent / "coach"
CODES = {"open_question", "closed_question", "reflection", "advice", "information", "affirmation", "other"}
ASK_KEYS = {"reply", "session", "stage", "citations", "codes", "safety"}


def coach(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
          timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with the test's environment (plus ``env`` overrides)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(COACH), *args], input=stdin if stdin is not None else "", capture_output=True,
                          text=True, env=full_env, timeout=timeout)


def ok_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def json_lines(proc: subprocess.CompletedProcess[str]) -> list[Any]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def store() -> TranscriptStore:
    return TranscriptStore(Path(os.environ["COACH_DATA_DIR"]) / "transcripts.sqlite3")


def snapshot() -> list[tuple[str, int, str, str]]:
    """Every stored turn as (session, idx, role, text)."""
    s = store()
    try:
        return [(t.session_id, t.idx, t.role, t.text) for sess in s.sessions(limit=10_000) for t in s.turns(sess.id)]
    finally:
        s.close()


def assert_contract(result: dict[str, Any]) -> None:
    assert ASK_KEYS <= result.keys()
    assert isinstance(result["reply"], str) and result["reply"].strip()
    assert isinstance(result["session"], str) and result["session"]
    assert result["stage"] is None or isinstance(result["stage"], str)
    assert isinstance(result["citations"], list)
    for c in result["citations"]:
        assert isinstance(c["source"], str) and isinstance(c["title"], str)
        assert isinstance(c["topics"], list) and all(isinstance(t, str) for t in c["topics"])
    assert isinstance(result["codes"], list) and set(result["codes"]) <= CODES, result["codes"]
    assert result["safety"] is None


def assert_one_question(reply: str) -> None:
    assert reply.rstrip().endswith("?"), reply
    assert reply.count("?") == 1, reply


def assert_one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"stderr is not one line: {proc.stderr!r}"
    assert lines[0].startswith("coach: error:"), lines[0]
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- ask -------------------------------------------------------------------------------------------
def test_ask_json_contract_session_and_unreachable_server() -> None:
    first = ok_json(coach("ask", "--json", "--dry-run", "I feel stuck"))
    assert_contract(first)
    assert_one_question(first["reply"])

    # --session continues the same conversation
    second = ok_json(coach("ask", "--json", "--backend", "fake", "--session", first["session"],
                           "I want to grow without managing people"))
    assert_contract(second)
    assert second["session"] == first["session"]
    s = store()
    turns = s.turns(first["session"])
    s.close()
    expected = [("user", "I feel stuck"), ("assistant", first["reply"]),
                ("user", "I want to grow without managing people"), ("assistant", second["reply"])]
    assert [(t.role, t.text) for t in turns] == expected

    # an unreachable OpenAI-compatible server: one error line; the failed turn's user line is kept
    before = snapshot()
    port = free_port()  # bound and released: nothing listens there
    proc = coach("ask", "--json", "--backend", "openai", "--session", first["session"], "I want to grow",
                 env={"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": "x", "COACH_TIMEOUT": "5"})
    assert proc.stdout == ""
    line = assert_one_error_line(proc)
    assert "reach" in line or "connect" in line.lower(), line
    assert snapshot()[: len(before)] == before  # earlier turns intact
    s = store()
    turns = s.turns(first["session"])
    s.close()
    assert [(t.role, t.text) for t in turns] == [*expected, ("user", "I want to grow")]


def test_ask_batch_reads_json_lines_in_order() -> None:
    lines = [{"text": "I feel stuck", "session": "batch-one"},
             {"text": "I'm bored with my work"},
             {"text": "I want to grow but not into management", "session": "batch-one"}]
    out = json_lines(coach("ask", "--json", "--dry-run", stdin="".join(json.dumps(r) + "\n" for r in lines)))
    assert len(out) == 3
    for row in out:
        assert_contract(row)
        assert_one_question(row["reply"])
    assert out[0]["session"] == out[2]["session"] == "batch-one"
    assert out[1]["session"] != "batch-one"  # fresh unless given
    s = store()
    one, two = s.turns("batch-one"), s.turns(out[1]["session"])
    s.close()
    assert [t.text for t in one if t.role == "user"] == [lines[0]["text"], lines[2]["text"]]
    assert [t.role for t in one] == ["user", "assistant", "user", "assistant"]
    assert [t.text for t in two] == [lines[1]["text"], out[1]["reply"]]


# -- retrieve --------------------------------------------------------------------------------------
def test_retrieve_json_contract() -> None:
    hits = ok_json(coach("retrieve", "--json", "-k", "3", "my best engineer doesn't want to manage"))
    assert isinstance(hits, list) and len(hits) == 3
    for h in hits:
        assert {"source", "title", "topics", "text", "score"} <= h.keys()
        assert isinstance(h["source"], str) and isinstance(h["title"], str) and isinstance(h["text"], str)
        assert isinstance(h["topics"], list) and isinstance(h["score"], float)
    assert sum("career-paths" in h["topics"] for h in hits) >= 2, [h["topics"] for h in hits]


def test_retrieve_batch() -> None:
    queries = ["stay interview questions", "my best engineer doesn't want to manage", "recognition that went wrong"]
    out = json_lines(coach("retrieve", "--json", "-k", "2", stdin="".join(json.dumps({"query": q}) + "\n"
                                                                           for q in queries)))
    assert len(out) == 3
    assert all(isinstance(hits, list) and len(hits) == 2 for hits in out)
    assert "stay-interview" in out[0][0]["topics"]
    assert any("career-paths" in h["topics"] for h in out[1])


# -- errors ----------------------------------------------------------------------------------------
@pytest.fixture
def seeded() -> list[tuple[str, int, str, str]]:
    """A store that already holds a session with two turns; errors must not lose them."""
    s = store()
    sid = s.create_session(mode="coach", backend="fake", model="fake-coach", session_id="kept")
    s.add_turn(sid, "user", "I feel stuck")
    s.add_turn(sid, "assistant", "It sounds like you feel stuck. What matters most to you?")
    s.close()
    return snapshot()


@pytest.mark.parametrize(
    ("args", "env", "needles"),
    [
        (["ask", "--mode", "nonsense", "hi"], {}, ("nonsense", "coach", "rehearse")),
        (["ask", "--dry-run", "--session", "kept", ""], {}, ("empty",)),
        (["ask", "--dry-run", "--session", "kept", "x" * 60], {"COACH_MAX_MESSAGE_CHARS": "50"}, ("50",)),
        (["ask", "hi"], {"COACH_BACKEND": "nonsense"}, ("nonsense", "embedded", "openai", "fake")),
        (["ask", "--backend", "embedded", "hi"], {"COACH_MODEL_PATH": "/nonexistent.gguf"}, ("/nonexistent.gguf",)),
        (["ask", "--dry-run", "bad \udcff utf8"], {}, ("UTF-8",)),
        (["ask", "--dry-run", "--mode", "rehearse", "--persona", "ic-refuses-management", "bad \udcff"], {}, ("UTF-8",)),
        (["ask", "--dry-run", "--session", "no-such-session", "hi"], {}, ("no-such-session", "leave out --session")),
        (["ask", "--bogus", "hi"], {}, ("--bogus",)),
        (["retrieve", "-k", "0", "x"], {}, ("-k",)),
        (["retrieve", ""], {}, ("empty",)),
        (["debrief"], {}, ("--session",)),
    ],
    ids=["unknown-mode", "empty-message", "oversized-message", "unknown-backend", "missing-model-file", "invalid-utf8",
         "invalid-utf8-rehearse", "unknown-session", "unknown-flag", "k-zero", "empty-query", "debrief-no-session"],
)
def test_ask_errors_are_one_line_and_keep_the_store(seeded: list, args: list[str], env: dict[str, str],
                                                    needles: tuple[str, ...]) -> None:
    line = assert_one_error_line(coach(*args, env=env))
    assert all(n in line for n in needles), line
    assert snapshot() == seeded


@pytest.mark.parametrize(("command", "key"), [(["ask", "--json", "--dry-run"], "text"), (["retrieve", "--json"], "query"),
                                            (["code", "--json"], "text")])
def test_a_bad_batch_line_gets_an_error_in_its_place_and_the_rest_are_answered(command: list[str], key: str) -> None:
    """BRIEF: a line that cannot be answered gets {"error": str} in its place; the others are still
    answered, in order; the exit code is non-zero; stderr is one line."""
    good = {"ask": "I feel stuck", "retrieve": "stay interview", "code": "What matters most to you?"}[command[0]]
    stdin = "\n".join([json.dumps({key: good}), "{not json", json.dumps({key: 5}), json.dumps({key: "  "}),
                        json.dumps({key: good + " today"})]) + "\n"
    proc = coach(*command, stdin=stdin)
    assert_one_error_line(proc)
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 5
    assert [("error" in r) if isinstance(r, dict) else False for r in out] == [False, True, True, True, False]
    assert "line 2" in out[1]["error"] and "line 3" in out[2]["error"]
    if command[0] == "ask":
        assert_contract(out[0])
        assert_contract(out[4])


# -- personas and code -----------------------------------------------------------------------------
def test_personas_json() -> None:
    items = ok_json(coach("personas", "--json"))
    assert isinstance(items, list) and items
    for p in items:
        assert {"id", "title", "scenario", "difficulties"} <= p.keys()
        assert all(isinstance(p[k], str) and p[k] for k in ("id", "title", "scenario"))
        assert isinstance(p["difficulties"], list) and p["difficulties"]
    assert len({p["id"] for p in items}) == len(items)


def test_code_json_lines() -> None:
    texts = ["What matters most to you about that?", "Do you like your job?", "You should ask for a raise.",
             "It sounds like you feel overlooked."]
    out = json_lines(coach("code", "--json", stdin="".join(json.dumps({"text": t}) + "\n" for t in texts)))
    assert [r["text"] for r in out] == texts
    assert all(r["code"] in CODES for r in out)
    assert out[0]["code"] == "open_question"


# -- the real model --------------------------------------------------------------------------------
@pytest.mark.slow
def test_ask_on_the_embedded_model() -> None:
    result = ok_json(coach("ask", "--json", "I feel stuck"))
    assert_contract(result)
    assert_one_question(result["reply"])
    assert result["backend"] == "embedded"


def test_quality_run_writes_what_a_reader_reads_and_summary_pools_scores(tmp_path: Path) -> None:
    blind = tmp_path / "set"
    blind.mkdir()
    openers = [{"id": "o1", "audience": "high-performer", "text": "honestly im bored, same reports for 3 yrs"},
               {"id": "o2", "audience": "manager", "text": "As a manager: my best analyst said no to the lead role."}]
    (blind / "openers.jsonl").write_text("".join(json.dumps(o) + "\n" for o in openers))
    (blind / "conversations.jsonl").write_text(json.dumps({"id": "c1", "audience": "manager", "turns": [
        "My star engineer wants more freedom.", "Two of her projects slipped last quarter.",
        "I could give her one project to run end to end.", "I'll talk to her on Thursday."]}) + "\n")
    out = tmp_path / "run"
    rules = ok_json(coach("quality", "run", "--backend", "fake", "--set", str(blind), "--out", str(out)))
    assert rules["coach_replies"] == 6 and rules["broken_replies"] == 0 and rules["repeated_questions"] == 0
    text = (out / "transcript.md").read_text()
    assert "### o1 (high-performer)" in text and "**Coach (c1.4):**" in text and "It sounds like as" not in text
    (out / "scores.json").write_text(json.dumps({"openers": {"o1": 2, "o2": 0}, "conversations": {"c1.1": 1}}))
    summary = ok_json(coach("quality", "summary", str(out)))
    assert summary["reader"]["openers"] == {"n": 2, "mean": 1.0, "zeros": 1, "twos": 1}
    again = coach("quality", "run", "--backend", "fake", "--set", str(blind), "--out", str(out))
    assert again.returncode != 0 and "already holds a run" in assert_one_error_line(again)


def test_a_rehearsal_continued_by_session_stays_a_rehearsal() -> None:
    first = ok_json(coach("ask", "--json", "--dry-run", "--mode", "rehearse", "--persona", "ic-refuses-management",
                          "How has the on-call load been for you?"))
    sid = first["session"]
    s = store()
    turns_before, state_before = len(s.turns(sid)), s.session(sid).state
    nxt = ok_json(coach("ask", "--json", "--dry-run", "--session", sid, "What would make next quarter better?"))
    assert nxt["session"] == sid and "tension" in nxt and nxt.get("stage") is None
    wrong = coach("ask", "--dry-run", "--mode", "coach", "--session", sid, "hello")
    assert wrong.returncode != 0 and "rehearse session" in assert_one_error_line(wrong)
    assert len(store().turns(sid)) == turns_before + 2  # the refused coach turn wrote nothing
    assert "tension" in store().session(sid).state and state_before


def test_try_again_from_an_earlier_line() -> None:
    first = ok_json(coach("ask", "--json", "--dry-run", "--mode", "rehearse", "--persona", "ic-refuses-management",
                          "What kind of work gives you the most energy?"))
    sid = first["session"]
    ok_json(coach("ask", "--json", "--dry-run", "--session", sid, "You need to step up, it's the natural next step."))
    again = ok_json(coach("ask", "--json", "--dry-run", "--session", sid, "--from-turn", "2",
                          "It sounds like the deep technical work is what you love."))
    assert again["session"] != sid and again["band"] != "dismissed"
    assert [t.text for t in store().turns(again["session"])][0] == "What kind of work gives you the most energy?"
    bad = coach("ask", "--dry-run", "--session", sid, "--from-turn", "9", "hello")
    assert bad.returncode != 0 and "choose a turn from 1 to 2" in assert_one_error_line(bad)


def test_a_hung_model_server_fails_within_the_turn_budget_and_keeps_the_message() -> None:
    """A server that accepts the connection and never answers: one line naming it, within COACH_TIMEOUT
    (plus process start), and the user's message is stored."""
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])  # read nothing, answer nothing
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        started = time.perf_counter()
        proc = coach("ask", "--json", "--backend", "openai", "I want to grow without managing",
                     env={"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "OPENAI_API_KEY": "x", "COACH_TIMEOUT": "3"})
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        thread.join()
        for c in held:
            c.close()
        listener.close()
    line = assert_one_error_line(proc)
    assert f"127.0.0.1:{port}" in line and "time budget" in line, line
    # the budget plus a cold process start (17-27 s on a 2-core machine, more under load: 3 + 30 failed once
    # beside another test run), never the old 128 s
    assert elapsed < 3 + 50, elapsed
    s = store()
    sids = [r[0] for r in s._db.execute("SELECT id FROM sessions").fetchall()]
    texts = [t.text for sid in sids for t in s.turns(sid)]
    s.close()
    assert "I want to grow without managing" in texts
