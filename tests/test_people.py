"""People (issue 14): accounts, sessions owned by a person, memory across sessions, the follow-up on a
remembered plan, export / forget / purge, and the Review tab's privacy. Fast: the fake chat model (the
safety screen, the coder and the follow-up outcome read the real local embedding). Tests that take ``store``
run twice, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_cli import assert_one_error_line, coach, ok_json

from assistant.chain import Coach
from assistant.config import ROOT, Settings
from assistant.db import Database, statements
from assistant.errors import ConfigError, InputError, NotFoundError
from assistant.people.accounts import Accounts, check_password
from assistant.people.memory import Memory, excerpt, followup_line
from assistant.people.rights import TABLES, counts, export, forget, purge
from assistant.transcripts import LOCAL_USER, MIGRATIONS, TranscriptStore

PLAN_SESSION = ["I want to grow into a staff engineer role without managing people.",
                "Right now my director only talks about team lead roles and I keep getting pulled into people work.",
                "I could ask for the fraud-detection rebuild, or find a staff engineer to learn from.",
                "I'll ask my director for the fraud rebuild before the 14th."]
JUDGING = ("should have", "failed", "why didn't", "why did you not", "disappoint", "excuse", "you need to")


def plan_session(c: Coach, user: str = LOCAL_USER) -> str:
    sid = None
    for message in PLAN_SESSION:
        sid = c.turn(message, sid, user_id=user)["session"]
    assert sid
    return sid


@pytest.fixture
def store(any_store: TranscriptStore) -> TranscriptStore:
    """These tests run on SQLite and on PostgreSQL (``conftest.any_store``)."""
    return any_store


# -- accounts -------------------------------------------------------------------------------------------------
def test_passwords_are_hashed_never_stored(store: TranscriptStore) -> None:
    accounts = Accounts(store)
    accounts.add("Ana", "member", "correct horse battery")
    stored = store.db.execute("SELECT password FROM users WHERE id='ana'").fetchone()[0]
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert check_password("correct horse battery", stored) and not check_password("correct horse", stored)
    if store.path is not None:  # SQLite: not in the file either
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert b"correct horse battery" not in Path(store.path).read_bytes()
    assert accounts.verify("ANA", "correct horse battery") and not accounts.verify("ana", "wrong password")
    assert not accounts.verify("nobody", "correct horse battery") and not accounts.verify(LOCAL_USER, "")
    with pytest.raises(InputError):
        accounts.add("ana", "member", "another password")
    with pytest.raises(InputError):
        accounts.add("bob", "admin", "long enough pw")
    with pytest.raises(InputError):
        accounts.add("bob", "member", "short")


def test_migration_gives_earlier_sessions_to_the_local_user(store_target: str) -> None:
    old = Database.open(store_target)
    old.migrate(MIGRATIONS[:3])  # a store from before people existed
    old.execute("INSERT INTO sessions (id, mode, backend, model, created_at) VALUES ('old1','coach','fake','f','2026-01-01')")
    old.close()
    store = TranscriptStore(store_target)
    assert store.session("old1").user_id == LOCAL_USER and store.session("old1").shared == 0
    assert [s.id for s in store.sessions(user_id=LOCAL_USER)] == ["old1"]
    assert Accounts(store).get(LOCAL_USER).role == "member"
    store.close()


def test_a_sqlite_file_from_before_people_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    for migration in MIGRATIONS[:3]:  # exactly as earlier releases applied them
        db.executescript(";\n".join(statements(migration, "sqlite")))
    db.execute("PRAGMA user_version=3")
    db.execute("INSERT INTO sessions (id, mode, backend, model, created_at) VALUES ('old1','coach','fake','f','2026-01-01')")
    db.commit()
    db.close()
    store = TranscriptStore(path)
    assert store.session("old1").user_id == LOCAL_USER and store.db.version() == len(MIGRATIONS)


# -- sessions belong to a person ---------------------------------------------------------------------------------
def test_another_persons_session_is_refused(settings: Settings, store: TranscriptStore) -> None:
    Accounts(store).add("ana", "member", "ana password 1")
    Accounts(store).add("bob", "member", "bob password 1")
    c = Coach(settings, store=store)
    sid = c.turn("I feel stuck in my role", user_id="ana")["session"]
    before = len(store.turns(sid))
    with pytest.raises(NotFoundError):
        c.turn("let me read this", sid, user_id="bob")
    assert len(store.turns(sid)) == before  # nothing written into ana's session
    from assistant.rehearsal import Rehearsal

    r = Rehearsal(settings, store=store)
    rid = r.turn("Thanks for making time.", "ic-refuses-management", user_id="ana")["session"]
    with pytest.raises(NotFoundError):
        r.turn("Hi", None, session_id=rid, user_id="bob")
    from assistant.debrief import debrief

    with pytest.raises(NotFoundError):
        debrief(store, rid, user_id="bob")
    assert [s.id for s in store.sessions(user_id="bob")] == []
    assert {s.id for s in store.sessions(user_id="ana")} == {sid, rid}


# -- memory ------------------------------------------------------------------------------------------------------
def test_memory_keeps_only_the_persons_own_words(settings: Settings, store: TranscriptStore) -> None:
    c = Coach(settings, store=store)
    sid = plan_session(c)
    items = Memory(store).items(LOCAL_USER)
    assert {i.kind for i in items} == {"goal", "plan"}
    user_text = " ".join(t.text for t in store.turns(sid) if t.role == "user")
    coach_text = [t.text for t in store.turns(sid) if t.role == "assistant"]
    for item in items:  # the person's words; the coach only ever quotes them back (the plan, since 2026-12-03)
        assert item.text in user_text
        assert all(f'"{item.text}' in said for said in coach_text if item.text in said)
    plan = next(i for i in items if i.kind == "plan")
    assert "fraud rebuild" in plan.text and plan.status == "open"
    memory = Memory(store)
    coach_turn = next(t for t in store.turns(sid) if t.role == "assistant")
    with pytest.raises(InputError):  # the coach's words
        memory.remember(LOCAL_USER, "goal", coach_turn.text, sid, coach_turn.id)
    first = store.turns(sid)[0]
    with pytest.raises(InputError):  # not an excerpt
        memory.remember(LOCAL_USER, "goal", "I want to be CEO", sid, first.id)
    with pytest.raises(InputError):  # someone else's session
        memory.remember("bob", "goal", first.text, sid, first.id)


def test_a_safety_disclosure_is_never_remembered(settings: Settings, store: TranscriptStore) -> None:
    c = Coach(settings, store=store)
    sid = c.turn("I want to grow into a staff role without managing people.")["session"]
    disclosure = "My manager keeps touching me and I'll report it to HR tomorrow, I am scared."
    r = c.turn(disclosure, sid)
    assert r["safety"], r
    turn = store.turns(sid)[-2]
    assert turn.text == disclosure
    with pytest.raises(InputError):
        Memory(store).remember(LOCAL_USER, "plan", disclosure, sid, turn.id)
    assert all(disclosure not in i.text and "HR" not in i.text for i in Memory(store).items(LOCAL_USER))


def test_next_session_follows_up_the_plan_and_explores_without_judgement(settings: Settings,
                                                                         store: TranscriptStore) -> None:
    c = Coach(settings, store=store)
    first = plan_session(c)
    assert all(t.meta.get("followup") is None for t in store.turns(first))
    opened = c.turn("Hi, I'm back.")
    assert opened["followup"] and opened["reply"] == opened["followup"]
    assert "fraud rebuild before the 14th" in opened["followup"] and opened["reply"].count("?") == 1
    assert opened["session"] != first and opened["codes"][-1] == "open_question"
    answer = c.turn("I didn't do it, the release ate my whole week.", opened["session"])
    assert answer["followup"] is None and answer["reply"].endswith("?") and answer["reply"].count("?") == 1
    assert not any(j in answer["reply"].lower() for j in JUDGING)
    assert "advice" not in answer["codes"]
    plan = Memory(store).items(LOCAL_USER, "plan")[0]
    assert plan.status == "not_done"
    assert Memory(store).open_plan(LOCAL_USER) is None  # followed up once, not every session
    assert c.turn("Hello")["followup"] is None


def test_a_new_session_on_a_new_topic_is_coached_and_the_plan_waits(settings: Settings,
                                                                    store: TranscriptStore) -> None:
    """The follow-up never replaces an answer to what the person just said (a batch of `coach ask` openers
    after one conversation with a plan got "How did it go?" for every new topic)."""
    c = Coach(settings, store=store)
    plan_session(c)
    new = c.turn("My new lead keeps presenting my analysis as her own in meetings.")
    assert new["followup"] is None and "fraud rebuild" not in new["reply"] and new["reply"].endswith("?")
    assert store.turns(new["session"])[-1].meta["route"] not in ("followup", "followup_answer")
    assert Memory(store).open_plan(LOCAL_USER) is not None  # still waiting for a session that opens with hello
    opened = c.turn("hey coach, back for another round")
    assert opened["followup"] and "fraud rebuild" in opened["reply"]


def test_a_first_message_that_reports_on_the_plan_is_answered_as_a_report(settings: Settings,
                                                                         store: TranscriptStore) -> None:
    c = Coach(settings, store=store)
    plan_session(c)
    r = c.turn("I asked my director for the fraud rebuild but she said not before January, so it didn't happen.")
    assert store.turns(r["session"])[-1].meta["route"] == "followup_answer", r
    assert Memory(store).items(LOCAL_USER, "plan")[0].status == "not_done"
    assert not any(j in r["reply"].lower() for j in JUDGING) and r["reply"].count("?") == 1


def test_a_greeting_with_nothing_remembered_is_welcomed_not_reflected(settings: Settings,
                                                                      store: TranscriptStore) -> None:
    r = Coach(settings, store=store).turn("hi")
    assert "not much comes to mind" not in r["reply"] and r["reply"].count("?") == 1
    assert store.turns(r["session"])[-1].meta["route"] == "welcome"
    later = Coach(settings, store=store).turn("I want to stop saying yes to every side project.", r["session"])
    assert later["reply"] != r["reply"] and store.turns(r["session"])[-1].meta["route"] != "welcome"


def test_first_messages_are_routed_on_the_dev_set() -> None:
    """Another writer's 40 plans, each with a greeting, a report, a new topic and a near topic (same people, a
    different issue): greetings open with the follow-up; new topics are never read as reports."""
    from assistant.people.followup import routing_figures

    f = routing_figures(ROOT / "evals" / "understanding" / "followup" / "dev.jsonl")
    assert f["greeting_followed_up"] >= 0.9 and f["new_topic_followed_up"] <= 0.05, f
    assert f["near_topic_followed_up"] <= 0.1 and f["report_followed_up"] >= 0.15, f


def test_routing_figures_name_the_file_and_field_of_a_bad_row(tmp_path: Path) -> None:
    from assistant.people.followup import routing_figures

    bad = tmp_path / "f.jsonl"
    bad.write_text('{"plan": "I will ask.", "greeting": "hi", "report": "", "new_topic": "x", "near_topic": "y"}\n')
    with pytest.raises(ConfigError, match=r"f.jsonl:1: field 'report'"):
        routing_figures(bad)


def test_eval_runs_do_not_remember(settings: Settings, store: TranscriptStore) -> None:
    c = Coach(settings, store=store, remember=False)
    plan_session(c)
    assert Memory(store).items(LOCAL_USER) == [] and c.turn("Hi")["followup"] is None


@pytest.mark.parametrize("plan", [
    "I'll ask my director for the fraud rebuild before the 14th.",
    "I will send him two or three questions a few days before.",
    "I'm going to talk to Sara on Monday.",
    "i'll ask for the rebuild",
    "Yes, I will do like this. I will send him questions before, so he has time. And I will mostly listen.",
    "I'll tell you what I think?",
    "So I'll block two hours every morning for deep work.",
])
def test_followup_line_quotes_or_rephrases_without_pronoun_swaps(plan: str) -> None:
    line = followup_line(plan)
    assert line.endswith("How did it go?") and line.count("?") == 1
    if "“" in line:  # the person's words, quoted exactly (a stray question mark aside)
        assert " ".join(plan.replace("?", ".").split()).rstrip(".") in line
    else:
        body = line.split("planning to ", 1)[1].split(". How did it go?")[0]
        assert body in plan and not any(w in body.lower().split() for w in ("i", "my", "me", "you", "your", "we"))


@pytest.mark.parametrize("text,kind,expected", [
    ("Honestly it was a hard week. I will email Priya on Friday. Then I'll see.", "plan",
     "I will email Priya on Friday. Then I'll see."),
    ("I'll email Priya. It was a hard week. I will also book a slot on Friday.", "plan", "I'll email Priya."),
    ("Thanks. Can we go back to my promotion case? I want to lead the platform team.", "goal",
     "I want to lead the platform team."),
    ("ok", "goal", "ok"),
    ("I want " + "very " * 80 + "much to grow.", "goal", None),
])
def test_excerpt_is_a_contiguous_verbatim_part(text: str, kind: str, expected: str | None) -> None:
    got = excerpt(text, kind)
    assert got and got in " ".join(text.split())  # exact and contiguous: memory accepts only that
    assert len(got) <= 220 and (expected is None or got == expected)


def test_outcome_on_the_dev_answers() -> None:
    from assistant.understanding.outcome import outcome
    from assistant.understanding.turn import signal_rows

    dev = signal_rows("outcome", "dev")
    right = sum(outcome(r.text) == r.label for r in dev)
    assert len(dev) >= 100 and right / len(dev) >= 0.78, right  # 0.81 when trained (docs/privacy.md)


def test_memory_items_can_be_corrected_and_deleted_only_by_their_owner(settings: Settings,
                                                                       store: TranscriptStore) -> None:
    plan_session(Coach(settings, store=store))
    memory = Memory(store)
    item = memory.items(LOCAL_USER, "plan")[0]
    with pytest.raises(NotFoundError):
        memory.correct(item.id, "something else", "bob")
    assert memory.correct(item.id, "I'll ask for the rebuild in January.", LOCAL_USER).text.endswith("January.")
    with pytest.raises(NotFoundError):
        memory.delete(item.id, "bob")
    memory.delete(item.id, LOCAL_USER)
    assert [i.id for i in memory.items(LOCAL_USER)] == [i.id for i in memory.items(LOCAL_USER) if i.id != item.id]
    with pytest.raises(NotFoundError):
        memory.get(item.id)


# -- my data: export, forget, purge --------------------------------------------------------------------------------
def test_forget_removes_every_row_and_file_of_one_person(settings: Settings, store: TranscriptStore) -> None:
    accounts = Accounts(store)
    accounts.add("ana", "member", "ana password 1")
    accounts.add("bob", "member", "bob password 1")
    accounts.add("rev", "reviewer", "rev password 1")
    c = Coach(settings, store=store)
    ana_sid = plan_session(c, "ana")
    plan_session(c, "bob")
    from assistant.people.access import set_shared
    from assistant.review import label_sentence, sentence_choices

    set_shared(store, "ana", ana_sid, True)
    label_sentence(store, sentence_choices(store, ana_sid)[0][1], "reflection", labeller="rev")
    from assistant.people.rights import export_to_file

    saved = export_to_file(store, "ana", settings.data_dir)
    folder = saved.parent
    assert json.loads(saved.read_text())["user"]["id"] == "ana"
    before, bob_before = counts(store, "ana", settings.data_dir), counts(store, "bob", settings.data_dir)
    assert all(before[t] > 0 for t in (*TABLES, "files")), before
    deleted = forget(store, "ana", settings.data_dir)
    assert deleted == before  # what it reports is what there was
    after = counts(store, "ana", settings.data_dir)
    assert all(v == 0 for v in after.values()), after
    assert counts(store, "bob", settings.data_dir) == bob_before  # nobody else's data
    assert not folder.exists()
    assert store.db.execute("SELECT COUNT(*) FROM turns WHERE session_id=?", (ana_sid,)).fetchone()[0] == 0
    with pytest.raises(NotFoundError):
        forget(store, "ana", settings.data_dir)


def test_export_has_everything_but_the_password(settings: Settings, store: TranscriptStore) -> None:
    Accounts(store).add("ana", "member", "ana password 1")
    sid = plan_session(Coach(settings, store=store), "ana")
    data = export(store, "ana")
    text = json.dumps(data)
    assert "scrypt$" not in text and "ana password" not in text
    assert [s["id"] for s in data["sessions"]] == [sid]
    assert [t["text"] for t in data["sessions"][0]["turns"] if t["role"] == "user"] == PLAN_SESSION
    assert {m["kind"] for m in data["memory"]} == {"goal", "plan"}
    assert data["sessions"][0]["action_plan"] == PLAN_SESSION[-1]


def test_purge_respects_the_date(settings: Settings, store: TranscriptStore) -> None:
    c = Coach(settings, store=store)
    old = c.turn("I feel stuck")["session"]
    recent = c.turn("I feel bored")["session"]
    run_sid = store.create_session(mode="coach", backend="fake", model="f", run_id="run1")
    store.add_turn(run_sid, "user", "eval line")
    long_ago = (datetime.now(UTC) - timedelta(days=40)).isoformat(timespec="milliseconds")
    edge = (datetime.now(UTC) - timedelta(days=29)).isoformat(timespec="milliseconds")
    store.db.execute("UPDATE sessions SET created_at=? WHERE id IN (?,?)", (long_ago, old, run_sid))
    store.db.execute("UPDATE turns SET created_at=? WHERE session_id IN (?,?)", (long_ago, old, run_sid))
    store.db.execute("UPDATE sessions SET created_at=? WHERE id=?", (long_ago, recent))  # old, but active since
    store.db.execute("UPDATE turns SET created_at=? WHERE session_id=?", (edge, recent))
    store.db.execute("UPDATE turns SET created_at=? WHERE id=?", (long_ago, store.turns(recent)[0].id))
    deleted = purge(store, 30)
    assert deleted["sessions"] == 1 and deleted["turns"] == 2
    assert not store.has_session(old) and store.has_session(recent) and store.has_session(run_sid)
    assert purge(store, 28)["sessions"] == 1 and not store.has_session(recent)
    assert store.has_session(run_sid)  # eval runs are the L&D team's, never purged as a person's


# -- Review sees runs and shared sessions only -------------------------------------------------------------------
def test_reviewer_cannot_read_a_private_session(settings: Settings, store: TranscriptStore) -> None:
    from assistant.people.access import set_shared
    from assistant.review import SHARED, label_sentence, sentence_choices, session_choices, show_session

    Accounts(store).add("ana", "member", "ana password 1")
    sid = Coach(settings, store=store).turn("My secret: I am interviewing at Acme.", user_id="ana")["session"]
    assert "Acme" not in show_session(store, sid) and sentence_choices(store, sid) == []
    assert session_choices(store, SHARED) == []
    turn = store.turns(sid)[1]
    with pytest.raises(NotFoundError):
        label_sentence(store, f"{turn.id}:0", "reflection")
    set_shared(store, "ana", sid, True)
    assert [s for _, s in session_choices(store, SHARED)] == [sid] and "interviewing at" in show_session(store, sid)
    assert "Acme" not in show_session(store, sid) and "[name]" in show_session(store, sid)  # names redacted
    with pytest.raises(NotFoundError):
        set_shared(store, "bob", sid, False)


# -- the command line ---------------------------------------------------------------------------------------------
def test_people_commands(isolated: Path) -> None:
    assert "added ana" in coach("users", "add", "ana", "--role", "member", stdin="ana password 1\n").stderr
    assert_one_error_line(coach("users", "add", "bob", "--role", "boss", stdin="bob password 1\n"))
    assert_one_error_line(coach("ask", "--dry-run", "--user", "nobody", "hi"))
    sid = None
    for message in PLAN_SESSION:
        sid = ok_json(coach("ask", "--dry-run", "--json", "--user", "ana", *(["--session", sid] if sid else []),
                            message))["session"]
    assert_one_error_line(coach("ask", "--dry-run", "--session", str(sid), "hi"))  # the local user's? no: ana's
    items = ok_json(coach("memory", "--user", "ana", "--json"))
    assert {i["kind"] for i in items} == {"goal", "plan"}
    assert ok_json(coach("memory", "--json")) == []  # the local user has nothing remembered
    opened = ok_json(coach("ask", "--dry-run", "--json", "--user", "ana", "Hello"))
    assert opened["followup"] and "fraud rebuild" in opened["followup"]
    plain = ok_json(coach("ask", "--dry-run", "--json", "Hello"))
    assert "followup" in plain and plain["followup"] is None
    goal = next(i for i in items if i["kind"] == "goal")
    assert coach("memory", "forget", str(goal["id"]), "--user", "ana").returncode == 0
    assert goal["id"] not in [i["id"] for i in ok_json(coach("memory", "--user", "ana", "--json"))]
    assert_one_error_line(coach("memory", "forget", str(goal["id"]), "--user", "ana"))
    exported = ok_json(coach("export", "--user", "ana"))
    assert len(exported["sessions"]) == 2 and "password" not in json.dumps(exported["user"]).replace("has_password", "")
    assert_one_error_line(coach("forget", "--user", "ana"))  # no --yes: nothing happens
    assert ok_json(coach("memory", "--user", "ana", "--json"))
    deleted = ok_json(coach("forget", "--user", "ana", "--yes", "--json"))
    assert deleted["users"] == 1 and deleted["sessions"] == 2 and deleted["memory"] == 1
    assert deleted["turns"] == 2 * len(PLAN_SESSION) + 2
    assert_one_error_line(coach("memory", "--user", "ana"))
    text = coach("purge", "--older-than", "30")
    assert text.returncode == 0 and text.stdout.startswith("purged before ")
    assert_one_error_line(coach("purge"))


def test_users_add_reads_the_password_from_stdin_only_once(isolated: Path) -> None:
    proc = coach("users", "add", "carol", "--role", "reviewer", stdin="carol password\n")
    assert proc.returncode == 0 and "carol password" not in proc.stdout + proc.stderr
    listed = ok_json(coach("users", "list", "--json"))
    assert {"id": "carol", "role": "reviewer"}.items() <= next(u for u in listed if u["id"] == "carol").items()
    assert_one_error_line(coach("users", "add", "dave", "--role", "member", stdin=""))


def test_trusted_header_only_when_configured(store: TranscriptStore, isolated: Path) -> None:
    from types import SimpleNamespace

    from assistant.config import load_settings
    from assistant.errors import ConfigError
    from assistant.people.access import LOCAL, NOBODY, Gate

    Accounts(store).add("ana", "reviewer", None)
    header = Gate(Settings(backend="fake", auth="header", trusted_header="X-Forwarded-User"), store)
    assert header.who(SimpleNamespace(headers={"x-forwarded-user": "ana"}, username=None)).role == "reviewer"
    assert header.who(SimpleNamespace(headers={"x-forwarded-user": "mallory"}, username=None)) == NOBODY
    assert header.who(SimpleNamespace(headers={}, username="ana")) == NOBODY  # only the header counts
    assert "auth_dependency" in header.launch_options()
    users = Gate(Settings(backend="fake", auth="users"), store)
    assert users.who(SimpleNamespace(headers={"x-forwarded-user": "ana"}, username=None)) == NOBODY
    assert not users.accounts.verify("ana", "")  # a header-only account has no password to log in with
    assert Gate(Settings(backend="fake"), store).who(None) == LOCAL  # the laptop default: no login
    with pytest.raises(ConfigError):
        load_settings(backend="fake", auth="header")  # a header mode without a header name is refused


@pytest.mark.slow
def test_a_plan_is_followed_up_in_the_next_session_on_the_embedded_model(isolated: Path) -> None:
    store = TranscriptStore(Settings(backend="embedded").db_path)
    Accounts(store).add("ana", "member", "ana password 1")
    c = Coach(Settings(backend="embedded"), store=store)
    sid, result = None, {}
    for message in PLAN_SESSION:
        result = c.turn(message, sid, user_id="ana")
        sid = result["session"]
        assert result["followup"] is None and result["backend"] == "embedded"
    assert result["action_plan"] == PLAN_SESSION[-1]
    opened = c.turn("Hello again.", user_id="ana")
    assert opened["session"] != sid and opened["followup"] == opened["reply"]
    assert "fraud rebuild before the 14th" in opened["reply"] and opened["reply"].count("?") == 1
    answer = c.turn("Half of it happened: I raised it with my director and we agreed to revisit it in January.",
                    opened["session"], user_id="ana")
    assert answer["reply"].count("?") == 1 and not any(j in answer["reply"].lower() for j in JUDGING)
    assert Memory(store).items("ana", "plan")[0].status in ("partly", "not_done")
    later = c.turn("I want to make the case again with numbers this time.", opened["session"], user_id="ana")
    assert later["followup"] is None and later["reply"].endswith("?")  # the session goes on coaching


def test_an_earlier_goal_comes_back_once_when_a_later_message_is_on_its_theme(settings: Settings,
                                                                            store: TranscriptStore) -> None:
    """Earlier themes: in a later session, a message close in meaning to the remembered goal brings the
    person's own words back once, as a question; a message on something else does not."""
    c = Coach(settings, store=store)
    plan_session(c)
    goal = Memory(store).items(LOCAL_USER, "goal")[0].text
    first = c.turn("My new lead keeps presenting my analysis as her own in meetings.")
    other = c.turn("It happened again on Tuesday, she showed my churn model to the VP.", first["session"])
    assert goal not in other["reply"]  # another theme: coached as it is
    sid = c.turn("Something else is on my mind today.")["session"]
    c.turn("I keep thinking about where my career is heading.", sid)
    back = c.turn("My director offered me a team lead role again, but I want the staff engineer path without "
                  "managing people.", sid)
    assert f"“{goal}" in back["reply"] and back["reply"].endswith("?") and back["reply"].count("?") == 1
    assert store.turns(sid)[-1].meta["route"] == "theme"
    again = c.turn("Being a staff engineer without managing people is still what I want most.", sid)
    assert goal not in again["reply"]  # once a session


