"""The SQLite transcript store: sessions and their turns, written through numbered migrations.

>>> import tempfile, pathlib
>>> store = TranscriptStore(pathlib.Path(tempfile.mkdtemp()) / "t.sqlite3")
>>> sid = store.create_session(mode="coach", backend="fake", model="fake-coach")
>>> _ = store.add_turn(sid, "user", "I feel stuck")
>>> [t.text for t in store.turns(sid)]
['I feel stuck']

The CLI, the UI and the eval harness all read and write here. Migrations are append-only: never edit an
old one, add a new one. This module does not decide what to say; it only remembers what was said.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import NotFoundError

MIGRATIONS: list[str] = [
    # 001: sessions and turns
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        mode TEXT NOT NULL,
        persona TEXT,
        difficulty TEXT,
        backend TEXT NOT NULL,
        model TEXT NOT NULL,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        idx INTEGER NOT NULL,
        role TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at TEXT NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX turns_session ON turns(session_id, idx);
    """,
    # 002: eval runs, sessions tagged with their run, action plans
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        suites TEXT NOT NULL,
        backend TEXT NOT NULL,
        model TEXT NOT NULL,
        created_at TEXT NOT NULL,
        summary TEXT NOT NULL DEFAULT '{}',
        out_dir TEXT
    );
    ALTER TABLE sessions ADD COLUMN run_id TEXT;
    ALTER TABLE sessions ADD COLUMN scenario TEXT;
    CREATE TABLE action_plans (
        session_id TEXT PRIMARY KEY REFERENCES sessions(id),
        text TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # 003: human labels beside the coder's
    """
    CREATE TABLE labels (
        turn_id INTEGER NOT NULL REFERENCES turns(id),
        sentence INTEGER NOT NULL,
        text TEXT NOT NULL,
        coder_code TEXT,
        human_code TEXT NOT NULL,
        labeller TEXT NOT NULL DEFAULT 'human',
        created_at TEXT NOT NULL,
        PRIMARY KEY (turn_id, sentence, labeller)
    );
    """,
    # 004: people. Accounts (hashed passwords), sessions owned by a person (every earlier session belongs to
    # the local user), a share flag for Review, and memory items in the person's own words
    """
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password TEXT,
        created_at TEXT NOT NULL
    );
    INSERT INTO users (id, role, password, created_at) VALUES ('local', 'member', NULL, '1970-01-01T00:00:00.000+00:00');
    ALTER TABLE sessions ADD COLUMN user_id TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE sessions ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX sessions_user ON sessions(user_id, created_at);
    CREATE TABLE memory (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        session_id TEXT,
        turn_id INTEGER,
        status TEXT NOT NULL DEFAULT 'open',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX memory_user ON memory(user_id, kind, created_at);
    """,
]

LOCAL_USER = "local"  # the single user of a laptop install; owns every session made before accounts existed


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Turn:
    id: int
    session_id: str
    idx: int
    role: str
    text: str
    created_at: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Session:
    id: str
    mode: str
    persona: str | None
    difficulty: str | None
    backend: str
    model: str
    created_at: str
    state: dict[str, Any]
    run_id: str | None = None
    scenario: str | None = None
    user_id: str = "local"
    shared: int = 0


