"""The Review tab end to end in headless Chromium: runs listed, a transcript opened, a sentence labelled,
kappa updated, a run exported and two runs compared. Needs Debian's chromium (``make test`` installs it)."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import ROOT, Settings
from assistant.evals import run_suites
from assistant.transcripts import TranscriptStore

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytestmark = pytest.mark.browser
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SCENARIO = "hp-grow-without-managing"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, shared_index_dir: Path) -> Iterator[dict]:
    from assistant.ui import build_app

    data = tmp_path_factory.mktemp("review")
    shutil.copytree(shared_index_dir, data / "chroma")
    settings = Settings(backend="fake", data_dir=data, chroma_path=data / "chroma")
    run = run_suites([ROOT / "evals" / "suites" / "smoke.yaml"], data / "run", settings)
    demo = build_app(settings)
    port = _free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "run_id": run["run_id"], "settings": settings}
    finally:
        demo.close()


@pytest.fixture(scope="module")
def page(app: dict) -> Iterator:
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("chromium is missing: apt-get install -y chromium (make test does it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(app["url"])
            page.get_by_role("tab", name="Review").click()
            yield page
        finally:
            browser.close()


def pick(page, elem_id: str, text: str) -> str:
    """Choose the first option containing ``text`` in a Gradio dropdown; returns the option's label."""
    page.locator(f"#{elem_id} input").click()
    option = page.locator("[role=option]", has_text=text).first
    label = option.inner_text()
    option.click()
    return label


def test_review_tab_end_to_end(page, app: dict) -> None:
    from playwright.sync_api import expect

    run_id = app["run_id"]
    expect(page.locator("#review-runs")).to_contain_text(run_id)

    pick(page, "review-run", run_id)
    expect(page.locator("#review-kappa")).to_contain_text("no human labels yet")
    pick(page, "review-session", SCENARIO)
    transcript = page.locator("#review-transcript")
    expect(transcript).to_contain_text("Every senior person I admire here")
    expect(transcript.locator(".coach .code").first).to_be_visible()

    label = pick(page, "review-sentence", "turn 1.1")
    coder_code = label.split("[", 1)[1].split("]", 1)[0]
    pick(page, "review-code", coder_code)
    page.locator("#review-label").click()
    expect(page.locator("#review-kappa")).to_contain_text("Cohen's kappa: 1.00")
    expect(page.locator("#review-kappa")).to_contain_text("agreement 1/1")

    other = "affirmation" if "affirmation" not in page.locator("#review-sentence input").input_value() else "advice"
    pick(page, "review-sentence", "turn 2.1")
    pick(page, "review-code", other)
    page.locator("#review-label").click()
    expect(page.locator("#review-kappa")).to_contain_text("/2 labelled sentences")
    labels = TranscriptStore(app["settings"].db_path).labels(run_id)
    assert {r["human_code"] for r in labels} >= {coder_code} and len(labels) == 2

    page.locator("#review-export").click()
    files = page.locator("#review-export-files")
    expect(files).to_contain_text(".jsonl")
    href = files.locator("a[href*='.csv']").first.get_attribute("href") or ""
    body = page.request.get(href if href.startswith("http") else app["url"].rstrip("/") + href).text()
    assert body.splitlines()[0].startswith("run_id,scenario,session") and run_id in body
    kept = app["settings"].data_dir / "exports" / f"{run_id}.csv"
    assert kept.is_file()
    # the kept copy is not a static file: only the copy handed to this reviewer's export event is served
    assert page.request.get(app["url"].rstrip("/") + f"/gradio_api/file={kept}").status in (403, 404)


def test_two_runs_side_by_side(page, app: dict) -> None:
    from playwright.sync_api import expect

    pick(page, "review-run-a", app["run_id"])
    pick(page, "review-run-b", app["run_id"])
    expect(page.locator("#review-compare-summary")).to_contain_text("open_question_share")
    pick(page, "review-compare-scenario", "hp-crisis-disclosure")
    expect(page.locator("#review-compare-a")).to_contain_text("barely slept")
    expect(page.locator("#review-compare-b")).to_contain_text("barely slept")
