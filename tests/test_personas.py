"""Persona data files: every file loads, a broken one names its file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from assistant.config import ROOT
from assistant.errors import DataError, NotFoundError
from assistant.personas import (
    BANDS,
    DIFFICULTIES,
    PERSONAS_DIR,
    PRACTICES,
    get_persona,
    load_personas,
    parse_persona,
)

FILES = sorted(PERSONAS_DIR.glob("*.yaml"))
SAMPLE = PERSONAS_DIR / "stay-interview-outside-offer.yaml"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_persona_file_loads(path: Path) -> None:
    persona = parse_persona(path)
    assert persona.id == path.stem
    assert all(getattr(persona.lines, band) for band in BANDS)
    assert persona.start_tension("easy") < persona.start_tension("hard")
    assert persona.hidden_concern not in persona.card()  # the card never gives the secret away


def test_at_least_eight_scenarios_with_summaries() -> None:
    personas = load_personas()
    assert len(personas) >= 8
    for p in personas:
        assert p.summary() == {"id": p.id, "title": p.title, "scenario": p.scenario,
                               "difficulties": list(DIFFICULTIES)}


def test_every_practice_cites_an_existing_handbook_page() -> None:
    for practice, source in PRACTICES.items():
        assert (ROOT / source).is_file(), (practice, source)
    used = {practice for p in load_personas() for practice in p.practices}
    assert used <= set(PRACTICES)


def test_unknown_persona_lists_the_known_ones() -> None:
    with pytest.raises(NotFoundError) as err:
        get_persona("no-such-person")
    assert "stay-interview-outside-offer" in str(err.value)


def _broken(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / SAMPLE.name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(("field", "change"), [
    ("hidden_concern", lambda d: d.pop("hidden_concern")),
    ("topics", lambda d: d.update(topics=["office-politics"])),
    ("practices", lambda d: d.update(practices=["shouted loudly"])),
    ("lines.reveal", lambda d: d["lines"].update(reveal=[])),
    ("initial_tension", lambda d: d.update(initial_tension={"easy": 6, "medium": 5, "hard": 7})),
    ("initial_tension.hard", lambda d: d.update(initial_tension={"easy": 3, "medium": 5, "hard": 12})),
    ("mood", lambda d: d.update(mood="grumpy")),
    ("id", lambda d: d.update(id="someone-else")),
])
def test_broken_persona_file_names_file_and_field(tmp_path: Path, field: str, change) -> None:
    path = _broken(tmp_path, change)
    with pytest.raises(DataError) as err:
        load_personas(tmp_path)
    message = str(err.value)
    assert str(path) in message
    assert f"field {field}" in message


def test_not_yaml_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(DataError, match="bad.yaml"):
        load_personas(tmp_path)


def test_the_brief_names_who_and_what_the_manager_knows_but_never_the_hidden_concern() -> None:
    from assistant.personas import load_personas, persona_brief

    for p in load_personas():
        brief = persona_brief(p)
        assert p.name in brief and p.role in brief and p.background in brief
        assert p.hidden_concern not in brief and p.wants not in brief
        assert not any(line in brief for band in ("reveal", "agree") for line in p.lines.said(band))
