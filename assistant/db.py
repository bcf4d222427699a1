"""One database handle over SQLite (the embedded default) or PostgreSQL (``COACH_DATABASE_URL``).

>>> import tempfile, pathlib
>>> db = Database.open(pathlib.Path(tempfile.mkdtemp()) / "x.sqlite3")
>>> _ = db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT)")
>>> db.insert("INSERT INTO t (name) VALUES (?)", ("ana",))
1
>>> row = db.execute("SELECT * FROM t WHERE name=?", ("ana",)).fetchone()
>>> row["name"], row[0], dict(row)
('ana', 1, {'id': 1, 'name': 'ana'})

Store code writes one SQL text with ``?`` placeholders; here it becomes ``%s`` for psycopg. Rows are read by
position or by name on both. Every statement runs under one re-entrant lock on one connection, so a
``transaction()`` is never interleaved with another thread's statements. Migrations are numbered lists of
statements; a statement that must differ between the two is a ``Dialects`` pair in the same migration.
SQLite keeps ``PRAGMA user_version`` (existing files open as before); PostgreSQL keeps a ``schema_version``
table and migrates under an advisory lock, so several processes starting at once apply each migration once.
This module knows nothing about sessions or people; ``transcripts`` and ``people`` own the tables.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import BackendError, CoachError, ConfigError

SCHEMES = ("postgresql", "postgres")
_MIGRATION_LOCK = 73_615_001  # pg_advisory_xact_lock key: one migrator at a time across processes


@dataclass(frozen=True)
class Dialects:
    """One statement written for each engine, kept side by side in its numbered migration."""

    sqlite: str
    postgresql: str

    def text(self, dialect: str) -> str:
        return self.sqlite if dialect == "sqlite" else self.postgresql


Statement = str | Dialects


def statements(migration: Sequence[Statement], dialect: str) -> list[str]:
    """The SQL texts of one migration for ``dialect`` ("sqlite" or "postgresql")."""
    return [s.text(dialect) if isinstance(s, Dialects) else s for s in migration]


def redact(url: str) -> str:
    """A database URL safe to print: the password replaced.

    >>> redact("postgresql://coach:s3cret@db.internal:5432/coach")
    'postgresql://coach:***@db.internal:5432/coach'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def check_url(url: str) -> str:
    """A well-formed ``postgresql://`` URL, or ValueError saying what is wrong (without the password)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"malformed database URL {redact(url) if '@' in url else url!r}: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(f"unsupported database URL scheme {parts.scheme or '(none)'!r}: use postgresql://USER@HOST/DB "
                         "(leave it unset for the SQLite file)")
    if not (parts.hostname or "host=" in parts.query) or not parts.path.strip("/"):
        raise ValueError(f"database URL {redact(url)!r} needs a host and a database name: postgresql://USER@HOST/DB")
    del port
    return url


class _Never(Exception):
    """Never raised: SQLite's errors pass through unchanged."""


class Row(tuple):
    """A PostgreSQL row readable like ``sqlite3.Row``: by position, by name, and as ``dict(row)``."""

    _names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Any:
    names = tuple(c.name for c in cursor.description or ())

    def make(values: Sequence[Any]) -> Row:
        row = Row(values)
        row._names = names
        return row

    return make


_QMARK = re.compile(r"'(?:[^']|'')*'|\?|%")