def test_the_theme_signal_links_related_messages_and_rarely_others() -> None:
    """On dev: links more related messages than cosine alone, and at most about one in twenty on another issue."""
    from assistant.understanding.themes import theme_report

    f = theme_report("dev")
    head, cosine = f["head"], f["cosine_alone"]
    assert f["n"] >= 200 and head["near_linked"] <= 0.05 and head["unrelated_linked"] <= 0.05, f
    assert head["related_linked"] >= 0.3 and head["related_linked"] > cosine["related_linked"], f


def test_the_stored_theme_head_was_trained_on_the_current_rows() -> None:
    from assistant.understanding.data import file_sha
    from assistant.understanding.themes import DATA, MODEL

    spec = json.loads(MODEL.read_text(encoding="utf-8"))
    assert spec["meta"]["data_sha256"] == file_sha(DATA / "train.jsonl", DATA / "dev.jsonl"), \
        "labelled data changed: run `coach understand train theme`"


def test_names_are_redacted_on_the_dev_set_better_than_by_capitals_alone() -> None:
    from assistant.people.redact import redaction_figures

    path = ROOT / "evals" / "people" / "redaction" / "dev.jsonl"
    full, capitals = redaction_figures(path), redaction_figures(path, use_model=False)
    assert full["messages"] >= 200 and full["name_recall"] >= 0.9, full  # 0.931 when written (docs/privacy.md)
    assert full["name_recall"] > capitals["name_recall"] + 0.05, (full, capitals)


