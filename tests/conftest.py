"""Shared fixtures. Every test runs with its data (transcripts, Chroma, exports) under tmp_path.

The handbook index takes ~15 s to embed, so one index is built per test session in a temporary folder
and shared read-only through ``COACH_CHROMA_PATH``; tests that change an index build their own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import ROOT, Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture(scope="session")
def shared_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Chroma folder holding the full handbook index, built once per test session."""
    from assistant.retrieval import HandbookIndex

    folder = tmp_path_factory.mktemp("index") / "chroma"
    HandbookIndex(Settings(backend="fake", chroma_path=folder, knowledge_dir=ROOT / "knowledge")).build()
    return folder


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_index_dir: Path) -> Path:
    """Point every data path at tmp_path (the index at a private copy of the shared one)."""
    data = tmp_path / "data"
    chroma = data / "chroma"
    shutil.copytree(shared_index_dir, chroma)
    for key in ("COACH_BACKEND", "COACH_MODEL", "COACH_BASE_URL", "COACH_API_KEY", "OPENAI_API_KEY",
                "OPENAI_BASE_URL", "OPENAI_MODEL", "COACH_MODEL_PATH", "COACH_CHROMA_URL", "COACH_DB", "COACH_DATABASE_URL",
                "COACH_EMBEDDINGS", "COACH_KNOWLEDGE_DIR", "COACH_RESOURCES"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("COACH_DATA_DIR", str(data))
    monkeypatch.setenv("COACH_CHROMA_PATH", str(chroma))
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return data


@pytest.fixture
def settings(isolated: Path) -> Settings:
    return Settings(backend="fake")


@pytest.fixture
def store(settings: Settings):
    """The transcript store of ``settings`` (under tmp_path)."""
    from assistant.transcripts import TranscriptStore

    return TranscriptStore(settings.db_path)


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """A real PostgreSQL server (Debian's package) for this test session, on loopback in a temporary folder.

    Skipped only where its programs are not installed and CI is not set; under CI=true a missing or broken
    PostgreSQL fails the tests that need it (``scripts/setup.sh --test`` installs it)."""
    from services import postgres

    try:
        with postgres() as server:
            yield server
    except FileNotFoundError as exc:
        if on_ci():
            pytest.fail(f"{exc}: run `make test` (scripts/setup.sh --test installs postgresql)")
        pytest.skip(f"{exc} (installed by `make test`; required when CI=true)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest, settings: Settings) -> Iterator[str]:
    """Where a store lives, once per engine: the SQLite file of ``settings``, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(settings.db_path)
        return
    server = request.getfixturevalue("pg_server")
    url = server.database()
    try:
        yield url
    finally:
        server.drop(url)


@pytest.fixture
def any_store(store_target: str):
    """A transcript store on each engine in turn (the store tests run on SQLite and on PostgreSQL)."""
    from assistant.transcripts import TranscriptStore

    store = TranscriptStore(store_target)
    yield store
    store.close()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian's chromium is missing: run `make test` (scripts/setup.sh --test installs it)")
    return path


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
