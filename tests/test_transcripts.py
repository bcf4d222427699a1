"""The transcript store on SQLite and on PostgreSQL (a real server, ``pg_server``): migrations, ordering,
persistence, labels and runs, transactions, concurrent writers, and the database URL's errors."""

from __future__ import annotations

import socket
import sqlite3
import threading
from pathlib import Path

import pytest

from assistant.config import Settings, load_settings
from assistant.db import statements
from assistant.errors import BackendError, ConfigError, NotFoundError
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


def test_postgresql_keeps_its_schema_version_in_a_table(pg_server) -> None:
    url = pg_server.database()
    try:
        TranscriptStore(url).close()
        store = TranscriptStore(url)  # re-opening applies nothing twice
        assert store.db.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]
        tables = {r[0] for r in store.db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema='public'").fetchall()}
        assert {"sessions", "turns", "runs", "action_plans", "labels", "users", "memory", "schema_version"} <= tables
        store.close()
    finally:
        pg_server.drop(url)


def test_each_migration_has_one_text_per_engine() -> None:
    for number, migration in enumerate(MIGRATIONS, start=1):
        lite, pg = statements(migration, "sqlite"), statements(migration, "postgresql")
        assert len(lite) == len(pg) and all(s.strip() for s in lite + pg), number
        assert not any("AUTOINCREMENT" in s for s in pg), number  # PostgreSQL has identity columns instead


def test_turns_persist_in_order_with_metadata(store_target: str) -> None:
    store = TranscriptStore(store_target)
    sid = store.create_session(mode="coach", backend="fake", model="fake-coach", state={"stage": "goal"})
    store.add_turn(sid, "user", "first", {"stage": "goal"})
    store.add_turn(sid, "assistant", "second?", {"codes": ["open_question"]})
    store.close()
    again = TranscriptStore(store_target)
    turns = again.turns(sid)
    assert [(t.idx, t.role, t.text) for t in turns] == [(0, "user", "first"), (1, "assistant", "second?")]
    assert turns[1].meta == {"codes": ["open_question"]}
    assert again.session(sid).state == {"stage": "goal"}
    again.close()


def test_unknown_session_is_a_clear_error(any_store: TranscriptStore) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        any_store.session("nope")
    with pytest.raises(NotFoundError):
        any_store.add_turn("nope", "user", "hi")


def test_labels_and_runs_round_trip(any_store: TranscriptStore) -> None:
    store = any_store
    store.create_run("r1", ["smoke.yaml"], "fake", "fake-coach", None)
    sid = store.create_session(mode="coach", backend="fake", model="m", run_id="r1", scenario="s1")
    tid = store.add_turn(sid, "assistant", "What matters?")
    store.set_label(tid, 0, "What matters?", "open_question", "open_question")
    store.set_label(tid, 0, "What matters?", "open_question", "closed_question")  # relabel replaces
    assert [(x["coder_code"], x["human_code"]) for x in store.labels("r1")] == [("open_question", "closed_question")]
    store.finish_run("r1", {"open_question_share": 1.0})
    assert store.runs()[0]["summary"] == {"open_question_share": 1.0}
    assert [s.id for s in store.sessions(run_id="r1")] == [sid]
    store.create_run("r1", ["smoke.yaml", "more.yaml"], "fake", "fake-coach", "/tmp/out")  # a rerun replaces
    assert [(r["suites"], r["summary"], r["out_dir"]) for r in store.runs()] == [(["smoke.yaml", "more.yaml"], {}, "/tmp/out")]


def test_rows_read_by_name_and_position_and_ids_are_returned(any_store: TranscriptStore) -> None:
    sid = any_store.create_session(mode="coach", backend="fake", model="m")
    first, second = any_store.add_turn(sid, "user", "a"), any_store.add_turn(sid, "assistant", "b?")
    assert second > first > 0 and any_store.turn(second).text == "b?"
    row = any_store.db.execute("SELECT id, text FROM turns WHERE id=?", (first,)).fetchone()
    assert (row[0], row["text"], dict(row)) == (first, "a", {"id": first, "text": "a"})
    assert any_store.db.execute("SELECT COUNT(*) FROM turns WHERE text LIKE '%?'").fetchone()[0] == 1  # % and ? in a literal


def test_a_failed_transaction_leaves_nothing(any_store: TranscriptStore) -> None:
    sid = any_store.create_session(mode="coach", backend="fake", model="m")
    with pytest.raises(RuntimeError), any_store.db.transaction() as db:
        db.execute("UPDATE sessions SET mode='changed' WHERE id=?", (sid,))
        raise RuntimeError("midway")
    assert any_store.session(sid).mode == "coach"


def test_two_handles_adding_turns_at_once_never_share_a_position(store_target: str) -> None:
    """Two connections (as two `coach serve` processes have) write turns to one session concurrently."""
    stores = [TranscriptStore(store_target) for _ in range(2)]
    sid = stores[0].create_session(mode="coach", backend="fake", model="m")

    def write(store: TranscriptStore, who: str) -> None:
        for i in range(15):
            store.add_turn(sid, "user", f"{who}{i}")

    threads = [threading.Thread(target=write, args=(s, w)) for s, w in zip(stores, "ab", strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    turns = stores[1].turns(sid)
    assert [t.idx for t in turns] == list(range(30))
    assert sorted(t.text for t in turns) == sorted(f"{w}{i}" for w in "ab" for i in range(15))
    for s in stores:
        s.close()


def test_several_processes_may_migrate_a_new_database_at_once(pg_server) -> None:
    url = pg_server.database()
    try:
        errors: list[BaseException] = []

        def open_one() -> None:
            try:
                TranscriptStore(url).close()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        store = TranscriptStore(url)
        assert store.db.version() == len(MIGRATIONS)
        assert store.db.execute("SELECT COUNT(*) FROM users WHERE id='local'").fetchone()[0] == 1
        store.close()
    finally:
        pg_server.drop(url)


def test_a_restarted_server_fails_one_statement_then_the_store_connects_again(pg_server) -> None:
    url = pg_server.database()
    try:
        store = TranscriptStore(url)
        sid = store.create_session(mode="coach", backend="fake", model="m")
        pg_server.restart()
        with pytest.raises(BackendError, match="the database .* failed"):
            store.add_turn(sid, "user", "during the restart")
        store.add_turn(sid, "user", "after it")
        assert [t.text for t in store.turns(sid)] == ["after it"]
        store.close()
    finally:
        pg_server.drop(url)


def test_database_url_is_checked_and_an_unreachable_server_is_one_clear_line(tmp_path: Path) -> None:
    for bad, says in [("mysql://u@h/db", "unsupported database URL scheme"), ("postgresql://u:pw@h:port/db", "malformed"),
                      ("postgresql://u@h", "needs a host and a database name")]:
        with pytest.raises(ConfigError, match=says) as caught:
            load_settings(database_url=bad)
        assert "COACH_DATABASE_URL" in str(caught.value) and "pw" not in str(caught.value)
    with pytest.raises(ConfigError, match="not both"):
        load_settings(database_url="postgresql://u@h/db", db=str(tmp_path / "x.sqlite3"))
    port = _closed_port()
    with pytest.raises(ConfigError) as caught:
        TranscriptStore(f"postgresql://coach:s3cret@127.0.0.1:{port}/coach")
    line = str(caught.value)
    assert "COACH_DATABASE_URL" in line and f"127.0.0.1:{port}" in line and "s3cret" not in line and "\n" not in line


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


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
