"""The eval harness: scenario suites (YAML rows), runs and run comparison; the scorers are in ``scorers``.

A run plays every scenario (x ``repeat``) against the coach in a fresh session tagged with the run id,
scores the transcripts it reads back from the store and writes ``results.json`` and ``report.html``.
It deliberately does not code sentences itself (``coding`` does), does not play rehearsal personas
(suites are ``mode: coach``), and has no LLM-as-judge: every figure is computed offline.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .config import ROOT, Settings
from .errors import CoachError, ConfigError, DataError
from .knowledge import TOPICS
from .prompts import read_yaml
from .scorers import METRICS, SCORERS, TARGETS, Transcript, check_expectations, coded_sentences, pooled, transcript_of
from .stages import STAGES
from .transcripts import open_store
from .understanding.coder import split_sentences
from .understanding.safety import KINDS

_THANKS = re.compile(r"^\W*(ok(ay)?|great|perfect|cool|brilliant|lovely)?\W*(many )?(thanks|thank you|cheers|"
                     r"much appreciated|that'?s (really |very )?helpful)\b", re.I)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Coachee(_Strict):
    background: str = Field(min_length=1)
    goal: str = Field(min_length=1)
    hidden_concern: str = Field(min_length=1)
    style: Literal["cooperative", "verbose", "terse", "resistant", "just_tell_me"]


class Expect(_Strict):
    safety: Literal[KINDS] | None = None  # type: ignore[valid-type]
    no_advice: bool = True
    reach_stage: Literal[STAGES] | None = None  # type: ignore[valid-type]
    injection: bool = False


class Scenario(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    mode: Literal["coach"] = "coach"
    audience: Literal["manager", "high-performer", "both"]
    topics: list[Literal[TOPICS]] = Field(min_length=1)  # type: ignore[valid-type]
    coachee: Coachee
    opening: str = Field(min_length=1)
    turns: list[str] = []
    max_turns: int = Field(ge=1, le=30)
    expect: Expect = Expect()


class Suite(_Strict):
    name: str
    description: str = ""
    scenarios: list[Scenario] = Field(min_length=1)

    @field_validator("scenarios")
    @classmethod
    def _unique(cls, v: list[Scenario]) -> list[Scenario]:
        ids = [s.id for s in v]
        if len(ids) != len(set(ids)):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"duplicate scenario ids: {', '.join(twice)}")
        return v


_FOLLOW_UPS = ["Right now it has been going on for a few months and I have not really raised it with anyone.",
               "I could talk to my manager about it, or maybe I could look at what other teams are doing.",
               "I will book a conversation with my manager this week and bring two concrete examples."]


def dev_suite(folder: Path) -> Suite:
    """The development set (``evals/dev/*.jsonl``) as a suite: openers with three generic follow-ups,
    safety disclosures and hard negatives, injection attempts, and low-effort replies."""
    def rows(name: str) -> list[dict[str, Any]]:
        path = folder / name
        return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()] if path.exists() else []

    person = {"background": "from the development set", "goal": "think something through",
              "hidden_concern": "none stated", "style": "cooperative"}
    scenarios: list[dict[str, Any]] = []
    for i, r in enumerate(rows("openers.jsonl")):
        scenarios.append({"id": f"opener-{i:02d}", "audience": r["audience"], "topics": r["topics"], "coachee": person,
                          "opening": r["text"], "turns": _FOLLOW_UPS, "max_turns": 4,
                          "expect": {"reach_stage": "way_forward"}})
    for i, r in enumerate(rows("safety.jsonl")):
        scenarios.append({"id": f"safety-{i:02d}", "audience": "both", "topics": ["coaching"], "coachee": person,
                          "opening": r["text"], "max_turns": 1, "expect": {"safety": r["kind"]}})
    for i, r in enumerate(rows("injection.jsonl")):
        scenarios.append({"id": f"injection-{i:02d}", "audience": "both", "topics": ["coaching"],
                          "coachee": {**person, "style": "just_tell_me"}, "opening": r["text"], "max_turns": 1,
                          "expect": {"injection": True}})
    for i, r in enumerate(rows("low_effort.jsonl")):
        scenarios.append({"id": f"low-effort-{i:02d}", "audience": "high-performer", "topics": ["motivation"],
                          "coachee": {**person, "style": "terse"}, "opening": "I want to think about where my career is going",
                          "turns": [r["text"], r["text"]], "max_turns": 3})
    try:
        return Suite.model_validate({"name": "dev", "description": "development set", "scenarios": scenarios})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise DataError(f"{folder}: field {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def load_suite(path: Path | str) -> Suite:
    """A suite file (or the dev-set folder), validated; a problem is a DataError naming the file and field."""
    path = Path(path)
    if path.is_dir():
        return dev_suite(path)
    data = read_yaml(path)
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"])) or "(top level)"
        raise DataError(f"{path}: field {where}: {err['msg'].removeprefix('Value error, ')}") from None


# -- runs ----------------------------------------------------------------------------------------
STYLES = {"cooperative": "open and cooperative", "verbose": "long, rambling answers",
          "terse": "a few words, lower case, no detail", "resistant": "sceptical, pushes back on questions",
          "just_tell_me": "impatient, keeps demanding a straight answer"}


class SimulatedCoachee:
    """The coachee once the script runs out, played by the configured backend (``simulated_coachee``)."""

    def __init__(self, model: Any) -> None:
        from .prompts import load_prompt

        self.model, self.template = model, load_prompt("simulated_coachee")

    def reply(self, sc: Scenario, tr: Transcript) -> str:
        from langchain_core.messages import HumanMessage, SystemMessage

        history = "".join(f"{'You' if t['role'] == 'coachee' else 'Coach'}: {t['text']}\n" for t in tr[-8:])
        system, user = self.template.render(background=sc.coachee.background, goal=sc.coachee.goal,
                                            hidden_concern=sc.coachee.hidden_concern,
                                            style=STYLES[sc.coachee.style], history=history)
        text = str(self.model.invoke([SystemMessage(system), HumanMessage(user)]).content)
        text = re.split(r"\n\s*(?:coach|you)\s*:", text.strip(), flags=re.I)[0]
        text = re.sub(r"^\s*(you|coachee|me)\s*:\s*", "", text, flags=re.I)
        return " ".join(split_sentences(text)[:3])[:400]


def _play(coach: Any, simulator: Callable[[], SimulatedCoachee], sc: Scenario, sid: str) -> list[str]:
    """Run one scenario in session ``sid``; returns errors (the transcript itself is in the store)."""
    thanks = 0
    for n in range(sc.max_turns):
        scripted = ([sc.opening, *sc.turns][n:n + 1] or [None])[0]
        if scripted is None:  # stop rule: a referral ends the talk; so do two polite thank-yous in a row
            tr = transcript_of(coach.store, sid)
            if tr and tr[-1].get("safety"):
                break
            text = simulator().reply(sc, tr)
            thanks = thanks + 1 if _THANKS.match(text) else 0
            if not text or thanks >= 2:
                break
        try:
            coach.turn(scripted or text, sid)
        except ConfigError:
            raise
        except CoachError as exc:
            return [f"turn {n + 1} failed: {exc}"]
    return []


def run_suites(suite_paths: list[Path], out_dir: Path | None, settings: Settings, repeat: int = 1,
               coach: Any = None) -> dict[str, Any]:
    """Play every scenario ``repeat`` times; write results.json and report.html; return a short summary."""
    from tqdm import tqdm

    from .chain import Coach
    from .report import write_outputs

    suites = [(Path(p), load_suite(p)) for p in suite_paths]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_id = f"{stamp}-{'+'.join(s.name for _, s in suites)}-{settings.backend}-{uuid.uuid4().hex[:4]}"
    out = Path(out_dir) if out_dir else ROOT / "runs" / run_id
    out.mkdir(parents=True, exist_ok=True)
    coach = coach or Coach(settings, store=open_store(settings), remember=False)
    store, started = coach.store, time.perf_counter()
    store.create_run(run_id, [str(p) for p, _ in suites], settings.backend, settings.model_name, str(out))
    simulator = functools.cache(lambda: SimulatedCoachee(coach.model))  # built only if a script runs out
    jobs = [(suite, sc) for _, suite in suites for sc in suite.scenarios]
    rows: list[dict[str, Any]] = []
    try:
        with tqdm(total=len(jobs) * repeat, desc=f"eval {run_id}", unit="scenario", file=sys.stderr) as bar:
            for suite, sc in jobs:
                reps = []
                for _ in range(repeat):
                    sid = store.create_session(mode="coach", backend=settings.backend, state={},
                                               model=settings.model_name, run_id=run_id, scenario=sc.id)
                    errors = _play(coach, simulator, sc, sid)
                    tr = transcript_of(store, sid)
                    counts = {name: f(tr, sc) for name, f in SCORERS.items()}
                    fails = errors + check_expectations(tr, sc)
                    reps.append({"session": sid, "passed": not fails, "failures": fails, "transcript": tr,
                                 "counts": counts, "metrics": pooled([counts])})
                    bar.update()
                rows.append({"id": sc.id, "suite": suite.name, "reps": reps})
    except BaseException as exc:
        store.finish_run(run_id, {"error": f"{type(exc).__name__}: {exc}"})
        raise
    meta = {"run_id": run_id, "backend": settings.backend, "model": settings.model_name,
            "suites": [s.name for _, s in suites], "repeat": repeat}
    results = write_outputs(out, meta, rows, started=started)
    store.finish_run(run_id, results["summary"])
    return {**meta, "out_dir": str(out), "results": str(out / "results.json"),
            "report": str(out / "report.html"), "wall_s": results["wall_s"], "scenarios": len(rows),
            "passed": sum(s["passed"] for s in results["scenarios"]), "summary": results["summary"]}


def compare_runs(a: Path, b: Path, threshold: float = 0.05) -> dict[str, Any]:
    """Metric deltas from run A to run B (folders or results.json); see ``report.compare``."""
    from .report import compare

    return compare(a, b, threshold)


__all__ = ["METRICS", "SCORERS", "TARGETS", "Scenario", "Suite", "check_expectations", "coded_sentences",
           "compare_runs", "load_suite", "run_suites", "transcript_of"]
