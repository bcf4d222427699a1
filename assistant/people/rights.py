"""A person's own data: export it (JSON), forget it (every row and file, with counts), purge old sessions.

>>> import tempfile, pathlib
>>> from assistant.transcripts import TranscriptStore
>>> store = TranscriptStore(pathlib.Path(tempfile.mkdtemp()) / "t.sqlite3")
>>> sid = store.create_session(mode="coach", backend="fake", model="fake")
>>> _ = store.add_turn(sid, "user", "I feel stuck")
>>> forget(store, "local", files_root=None)["turns"]
1

What "everything about a person" means: their account (not the built-in local user's row), the
sessions they own (eval-run sessions are the L&D team's and are never touched), those sessions' turns,
action plans and any labels on them, labels they made as a reviewer, their memory items, and the files
written for them under ``<data dir>/people/<user>/``. On SQLite, deleting uses ``secure_delete`` (set by the
store) and a WAL checkpoint, so forgotten text does not linger in the database file; on PostgreSQL the
tables are vacuumed after, and the server's write-ahead log and backups keep old pages until they rotate
(docs/deploy.md).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..transcripts import LOCAL_USER, TranscriptStore
from .accounts import Accounts

TABLES = ("users", "sessions", "turns", "action_plans", "labels", "memory")


def user_folder(data_dir: Path, user_id: str) -> Path:
    return Path(data_dir) / "people" / user_id


def _sessions_of(store: TranscriptStore, user_id: str) -> list[str]:
    rows = store.db.execute("SELECT id FROM sessions WHERE user_id=? AND run_id IS NULL", (user_id,)).fetchall()
    return [r[0] for r in rows]


def counts(store: TranscriptStore, user_id: str, files_root: Path | None = None) -> dict[str, int]:
    """How many rows (per table) and files are stored about ``user_id``."""
    sids = _sessions_of(store, user_id)
    marks = ",".join("?" * len(sids)) or "''"
    q = store.db.execute

    def one(sql: str, args: list[Any]) -> int:
        return int(q(sql, args).fetchone()[0])

    folder = user_folder(files_root, user_id) if files_root else None
    return {
        "users": one("SELECT COUNT(*) FROM users WHERE id=? AND id<>?", [user_id, LOCAL_USER]),
        "sessions": len(sids),
        "turns": one(f"SELECT COUNT(*) FROM turns WHERE session_id IN ({marks})", sids),
        "action_plans": one(f"SELECT COUNT(*) FROM action_plans WHERE session_id IN ({marks})", sids),
        "labels": one(f"SELECT COUNT(*) FROM labels WHERE labeller=? OR turn_id IN "
                      f"(SELECT id FROM turns WHERE session_id IN ({marks}))", [user_id, *sids]),
        "memory": one("SELECT COUNT(*) FROM memory WHERE user_id=?", [user_id]),
        "files": sum(1 for p in folder.rglob("*") if p.is_file()) if folder and folder.exists() else 0,
    }


def export(store: TranscriptStore, user_id: str) -> dict[str, Any]:
    """Everything stored about ``user_id`` as one JSON-ready dict (never the password hash)."""
    from .memory import Memory

    user = Accounts(store).get(user_id)
    sessions = []
    for sid in _sessions_of(store, user.id):
        s = store.session(sid)
        turns = store.turns(sid)
        labels = [dict(r) for r in store.db.execute(
            "SELECT l.* FROM labels l JOIN turns t ON t.id=l.turn_id WHERE t.session_id=?", (sid,)).fetchall()]
        sessions.append({"id": s.id, "mode": s.mode, "persona": s.persona, "difficulty": s.difficulty,
                         "created_at": s.created_at, "shared": bool(s.shared), "state": s.state,
                         "action_plan": store.action_plan(sid), "labels": labels,
                         "turns": [{"role": t.role, "text": t.text, "created_at": t.created_at, "meta": t.meta}
                                   for t in turns]})
    made = [dict(r) for r in store.db.execute("SELECT * FROM labels WHERE labeller=?", (user.id,)).fetchall()]
    return {"user": {"id": user.id, "role": user.role, "created_at": user.created_at,
                     "has_password": user.has_password},
            "sessions": sessions, "memory": [i.public() for i in Memory(store).items(user.id)],
            "labels_made": made, "exported_at": datetime.now(UTC).isoformat(timespec="seconds")}


def _delete_sessions(store: TranscriptStore, sids: list[str]) -> dict[str, int]:
    out = {"sessions": 0, "turns": 0, "action_plans": 0, "labels": 0}
    for sid in sids:
        q = store.db.execute
        out["labels"] += q("DELETE FROM labels WHERE turn_id IN (SELECT id FROM turns WHERE session_id=?)",
                           (sid,)).rowcount
        out["action_plans"] += q("DELETE FROM action_plans WHERE session_id=?", (sid,)).rowcount
        out["turns"] += q("DELETE FROM turns WHERE session_id=?", (sid,)).rowcount
        out["sessions"] += q("DELETE FROM sessions WHERE id=?", (sid,)).rowcount
    return out


def forget(store: TranscriptStore, user_id: str, files_root: Path | None) -> dict[str, int]:
    """Delete everything about ``user_id``; returns what was deleted, per table (and files)."""
    uid = Accounts(store).get(user_id).id  # an unknown user is an error, not a silent "0 deleted"
    with store.db.transaction() as db:
        deleted = _delete_sessions(store, _sessions_of(store, uid))
        deleted["labels"] += db.execute("DELETE FROM labels WHERE labeller=?", (uid,)).rowcount
        deleted["memory"] = db.execute("DELETE FROM memory WHERE user_id=?", (uid,)).rowcount
        deleted["users"] = db.execute("DELETE FROM users WHERE id=? AND id<>?", (uid, LOCAL_USER)).rowcount
    store.db.scrub(TABLES)
    deleted["files"] = 0
    folder = user_folder(files_root, uid) if files_root else None
    if folder and folder.exists():
        deleted["files"] = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
    return {k: deleted.get(k, 0) for k in (*TABLES, "files")}


def purge(store: TranscriptStore, older_than_days: float, at: datetime | None = None) -> dict[str, int]:
    """Retention: delete people's sessions with no activity for ``older_than_days`` (eval runs are kept), and
    memory items not touched for as long. Returns counts per table."""
    if older_than_days < 0:
        raise ValueError("older_than_days must be 0 or more")
    cutoff = ((at or datetime.now(UTC)) - timedelta(days=older_than_days)).isoformat(timespec="milliseconds")
    with store.db.transaction() as db:  # the choice and the deletion together: a turn added meanwhile is not lost
        rows = db.execute(
            "SELECT s.id FROM sessions s LEFT JOIN turns t ON t.session_id=s.id WHERE s.run_id IS NULL"
            " GROUP BY s.id HAVING MAX(COALESCE(t.created_at, s.created_at)) < ? AND s.created_at < ?",
            (cutoff, cutoff)).fetchall()
        deleted = _delete_sessions(store, [r[0] for r in rows])
        deleted["memory"] = db.execute("DELETE FROM memory WHERE updated_at < ?", (cutoff,)).rowcount
    store.db.scrub(TABLES)
    return {"cutoff": cutoff, **deleted}  # type: ignore[dict-item]


def export_to_file(store: TranscriptStore, user_id: str, files_root: Path) -> Path:
    """Write the export under the person's own folder (forget removes it); returns the path."""
    folder = user_folder(files_root, user_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"export-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(export(store, user_id), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path
