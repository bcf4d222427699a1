"""The SQLite store: migrations, WAL, ordering, persistence, labels and runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from assistant.config import Settings, load_settings
from assistant.errors import ConfigError, NotFoundError
from assistant.transcripts import MIGRATIONS, TranscriptStore


def test_migrations_apply_once_and_use_wal(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    store = TranscriptStore(path)
    store.close()
    TranscriptStore(path).close()  # re-opening applies nothing twice
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "turns", "runs", "action_plans", "labels"} <= tables


def test_turns_persist_in_order_with_metadata(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    store = TranscriptStore(path)
    sid = store.create_session(mode="coach", backend="fake", model="fake-coach", state={"stage": "goal"})
    store.add_turn(sid, "user", "first", {"stage": "goal"})
    store.add_turn(sid, "assistant", "second?", {"codes": ["open_question"]})
    store.close()
    again = TranscriptStore(path)
    turns = again.turns(sid)
    assert [(t.idx, t.role, t.text) for t in turns] == [(0, "user", "first"), (1, "assistant", "second?")]
    assert turns[1].meta == {"codes": ["open_question"]}
    assert again.session(sid).state == {"stage": "goal"}


def test_unknown_session_is_a_clear_error(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "t.sqlite3")
    with pytest.raises(NotFoundError, match="nope"):
        store.session("nope")
    with pytest.raises(NotFoundError):
        store.add_turn("nope", "user", "hi")


def test_labels_and_runs_round_trip(tmp_path: Path) -> None:
    store = TranscriptStore(tmp_path / "t.sqlite3")
    store.create_run("r1", ["smoke.yaml"], "fake", "fake-coach", None)
    sid = store.create_session(mode="coach", backend="fake", model="m", run_id="r1", scenario="s1")
    tid = store.add_turn(sid, "assistant", "What matters?")
    store.set_label(tid, 0, "What matters?", "open_question", "open_question")
    store.set_label(tid, 0, "What matters?", "open_question", "closed_question")  # relabel replaces
    assert [(x["coder_code"], x["human_code"]) for x in store.labels("r1")] == [("open_question", "closed_question")]
    store.finish_run("r1", {"open_question_share": 1.0})
    assert store.runs()[0]["summary"] == {"open_question_share": 1.0}
    assert [s.id for s in store.sessions(run_id="r1")] == [sid]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COACH_BACKEND", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("COACH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("COACH_CHROMA_PATH", raising=False)
    s = load_settings()
    assert (s.backend, s.base_url, s.db_path) == ("openai", "http://127.0.0.1:9/v1", tmp_path / "transcripts.sqlite3")
    assert s.chroma_path == tmp_path / "chroma"
    with pytest.raises(ConfigError, match="known backends: embedded, openai, fake"):
        load_settings(backend="nonsense")
    with pytest.raises(ConfigError, match="model file not found"):
        Settings(backend="embedded", model_path=tmp_path / "missing.gguf").resolved_model_path()
