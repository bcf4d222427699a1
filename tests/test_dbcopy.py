"""`coach db copy`: a laptop's SQLite store moves to a real PostgreSQL server whole, and back."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import assert_one_error_line, coach, ok_json

from assistant.chain import Coach
from assistant.config import Settings
from assistant.dbcopy import ORDER, copy_store
from assistant.errors import InputError
from assistant.people.accounts import Accounts
from assistant.people.memory import Memory
from assistant.transcripts import TranscriptStore

PLAN = ["I want to grow into a staff role without managing people.",
        "My director only talks about team lead roles.",
        "I could ask for the fraud-detection rebuild.",
        "I'll ask my director for the fraud rebuild before the 14th."]


def _rows(store: TranscriptStore) -> dict[str, list[tuple]]:
    out = {}
    for table in ORDER:
        cur = store.db.execute(f"SELECT * FROM {table}")
        cols = sorted(d[0] for d in cur.description)
        out[table] = sorted(tuple(str(r[c]) for c in cols) for r in cur.fetchall())
    return out


def _history(settings: Settings, store: TranscriptStore) -> str:
    Accounts(store).add("ana", "member", "ana password 1")
    c = Coach(settings, store=store)
    sid = None
    for message in PLAN:
        sid = c.turn(message, sid, user_id="ana")["session"]
    assert Memory(store).items("ana")  # a goal and a plan are remembered
    return str(sid)


def test_a_sqlite_store_moves_to_postgresql_whole_and_the_session_goes_on(settings: Settings, pg_server) -> None:
    source = TranscriptStore(settings.db_path)
    sid = _history(settings, source)
    before = _rows(source)
    source.close()
    url = pg_server.database()
    try:
        copied = copy_store(settings.db_path, url)
        assert copied["turns"] == 2 * len(PLAN) and copied["memory"] == 2 and copied["users"] >= 2
        target = TranscriptStore(url)
        assert _rows(target) == before  # every row, every column, the same ids
        # the copied session continues on the server, and new ids come after the copied ones
        after = Coach(settings, store=target).turn("Hi again.", user_id="ana")
        assert after["followup"] and "fraud rebuild" in after["reply"]
        more = Coach(settings, store=target).turn("It went fine.", sid, user_id="ana")
        assert more["session"] == sid and len(target.turns(sid)) == 2 * len(PLAN) + 2
        target.close()
        with pytest.raises(InputError, match="already holds data"):  # never merges two histories
            copy_store(settings.db_path, url)
    finally:
        pg_server.drop(url)


def test_copy_refuses_a_missing_source_and_the_same_database(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no database"):
        copy_store(tmp_path / "nothing.db", tmp_path / "new.db")
    assert not (tmp_path / "new.db").exists()
    TranscriptStore(settings.db_path).close()
    with pytest.raises(InputError, match="same database"):
        copy_store(settings.db_path, str(settings.db_path))


def test_the_command_copies_to_a_new_file_and_says_what(settings: Settings, tmp_path: Path) -> None:
    store = TranscriptStore(settings.db_path)
    _history(settings, store)
    store.close()
    backup = tmp_path / "backup.db"
    copied = ok_json(coach("db", "copy", "--to", str(backup), "--json"))
    assert copied["sessions"] == 1 and copied["turns"] == 2 * len(PLAN)
    assert _rows(TranscriptStore(backup)) == _rows(TranscriptStore(settings.db_path))
    assert_one_error_line(coach("db", "copy", "--to", str(backup)))  # not empty any more
    assert_one_error_line(coach("db", "copy", "--to", "postgresql://nobody@127.0.0.1:1/none"))