@pytest.mark.parametrize("text,hidden,kept", [
    ("I told Will the deadline will move.", ["Will"], ["will move"]),
    ("can u write to mr okonkwo for me", ["okonkwo"], ["write to mr"]),
    ("Grace said the Georgia office grew by the grace of our new VP.", ["Grace said"], ["by the grace of"]),
])
def test_names_that_are_also_ordinary_words(text: str, hidden: list[str], kept: list[str]) -> None:
    from assistant.people.redact import redact_names

    out = redact_names(text)
    assert all(h not in out for h in hidden) and all(k in out for k in kept), out


def test_a_name_found_in_one_turn_is_redacted_in_every_turn(store: TranscriptStore) -> None:
    from assistant.people.access import set_shared
    from assistant.review import reviewable

    sid = store.create_session(mode="coach", backend="fake", model="fake", user_id="ana")
    store.add_turn(sid, "user", "Marek never says what he wants.")
    store.add_turn(sid, "assistant", "It sounds like it matters to you. What have you tried so far?")
    store.add_turn(sid, "user", "honestly i asked marek twice and he shrugged")
    set_shared(store, "ana", sid, True)
    text = " ".join(e["text"] for e in reviewable(store, sid))
    assert "marek" not in text.lower() and text.count("[name]") == 2, text


def test_forget_me_needs_the_confirmation_word_and_reports_what_went(store: TranscriptStore, tmp_path: Path) -> None:
    from assistant.people.access import Identity
    from assistant.people.panel import forget_me

    Accounts(store).add("ana", "member", "ana password 1")
    sid = store.create_session(mode="coach", backend="fake", model="fake", user_id="ana")
    store.add_turn(sid, "user", "I feel stuck")
    ana = Identity("ana", "member")
    done, said = forget_me(store, ana, "yes please", tmp_path)
    assert not done and said.startswith("Nothing was deleted")
    assert counts(store, "ana")["turns"] == 1
    done, said = forget_me(store, ana, " Delete ", tmp_path)
    assert done and "1 sessions" in said and "1 turns" in said and "account is deleted" in said, said
    assert counts(store, "ana", tmp_path) == dict.fromkeys(counts(store, "ana", tmp_path), 0)
