"""Two members logged in side by side in headless Chromium (team mode, ``COACH_AUTH=users``), and a
reviewer: each member sees only their own sessions in "My sessions", reopens one and continues it, and
edits their memory; the reviewer sees the Review tab and nothing of the members' private words."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CHROMIUM_ARGS

from assistant.config import Settings
from assistant.people.access import Gate
from assistant.people.accounts import Accounts
from assistant.people.memory import Memory
from assistant.people.rights import counts
from assistant.transcripts import TranscriptStore

pytestmark = pytest.mark.browser
PASSWORDS = {"ana": "ana password 1", "bob": "bob password 1", "rev": "rev password 1"}
WORDS = {"ana": "I want to grow without managing and my Bluefinch project matters to me.",
         "bob": "I feel bored since the Kestrel migration ended and nobody noticed."}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def team_url(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Settings]]:
    from assistant.ui import build_app

    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    settings = Settings(backend="fake", auth="users")
    store = TranscriptStore(settings.db_path)
    Accounts(store).add("ana", "member", PASSWORDS["ana"])
    Accounts(store).add("bob", "member", PASSWORDS["bob"])
    Accounts(store).add("rev", "reviewer", PASSWORDS["rev"])
    demo = build_app(settings)
    port = _free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        **Gate(settings, store).launch_options())
    try:
        yield f"http://127.0.0.1:{port}", settings
    finally:
        demo.close()


@contextlib.contextmanager
def _browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _login(browser, url: str, user: str):
    page = browser.new_context().new_page()  # a context each: separate cookies, like two laptops
    page.set_default_timeout(60_000)
    page.goto(url)
    page.locator("input[type=text], input:not([type])").first.fill(user)
    page.locator("input[type=password]").fill(PASSWORDS[user])
    page.locator("button", has_text="Login").click()
    page.wait_for_function("() => document.querySelector('#signed-in')?.innerText.includes('Signed in as')")
    return page


def _say(page, message: str) -> str:
    before = page.locator("#coach-chat [data-testid='bot']").count()
    page.locator("#coach-input textarea").fill(message)
    page.locator("#coach-send").click()
    page.wait_for_function("""(before) => {
        const bots = document.querySelectorAll("#coach-chat [data-testid='bot']");
        return bots.length > before && bots[bots.length - 1].innerText.trim().endsWith('?')
          && !document.querySelector('#coach-status').innerText.includes('session new');
    }""", arg=before)
    return page.locator("#coach-chat [data-testid='bot']").last.inner_text().strip()


def _my_sessions(page) -> list[str]:
    page.get_by_role("tab", name="My sessions").click()
    page.locator("#my-refresh").click()
    page.wait_for_timeout(1500)  # the tab's own refresh and the button's have both arrived
    page.locator("#my-sessions input").click()
    options = [o.inner_text() for o in page.locator("[role=option]").all()]
    page.keyboard.press("Escape")
    return options


def _pick(page, elem_id: str, label: str) -> None:
    """Choose ``label`` in a Gradio dropdown; a list left open (focused) is closed first, or the click would
    close it instead of opening it."""
    box = page.locator(f"#{elem_id} input")
    box.blur()
    page.wait_for_timeout(300)
    box.click()
    page.get_by_role("option", name=label).click(timeout=10_000)


def test_two_members_side_by_side_and_a_reviewer(team_url: tuple[str, Settings], chromium_path: str) -> None:
    from playwright.sync_api import expect

    url, settings = team_url
    with _browser(chromium_path) as browser:
        ana, bob = _login(browser, url, "ana"), _login(browser, url, "bob")
        assert _say(ana, WORDS["ana"]).endswith("?")
        assert _say(bob, WORDS["bob"]).endswith("?")
        assert ana.get_by_role("tab", name="Review").count() == 0 or not ana.get_by_role("tab", name="Review").is_visible()

        mine, theirs = _my_sessions(ana), _my_sessions(bob)
        assert len(mine) == 1 and "grow without managing" in mine[0], mine  # the title: her first words
        assert len(theirs) == 1 and "I feel bored" in theirs[0], theirs

        # ana starts afresh, then reopens her session from My sessions and carries on in it
        ana.get_by_role("tab", name="Coach").click()
        ana.locator("#coach-new").click()
        ana.wait_for_function("() => document.querySelector('#coach-status').innerText.includes('session new')")
        ana.get_by_role("tab", name="My sessions").click()
        _pick(ana, "my-sessions", mine[0])
        ana.locator("#my-open").click()
        expect(ana.locator("#coach-chat")).to_contain_text("Bluefinch")
        before = ana.locator("#coach-chat [data-testid='user']").count()
        _say(ana, "Right now my director only talks about team lead roles.")
        assert ana.locator("#coach-chat [data-testid='user']").count() == before + 1
        store = TranscriptStore(settings.db_path)
        sessions = store.sessions(user_id="ana")
        assert len(sessions) == 1 and len([t for t in store.turns(sessions[0].id) if t.role == "user"]) == 2

        # her memory: the goal in her own words; she corrects it and bob never sees it
        items = Memory(store).items("ana")
        assert items and all("Bluefinch" in i.text or "director" in i.text for i in items)
        ana.get_by_role("tab", name="My sessions").click()
        ana.locator("#my-refresh").click()
        expect(ana.locator("#memory-table")).to_contain_text("Bluefinch")
        _pick(ana, "memory-item", f"{items[0].id} · {items[0].kind} · {items[0].text[:60]}")
        expect(ana.locator("#memory-text textarea")).to_have_value(items[0].text)
        ana.locator("#memory-text textarea").fill("I want to grow as a specialist.")
        ana.locator("#memory-save").click()
        expect(ana.locator("#memory-table")).to_contain_text("as a specialist")
        bob.get_by_role("tab", name="My sessions").click()
        bob.locator("#my-refresh").click()
        bob.wait_for_timeout(500)
        assert "specialist" not in bob.locator("#memory-table").inner_text()
        assert "Bluefinch" not in bob.content()
        # bob shares his session with reviewers; ana does not
        _pick(bob, "my-sessions", theirs[0])
        bob.locator("#my-share input").check()
        expect(bob.locator("#my-status")).to_contain_text("Reviewers can now read this session")

        # bob rehearses, starts another scenario, then reopens the rehearsal and carries on in the same session
        bob.get_by_role("tab", name="Rehearse").click()
        bob.locator("#rehearse-input textarea").fill("Thanks for making time, how are things going?")
        bob.locator("#rehearse-send").click()
        bob.wait_for_function("() => document.querySelector('#rehearse-tension').innerText.includes('Tension:')")
        scenario = bob.locator("#rehearse-persona input").input_value()
        bob.locator("#rehearse-persona input").click()
        bob.get_by_role("option").nth(2).click()
        bob.wait_for_function("() => !document.querySelector('#rehearse-tension').innerText.includes('Tension:')")
        listed = _my_sessions(bob)
        rehearsal = next(o for o in listed if o.startswith("Thanks for making time"))
        _pick(bob, "my-sessions", rehearsal)
        bob.locator("#my-open").click()
        expect(bob.locator("#rehearse-chat")).to_contain_text("how are things going")
        assert bob.locator("#rehearse-persona input").input_value() == scenario
        bob.locator("#rehearse-input textarea").fill("What would make this role worth staying for?")
        bob.locator("#rehearse-send").click()
        bob.wait_for_function("() => document.querySelectorAll(\"#rehearse-chat [data-testid='user']\").length === 2")
        bob.wait_for_timeout(500)
        rehearsals = [x for x in TranscriptStore(settings.db_path).sessions(user_id="bob") if x.mode == "rehearse"]
        assert len(rehearsals) == 1 and len(TranscriptStore(settings.db_path).turns(rehearsals[0].id)) == 4

        rev = _login(browser, url, "rev")
        expect(rev.get_by_role("tab", name="Review")).to_be_visible()
        assert rev.get_by_role("tab", name="Coach").count() == 0 or not rev.get_by_role("tab", name="Coach").is_visible()
        rev.locator("#review-run input").click()
        options = [o.inner_text() for o in rev.locator("[role=option]").all()]
        assert any("shared" in o.lower() for o in options), options
        rev.get_by_role("option", name="Sessions members shared").click()
        rev.wait_for_timeout(1000)
        rev.locator("#review-session input").click()
        rev.locator("#review-session [role=option]").first.wait_for()
        shared = [o.inner_text() for o in rev.locator("#review-session [role=option]").all()]
        coached = [x.id for x in TranscriptStore(settings.db_path).sessions(user_id="bob") if x.mode == "coach"]
        assert len(shared) == 1 and coached[0] in shared[0], shared
        rev.locator("#review-session [role=option]").first.click()
        expect(rev.locator("#review-transcript")).to_contain_text("migration ended and nobody noticed")
        assert "[name] migration" in rev.locator("#review-transcript").inner_text()  # names talked about: redacted
        assert "Bluefinch" not in rev.content() and "specialist" not in rev.content()

        # ana deletes everything about her from her own page: nothing without the confirmation word, then all of it
        bob_before = counts(TranscriptStore(settings.db_path), "bob")
        ana.get_by_role("tab", name="My sessions").click()
        ana.locator("#forget-me").click()
        expect(ana.locator("#forget-status")).to_contain_text("Nothing was deleted")
        assert counts(TranscriptStore(settings.db_path), "ana")["sessions"] == 1
        ana.locator("#forget-confirm textarea").fill("delete")
        ana.locator("#forget-me").click()
        expect(ana.locator("#forget-status")).to_contain_text("Deleted everything stored about you")
        left = counts(TranscriptStore(settings.db_path), "ana", settings.data_dir)
        assert left == dict.fromkeys(left, 0), left  # every table and file, the account too
        assert counts(TranscriptStore(settings.db_path), "bob") == bob_before  # nobody else's
        assert ana.locator("#coach-chat [data-testid='user']").count() == 0  # the open chat pointed at a gone session
        ana.get_by_role("tab", name="Coach").click()
        ana.locator("#coach-input textarea").fill("Is anyone there?")
        ana.locator("#coach-send").click()
        ana.wait_for_timeout(1500)
        assert TranscriptStore(settings.db_path).sessions(user_id="ana") == []  # a deleted account cannot write
