"""The Gradio app driven by Debian's Chromium through Playwright (headless): a streamed coach turn, a new
session, and a short rehearsal with its debrief. The app runs in-process on a free loopback port."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator

import pytest
from conftest import CHROMIUM_ARGS

from assistant.config import Settings
from assistant.transcripts import TranscriptStore

pytestmark = pytest.mark.browser

LAST_BOT = "#coach-chat [data-testid='bot']"

# Records every distinct text the last bot message shows, so streaming is seen even when it is fast.
WATCH = """() => {
  window.__seen = [];
  const chat = document.querySelector('#coach-chat');
  const note = () => {
    const bots = chat.querySelectorAll("[data-testid='bot']");
    const text = bots.length ? bots[bots.length - 1].innerText.trim() : '';
    if (text && window.__seen[window.__seen.length - 1] !== text) window.__seen.push(text);
  };
  new MutationObserver(note).observe(chat, {subtree: true, childList: true, characterData: true});
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_analytics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")


@contextlib.contextmanager
def _serve(settings: Settings) -> Iterator[str]:
    from assistant.ui import build_app

    port = _free_port()
    demo = build_app(settings)
    try:
        demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()


@pytest.fixture
def fake_app(no_analytics: None, settings: Settings) -> Iterator[str]:
    with _serve(settings) as url:
        yield url


@pytest.fixture
def page(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page()
            pg.set_default_timeout(60_000)
            yield pg
        finally:
            browser.close()


def _coach_turn(page, message: str, timeout_ms: int = 60_000) -> tuple[str, list[str]]:
    """Send ``message`` in the Coach tab; return the final reply and the partial texts seen while streaming."""
    page.locator("#coach-input textarea").wait_for()
    page.evaluate(WATCH)
    page.locator("#coach-input textarea").fill(message)
    page.locator("#coach-send").click()
    page.wait_for_function(
        """() => {
          const bots = document.querySelectorAll("#coach-chat [data-testid='bot']");
          const status = document.querySelector('#coach-status').innerText;
          return bots.length && bots[bots.length - 1].innerText.trim().endsWith('?') && !status.includes('session new');
        }""",
        timeout=timeout_ms,
    )
    return page.locator(LAST_BOT).last.inner_text().strip(), page.evaluate("window.__seen")


def _only_session(settings: Settings) -> str:
    store = TranscriptStore(settings.db_path)
    try:
        sessions = store.sessions()
        assert len(sessions) == 1, sessions
        return sessions[0].id
    finally:
        store.close()


def test_coach_turn_streams_cites_and_resets(fake_app: str, page, settings: Settings) -> None:
    page.goto(fake_app)
    reply, seen = _coach_turn(page, "I feel stuck in my job and nobody notices my work")
    assert reply.endswith("?") and reply.count("?") == 1, reply
    assert len(seen) >= 2 and seen[-1] == reply, seen  # streamed: partial texts before the final one
    assert all(b.startswith(a) and len(b) > len(a) for a, b in zip(seen, seen[1:], strict=False)), seen

    status = page.locator("#coach-status").inner_text()
    sid = _only_session(settings)
    assert sid in status and "fake" in status, status
    store = TranscriptStore(settings.db_path)
    assert [t.role for t in store.turns(sid)] == ["user", "assistant"]
    store.close()

    cites = page.locator("#coach-citations").inner_text()
    assert re.search(r"knowledge/[\w-]+\.md", cites), cites

    page.locator("#coach-new").click()
    page.wait_for_function("() => document.querySelectorAll(\"#coach-chat [data-testid='bot']\").length === 0")
    assert page.locator("#coach-chat [data-testid='user']").count() == 0
    page.wait_for_function("() => document.querySelector('#coach-status').innerText.includes('session new')")


def test_rehearse_tab_turn_and_debrief(fake_app: str, page) -> None:
    page.goto(fake_app)
    page.get_by_role("tab", name="Rehearse").click()
    chosen = page.locator("#rehearse-persona input")
    first = chosen.input_value()
    chosen.click()
    page.get_by_role("option").nth(1).click()
    page.wait_for_function("(first) => document.querySelector('#rehearse-persona input').value !== first", arg=first)
    # the scenario brief names who the manager is talking to before the first line, and follows the choice
    from assistant.personas import load_personas

    title = chosen.input_value()
    persona = next(p for p in load_personas() if p.title == title)
    page.wait_for_function("(name) => document.querySelector('#rehearse-brief').innerText.includes(name)",
                           arg=f"You are talking with {persona.name}")
    assert persona.hidden_concern not in page.locator("#rehearse-brief").inner_text()
    # and the chat says who is on the other side
    page.wait_for_function("(name) => document.querySelector('#rehearse-chat').innerText.includes(name)",
                           arg=f"talking with {persona.name}")

    page.locator("#rehearse-input textarea").fill("Thanks for making time. How are things going for you lately?")
    page.locator("#rehearse-send").click()
    page.wait_for_function("() => document.querySelector('#rehearse-tension').innerText.includes('Tension:')")
    reply = page.locator("#rehearse-chat [data-testid='bot']").last.inner_text().strip()
    assert reply
    assert re.search(r"Tension: \d+/10 · over time: [▁▂▃▄▅▆▇█]{2}", page.locator("#rehearse-tension").inner_text())

    page.locator("#rehearse-end").click()
    page.wait_for_function("() => document.querySelector('#rehearse-debrief').innerText.includes('Scorecard')")
    assert "where it" in page.locator("#rehearse-debrief").inner_text()  # each rating says where and why

    # try again from here: a second line, then back to before it, and a different second line
    page.locator("#rehearse-input textarea").fill("Calm down, that's just how it is.")
    page.locator("#rehearse-send").click()
    page.wait_for_function("() => document.querySelectorAll(\"#rehearse-chat [data-testid='user']\").length === 2")
    page.wait_for_function("() => document.querySelectorAll(\"#rehearse-chat [data-testid='bot']\").length === 2")
    page.locator("#rehearse-from input").fill("2")
    page.locator("#rehearse-retry").click()
    page.wait_for_function("() => document.querySelector('#rehearse-tension').innerText.includes('trying again')")
    assert page.locator("#rehearse-chat [data-testid='user']").count() == 1
    assert page.locator("#rehearse-chat [data-testid='bot']").last.inner_text().strip() == reply
    page.locator("#rehearse-input textarea").fill("It sounds like a lot has been going on. What matters most to you?")
    page.locator("#rehearse-send").click()
    page.wait_for_function("() => document.querySelectorAll(\"#rehearse-chat [data-testid='user']\").length === 2")
    assert "Calm down" not in page.locator("#rehearse-chat").inner_text()


@pytest.mark.slow
def test_one_turn_on_the_embedded_model(no_analytics: None, isolated, page) -> None:
    settings = Settings(backend="embedded")
    with _serve(settings) as url:
        page.goto(url)
        reply, _ = _coach_turn(page, "I don't want to manage but I want to grow", timeout_ms=180_000)
        assert reply.endswith("?") and reply.count("?") == 1, reply
        status = page.locator("#coach-status").inner_text()
        assert "embedded" in status and _only_session(settings) in status, status