class TranscriptStore:
    """A thread-safe handle on one SQLite file in WAL mode."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA secure_delete=ON")  # forgotten rows are overwritten, not left in free pages
        self.migrate()

    # -- schema ---------------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version."""
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.execute("BEGIN")
                try:
                    for statement in filter(str.strip, sql.split(";")):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version={number}")
                    self._db.execute("COMMIT")
                except Exception:
                    self._db.execute("ROLLBACK")
                    raise
            return len(MIGRATIONS)

    def close(self) -> None:
        self._db.close()

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for the people package's own tables (``assistant.people``); hold ``lock`` to write."""
        return self._db

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    # -- sessions -------------------------------------------------------------------------------
    def create_session(self, *, mode: str, backend: str, model: str, persona: str | None = None,
                       difficulty: str | None = None, state: dict[str, Any] | None = None,
                       run_id: str | None = None, scenario: str | None = None,
                       session_id: str | None = None, user_id: str = LOCAL_USER) -> str:
        sid = session_id or uuid.uuid4().hex[:12]
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions (id, mode, persona, difficulty, backend, model, created_at, state,"
                " run_id, scenario, user_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (sid, mode, persona, difficulty, backend, model, now(), json.dumps(state or {}), run_id, scenario,
                 user_id),
            )
        return sid

    def session(self, sid: str) -> Session:
        row = self._db.execute("SELECT * FROM sessions WHERE id=?", (sid,)).fetchone()
        if row is None:
            raise NotFoundError(f"no session {sid!r} in {self.path}")
        data = dict(row)
        data["state"] = json.loads(data["state"] or "{}")
        return Session(**data)

    def has_session(self, sid: str) -> bool:
        return self._db.execute("SELECT 1 FROM sessions WHERE id=?", (sid,)).fetchone() is not None

    def save_state(self, sid: str, state: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("UPDATE sessions SET state=? WHERE id=?", (json.dumps(state), sid))

    def sessions(self, *, run_id: str | None = None, mode: str | None = None, user_id: str | None = None,
                 limit: int = 200) -> list[Session]:
        """Newest first; ``user_id`` gives that person's own conversations (never eval-run sessions)."""
        sql, args = "SELECT id FROM sessions WHERE 1=1", []
        if user_id:
            sql += " AND user_id=? AND run_id IS NULL"
            args.append(user_id)
        if run_id:
            sql += " AND run_id=?"
            args.append(run_id)
        if mode:
            sql += " AND mode=?"
            args.append(mode)
        sql += " ORDER BY created_at DESC LIMIT ?"
        args.append(limit)
        return [self.session(r[0]) for r in self._db.execute(sql, args).fetchall()]

    # -- turns ----------------------------------------------------------------------------------
    def add_turn(self, sid: str, role: str, text: str, meta: dict[str, Any] | None = None) -> int:
        with self._lock:
            if not self.has_session(sid):
                raise NotFoundError(f"no session {sid!r} in {self.path}")
            idx = self._db.execute("SELECT COUNT(*) FROM turns WHERE session_id=?", (sid,)).fetchone()[0]
            cur = self._db.execute(
                "INSERT INTO turns (session_id, idx, role, text, created_at, meta) VALUES (?,?,?,?,?,?)",
                (sid, idx, role, text, now(), json.dumps(meta or {})),
            )
            return int(cur.lastrowid or 0)

    def turns(self, sid: str) -> list[Turn]:
        rows = self._db.execute("SELECT * FROM turns WHERE session_id=? ORDER BY idx", (sid,)).fetchall()
        return [Turn(**{**dict(r), "meta": json.loads(r["meta"] or "{}")}) for r in rows]

    def turn(self, turn_id: int) -> Turn:
        row = self._db.execute("SELECT * FROM turns WHERE id=?", (turn_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no turn {turn_id}")
        return Turn(**{**dict(row), "meta": json.loads(row["meta"] or "{}")})

    # -- action plans ---------------------------------------------------------------------------
    def save_action_plan(self, sid: str, text: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO action_plans (session_id, text, created_at) VALUES (?,?,?)"
                " ON CONFLICT(session_id) DO UPDATE SET text=excluded.text, created_at=excluded.created_at",
                (sid, text, now()),
            )

    def action_plan(self, sid: str) -> str | None:
        row = self._db.execute("SELECT text FROM action_plans WHERE session_id=?", (sid,)).fetchone()
        return row[0] if row else None

    # -- runs -----------------------------------------------------------------------------------
    def create_run(self, run_id: str, suites: list[str], backend: str, model: str, out_dir: str | None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO runs (id, suites, backend, model, created_at, summary, out_dir)"
                " VALUES (?,?,?,?,?,?,?)", (run_id, json.dumps(suites), backend, model, now(), "{}", out_dir),
            )

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("UPDATE runs SET summary=? WHERE id=?", (json.dumps(summary), run_id))

    def runs(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM runs ORDER BY created_at DESC").fetchall()
        return [{**dict(r), "suites": json.loads(r["suites"]), "summary": json.loads(r["summary"])} for r in rows]

    # -- labels ---------------------------------------------------------------------------------
    def set_label(self, turn_id: int, sentence: int, text: str, coder_code: str | None, human_code: str,
                  labeller: str = "human") -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO labels (turn_id, sentence, text, coder_code, human_code, labeller, created_at)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT(turn_id, sentence, labeller) DO UPDATE SET"
                " human_code=excluded.human_code, created_at=excluded.created_at",
                (turn_id, sentence, text, coder_code, human_code, labeller, now()),
            )

    def labels(self, run_id: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT l.*, t.session_id FROM labels l JOIN turns t ON t.id=l.turn_id"
               " JOIN sessions s ON s.id=t.session_id")
        args: list[Any] = []
        if run_id:
            sql += " WHERE s.run_id=?"
            args.append(run_id)
        return [dict(r) for r in self._db.execute(sql, args).fetchall()]
