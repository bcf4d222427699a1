"""Copy every stored row from one transcript database to another: moving a laptop install's SQLite file to
the team's PostgreSQL server (``coach db copy --to postgresql://…``), or back to a file for a backup.

>>> from pathlib import Path; import tempfile                                  # doctest: +SKIP
>>> copy_store(Path("old.db"), "postgresql://coach@db/coach")                  # doctest: +SKIP
{'users': 3, 'sessions': 41, 'runs': 2, 'turns': 388, 'action_plans': 9, 'labels': 0, 'memory': 12}

Both databases are brought to the same (latest) schema by the numbered migrations first. The target must hold
no sessions, people or memory yet (a new database, or one ``coach serve`` has only created): a copy never
merges two histories. Rows keep their ids, so transcripts, labels and memory items still point at each
other; on PostgreSQL the id sequences then continue after the copied ids. The whole copy is one transaction
on the target: it lands completely or not at all. The source is only read. It does not copy the handbook
index (``coach index`` builds it) or files under ``COACH_DATA_DIR/people``.
"""

from __future__ import annotations

from pathlib import Path

from .db import Database
from .errors import InputError
from .transcripts import MIGRATIONS, TranscriptStore

# parents before children (foreign keys): a session before its turns, a turn before its labels
ORDER = ("users", "sessions", "runs", "turns", "action_plans", "labels", "memory")
IDENTITY = ("turns", "memory")  # integer ids the database hands out


def _place(target: Path | str) -> Path | str:
    """A URL stays a string; anything else is a SQLite file path."""
    return target if isinstance(target, str) and "://" in target else Path(target)


def copy_store(source: Path | str, target: Path | str) -> dict[str, int]:
    """Copy all rows of ``source`` into the empty ``target`` (paths of SQLite files or ``postgresql://`` URLs);
    returns the rows copied per table."""
    source, target = _place(source), _place(target)
    if str(source) == str(target):
        raise InputError("the source and the target are the same database")
    if isinstance(source, Path) and not source.exists():
        raise InputError(f"no database at {source}")
    src = TranscriptStore(source).db  # migrated to the latest schema, like any store the app opens
    dst = TranscriptStore(target).db
    try:
        if src.version() != dst.version() or dst.version() != len(MIGRATIONS):
            raise InputError(f"schema versions differ ({src.version()} and {dst.version()}); upgrade the older side")
        held = {t: int(dst.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in ORDER if t != "users"}
        held["users"] = int(dst.execute("SELECT COUNT(*) FROM users WHERE id <> 'local'").fetchone()[0])
        if any(held.values()):
            found = ", ".join(f"{n} {t}" for t, n in held.items() if n)
            raise InputError(f"the target {dst.where} already holds data ({found}); copy only into an empty "
                             "database")
        copied: dict[str, int] = {}
        with dst.transaction():
            for table in ORDER:
                copied[table] = _copy_table(src, dst, table)
            if dst.dialect == "postgresql":
                for table in IDENTITY:  # the next id the server hands out comes after the copied ones
                    dst.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)")
        return copied
    finally:
        src.close()
        dst.close()


def _copy_table(src: Database, dst: Database, table: str) -> int:
    cursor = src.execute(f"SELECT * FROM {table}")
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    names, marks = ", ".join(columns), ", ".join("?" * len(columns))
    # the 'local' user row is made by a migration on both sides
    sql = f"INSERT INTO {table} ({names}) VALUES ({marks})" + (" ON CONFLICT (id) DO NOTHING" if table == "users"
                                                               else "")
    for row in rows:
        dst.execute(sql, tuple(row[c] for c in columns))
    return len(rows)