def to_pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` doubled); quoted strings are left alone.

    >>> to_pyformat("SELECT * FROM t WHERE a=? AND b LIKE 'x?%' AND c=?")
    "SELECT * FROM t WHERE a=%s AND b LIKE 'x?%%' AND c=%s"
    """
    def swap(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return token.replace("%", "%%")

    return _QMARK.sub(swap, sql)


class Database:
    """A connection to SQLite or PostgreSQL with one calling convention (``?`` placeholders)."""

    def __init__(self, dialect: str, connect: Any, where: str) -> None:
        self.dialect = dialect
        self.where = where  # for messages: the file path, or the URL without its password
        self.lock = threading.RLock()
        self._connect = connect
        self._conn = connect()
        self._depth = 0  # nesting of transaction() on the lock-holding thread
        self._lost: type[BaseException] = _Never  # the driver's "connection lost" error (psycopg.OperationalError)

    @classmethod
    def open(cls, target: Path | str) -> Database:
        """A SQLite file path, or a ``postgresql://`` URL."""
        if isinstance(target, str) and target.split(":", 1)[0] in SCHEMES:
            return cls._postgresql(check_url(target))
        return cls._sqlite(Path(target))

    @classmethod
    def _sqlite(cls, path: Path) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA secure_delete=ON")  # forgotten rows are overwritten, not left in free pages
            return conn

        return cls("sqlite", connect, str(path))

    @classmethod
    def _postgresql(cls, url: str) -> Database:
        try:
            import psycopg
        except ImportError:
            raise ConfigError("COACH_DATABASE_URL needs the psycopg package (make setup installs it)") from None
        where = redact(url)

        def connect() -> Any:
            try:
                return psycopg.connect(url, autocommit=True, row_factory=_row_factory, connect_timeout=10)
            except psycopg.Error as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ConfigError(f"cannot reach the database {where} (COACH_DATABASE_URL): {first}") from None

        db = cls("postgresql", connect, where)
        db._lost = psycopg.OperationalError
        return db

    # -- statements -----------------------------------------------------------------------------
    @property
    def for_update(self) -> str:
        """`` FOR UPDATE`` on PostgreSQL (row lock inside a transaction); SQLite's write transaction locks the file."""
        return " FOR UPDATE" if self.dialect == "postgresql" else ""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; the cursor has ``fetchone``, ``fetchall`` and ``rowcount`` on both engines."""
        with self.lock:
            if self.dialect == "sqlite":
                return self._conn.execute(sql, tuple(params))
            if self._conn.closed and not self._depth:  # lost earlier (server restarted): connect again
                self._conn = self._connect()
            try:
                return self._conn.execute(to_pyformat(sql), tuple(params))
            except self._lost as exc:  # not retried: the statement may have committed before the line dropped
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise BackendError(f"the database {self.where} failed: {first}") from None

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """An INSERT into a table with an ``id`` key; returns the new row's id (``RETURNING id`` on both)."""
        return int(self.execute(sql.rstrip().rstrip(";") + " RETURNING id", params).fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """Statements that commit together or not at all; a nested call joins the outer transaction."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            # SQLite: take the write lock now (IMMEDIATE), so two processes never deadlock upgrading a read lock
            self.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                try:
                    self.execute("ROLLBACK")
                except CoachError:  # the connection is gone, and the server rolled back with it
                    pass
                raise
            self._depth = 0
            self.execute("COMMIT")

    def scrub(self, tables: Sequence[str]) -> None:
        """After deleting a person's rows: make the deleted text unreadable from the database's own files where
        the engine allows (SQLite: secure_delete plus a WAL checkpoint; PostgreSQL: VACUUM of those tables)."""
        with self.lock:
            if self.dialect == "sqlite":
                self.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                for table in tables:
                    self.execute(f"VACUUM {table}")

    # -- schema ---------------------------------------------------------------------------------
    def version(self) -> int:
        """The number of migrations applied (0 for a new database)."""
        if self.dialect == "sqlite":
            return int(self.execute("PRAGMA user_version").fetchone()[0])
        found = self.execute("SELECT to_regclass('schema_version')").fetchone()[0]
        return int(self.execute("SELECT version FROM schema_version").fetchone()[0]) if found else 0

    def migrate(self, migrations: Sequence[Sequence[Statement]]) -> int:
        """Apply the pending migrations in order, each in its own transaction; returns the schema version."""
        while True:
            with self.transaction():
                if self.dialect == "postgresql":  # one migrator at a time; the others find the work done
                    self.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
                    self.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                    if self.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 0:
                        self.execute("INSERT INTO schema_version (version) VALUES (0)")
                version = self.version()
                if version >= len(migrations):
                    return version
                for sql in statements(migrations[version], self.dialect):
                    self.execute(sql)
                if self.dialect == "sqlite":
                    self.execute(f"PRAGMA user_version={version + 1}")
                else:
                    self.execute("UPDATE schema_version SET version=?", (version + 1,))

    def close(self) -> None:
        with self.lock:
            self._conn.close()
