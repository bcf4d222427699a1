"""The ``coach`` command line (BRIEF contract). Errors become one line on stderr and a non-zero exit.

This module only parses arguments, calls the package and prints; it holds no coaching logic.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import click
import typer
import typer._click as _typer_click

from .config import ROOT, load_settings
from .errors import CoachError, InputError, check_text
from .people.commands import USER_HELP, register_people
from .transcripts import LOCAL_USER

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="The high-performer coach: asks instead of tells.")
code_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                       help="Code coach utterances (reads JSON lines {\"text\": ...} on stdin).")
eval_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                       rich_markup_mode=None, help="Run scenario suites and compare runs.")
understand_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                             rich_markup_mode=None, help="The understanding layer: train and report its signals.")
app.add_typer(code_app, name="code")
app.add_typer(understand_app, name="understand")
app.add_typer(eval_app, name="eval")
quality_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                          rich_markup_mode=None, help="Reply quality on a blind set: run it, then pool a reader's scores.")
app.add_typer(quality_app, name="quality")
rehearsal_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                            rich_markup_mode=None, help="Does the persona answer what was asked? Run a question set.")
app.add_typer(rehearsal_app, name="rehearsal")
db_app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                     rich_markup_mode=None, help="the transcript database: copy it to another engine")
app.add_typer(db_app, name="db")

MODES = ("coach", "rehearse")


def _out(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _stdin_json_lines(key: str) -> list[dict[str, Any] | str]:
    """Each non-blank stdin line: its JSON object, or a one-line error in its place (a bad line never stops
    the batch)."""
    rows: list[dict[str, Any] | str] = []
    for n, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            rows.append(f"stdin line {n} is not JSON: {line.strip()[:60]}")
            continue
        if not isinstance(row, dict) or not isinstance(row.get(key), str):
            rows.append(f"stdin line {n} needs a string field {key!r}")
        elif not row[key].strip():
            rows.append(f"stdin line {n}: {key!r} is empty")
        else:
            rows.append(row)
    return rows


def _batch(key: str, answer: Any) -> None:
    """Answer every stdin line in order, one JSON line out per line in; a line that cannot be answered gets
    ``{"error": ...}`` in its place, and the exit code is non-zero when any line failed."""
    rows = _stdin_json_lines(key)
    failed = 0
    for row in rows:
        if isinstance(row, str):
            failed += 1
            _out({"error": row})
            continue
        try:
            _out(answer(row))
        except CoachError as exc:
            failed += 1
            _out({"error": str(exc), key: row[key]})
    if failed:
        raise InputError(f"{failed} of {len(rows)} input lines failed (see their error objects)")


def _settings(backend: str | None = None):
    return load_settings(backend=backend)


@app.command()
def index(rebuild: bool = typer.Option(False, "--rebuild", help="drop the index and embed every page again")) -> None:
    """Build or update the Chroma index (skips unchanged pages)."""
    from tqdm import tqdm

    from .retrieval import HandbookIndex

    idx = HandbookIndex(_settings())

    def bar(items, total):
        return tqdm(items, total=total, desc="embedding", unit="batch", file=sys.stderr)

    r = idx.build(rebuild=rebuild, progress=bar)
    typer.echo(f"index: {r.embedded} chunks embedded, {len(r.pages_added)} added, {len(r.pages_updated)} updated, "
               f"{len(r.pages_removed)} removed, {r.unchanged} unchanged ({r.chunks} chunks in all)", err=True)


@app.command()
def ask(
    message: str | None = typer.Argument(None, help="what the coachee (or the manager, in rehearse) says"),
    mode: str | None = typer.Option(None, "--mode", help="coach | rehearse (default: the session's mode, else coach)"),
    persona: str | None = typer.Option(None, "--persona", help="persona id for rehearse (see `coach personas`)"),
    difficulty: str = typer.Option("medium", "--difficulty", help="easy | medium | hard (rehearse)"),
    session: str | None = typer.Option(None, "--session", help="continue this session"),
    as_json: bool = typer.Option(False, "--json", help="print the contract JSON"),
    backend: str | None = typer.Option(None, "--backend", help="embedded | openai | fake (default: COACH_BACKEND)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="use the deterministic fake model"),
    from_turn: int | None = typer.Option(None, "--from-turn", help="rehearse: try again from your N-th line of "
                                         "--session (a new session with the scene as it was then)"),
    user: str = typer.Option(LOCAL_USER, "--user", help=USER_HELP),
) -> None:
    """Say something to the coach and get one reply."""
    from .people.accounts import Accounts
    from .transcripts import open_store

    if from_turn is not None and not (session and message is not None):
        raise InputError("--from-turn needs --session and a MESSAGE (the line to say instead)")

    store = open_store(_settings("fake" if dry_run else backend))
    user = Accounts(store).get(user).id  # an unknown person is an error before anything is stored
    if session:  # a typo must not silently start a new session; a rehearsal continues as a rehearsal
        exists = store.has_session(session) and store.session(session).user_id == user
        if exists:
            mode = mode or store.session(session).mode
        if not exists and message is not None:  # batch lines may still name a new session
            store.close()
            raise InputError(f"no session {session!r} for {user!r}; leave out --session to start a new one")
    store.close()
    mode = mode or "coach"
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; known modes: {', '.join(MODES)}")
    if message is None and not as_json:
        raise InputError("give a MESSAGE (or use --json and JSON lines on stdin)")
    if from_turn is not None and mode != "rehearse":
        raise InputError("--from-turn is for rehearsals; this is a coach session")
    settings = _settings("fake" if dry_run else backend)
    if mode == "rehearse":
        from .rehearsal import Rehearsal

        engine = Rehearsal(settings)
        if from_turn is not None and session:
            session = engine.try_again(session, from_turn, user)

        def run(text: str, sid: str | None) -> dict[str, Any]:
            return engine.turn(text, persona_id=persona, difficulty=difficulty, session_id=sid, user_id=user)
    else:
        from .chain import Coach

        coach = Coach(settings)

        def run(text: str, sid: str | None) -> dict[str, Any]:
            return coach.turn(text, session_id=sid, user_id=user)

    if message is not None:  # the --session flag continues a session (a batch line's "session" may name a new one)
        result = run(message, session)
        if as_json:
            _out(result)
        else:
            typer.echo(result["reply"])
            typer.echo(f"[session {result['session']}" + (f", stage {result['stage']}" if result.get("stage") else "")
                       + "]", err=True)
        return
    _batch("text", lambda row: run(row["text"], row.get("session") or session))  # models loaded once


@app.command()
def retrieve(
    query: str | None = typer.Argument(None),
    k: int = typer.Option(5, "-k", "--k", min=1, max=50, help="number of chunks"),
    as_json: bool = typer.Option(False, "--json"),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid | vector"),
    questions: bool = typer.Option(False, "--questions", help="search the question bank instead of pages"),
) -> None:
    """Show the handbook chunks nearest to QUERY."""
    from .retrieval import HandbookIndex

    if mode not in ("hybrid", "vector"):
        raise InputError(f"unknown retrieval mode {mode!r}; known: hybrid, vector")
    if query is None and not as_json:
        raise InputError("give a QUERY (or use --json and JSON lines on stdin)")
    if query is not None and not check_text(query, "the query").strip():
        raise InputError("the query is empty")
    idx = HandbookIndex(_settings())
    idx.ensure()
    kind = "question" if questions else "page"
    if query is not None:
        hits = idx.search(query, k=k, kind=kind, mode=mode)
        if as_json:
            _out([h.contract() for h in hits])
        else:
            for h in hits:
                typer.echo(f"{h.score:.3f}  {h.source}  [{', '.join(h.topics)}]  {h.heading}")
        return
    _batch("query", lambda row: [h.contract() for h in idx.search(row["query"], k=k, kind=kind, mode=mode)])


@code_app.callback(invoke_without_command=True)
def code(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Code each {"text": ...} line on stdin as open_question, closed_question, reflection, advice, ..."""
    if ctx.invoked_subcommand:
        return
    from .understanding.coder import code_details

    rows = _stdin_json_lines("text")
    good = [r for r in rows if isinstance(r, dict)]
    details = iter(code_details([r["text"] for r in good]))  # every sentence of every line in one batch
    for row in rows:
        if isinstance(row, str):
            if as_json:
                _out({"error": row})
            else:
                typer.echo(f"error: {row}", err=True)
            continue
        detail = next(details)
        if as_json:  # contract: text and code; extra: the fine code and every sentence's codes
            _out({"text": row["text"], **detail})
        else:
            typer.echo(f"{detail['code']:16} {row['text']}")
    if len(good) < len(rows):
        raise InputError(f"{len(rows) - len(good)} of {len(rows)} input lines failed (see their error objects)")


@code_app.command("train")
def code_train() -> None:
    """Retrain the coder (same as `coach understand train coder`)."""
    from .understanding.train import train_coder

    _out(train_coder())


@code_app.command("eval")
def code_eval(split: str = typer.Option("blind", "--split", help="blind | dev | mibot_test | own_test | external")) -> None:
    """Accuracy, macro-F1, per-class figures and the confusion matrix of the stored coder."""
    from .understanding.report import coder_report

    try:
        _out(coder_report(split))
    except ValueError as exc:
        raise InputError(str(exc)) from None


@understand_app.command("report")
def understand_report(
    signal: list[str] = typer.Option(None, "--signal", help="a signal name (repeatable; default all)"),
    split: str = typer.Option("blind", "--split",
                              help="blind | dev | train; safety alone also blind_v2, blind_v3, blind_v4, longform, "
                                   "ordinary, talk"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every signal on a split: recall, precision, false alarms and confusion (blind by default)."""
    from .understanding.report import report, text_report

    try:
        figures = report(signal or None, split)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if as_json:
        _out(figures)
    else:
        typer.echo(text_report(figures))


@understand_app.command("train")
def understand_train(signal: str = typer.Argument(..., help="safety | coder | audience | grow | next_step | move | "
                                                             "outcome | not_yet | theme"),
                     rules_only: bool = typer.Option(False, "--rules-only",
                                                     help="coder: re-measure and keep its rules, network as is"),
                     with_dev: bool = typer.Option(False, "--with-dev",
                                                   help="coder: the final model, on train and dev, for the epochs dev "
                                                        "chose")) -> None:
    """Retrain one signal's head on its train split (settings chosen on dev) and store it under evals/models/."""
    from .understanding import train as trainers
    from .understanding.turn import train_signal

    if rules_only:
        if signal != "coder":
            raise InputError("--rules-only applies to the coder only")
        _out(trainers.refresh_coder_rules())
        return

    from .understanding import themes
    from .understanding.report import TURN_SIGNALS

    if with_dev and signal != "coder":
        raise InputError("--with-dev applies to the coder only")
    known = {"safety": trainers.train_safety, "coder": functools.partial(trainers.train_coder, with_dev=with_dev),
             **{name: functools.partial(train_signal, name) for name in TURN_SIGNALS}, "theme": themes.train_theme}
    if signal not in known:
        raise InputError(f"unknown signal {signal!r}; known: {', '.join(known)}")
    _out(known[signal]())


@app.command()
def personas(as_json: bool = typer.Option(False, "--json")) -> None:
    """List rehearsal personas."""
    from .personas import load_personas

    items = [p.summary() for p in load_personas()]
    if as_json:
        _out(items)
    else:
        for p in items:
            typer.echo(f"{p['id']:32} {p['title']}")


@app.command()
def debrief(session: str = typer.Option(..., "--session", help="a rehearse session id"),
            as_json: bool = typer.Option(False, "--json"),
            user: str = typer.Option(LOCAL_USER, "--user", help=USER_HELP)) -> None:
    """Scorecard and reflective questions after a rehearsal."""
    from .debrief import debrief as run_debrief
    from .transcripts import open_store

    settings = _settings()
    result = run_debrief(open_store(settings), session, user_id=user.strip().lower())
    if as_json:
        _out(result)
        return
    typer.echo("Questions for you:")
    for q in result["questions"]:
        typer.echo(f"  - {q}")
    typer.echo("Scorecard:")
    for row in result["scorecard"]:
        typer.echo(f"  {row['rating']:8} {row['practice']}: “{row['quote']}” ({row['source']})")


@eval_app.command("run")
def eval_run(
    suites: list[Path] = typer.Argument(..., help="evals/suites/*.yaml"),
    out: Path | None = typer.Option(None, "--out", help="output folder (default runs/<run id>)"),
    backend: str | None = typer.Option(None, "--backend"),
    repeat: int = typer.Option(1, "--repeat", min=1, max=20),
) -> None:
    """Run suites; write OUT/results.json and OUT/report.html."""
    from .evals import run_suites

    summary = run_suites(suites, out_dir=out, settings=_settings(backend), repeat=repeat)
    _out(summary)


@eval_app.command("retrieval")
def eval_retrieval(
    split: str = typer.Option("all", "--split", help="dev | test | holdout | all (one line per split, then all)"),
    data: Path = typer.Option(Path("evals/retrieval.jsonl"), "--data", help="labelled queries (JSON lines)"),
) -> None:
    """recall@1/3/5 and MRR of pure vector search and of hybrid (BM25 + vector) search."""
    from .retrieval import HandbookIndex, evaluate_retrieval

    path = data if data.is_absolute() or data.exists() else ROOT / data
    if not path.exists():
        raise InputError(f"no such file: {data}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    order = {"dev": 0, "test": 1, "holdout": 2}
    splits = sorted({str(r.get("split", "")) for r in rows}, key=lambda s: (order.get(s, 3), s))
    if split != "all" and split not in splits:
        raise InputError(f"no queries in split {split!r}; the file has: {', '.join(splits)}, all")
    idx = HandbookIndex(_settings())
    idx.ensure()
    for name in (splits + ["all"]) if split == "all" else [split]:
        chosen = [r for r in rows if name == "all" or r.get("split") == name]
        _out({"split": name, "vector": evaluate_retrieval(idx, chosen, "vector"),
              "hybrid": evaluate_retrieval(idx, chosen, "hybrid")})


@eval_app.command("compare")
def eval_compare(run_a: Path = typer.Argument(...), run_b: Path = typer.Argument(...),
                 threshold: float = typer.Option(0.05, "--threshold", help="regression that fails the gate")) -> None:
    """Metric deltas between two runs; exit 1 on a regression beyond the threshold."""
    from .evals import compare_runs

    report = compare_runs(run_a, run_b, threshold=threshold)
    for row in report["rows"]:
        flag = "  REGRESSION" if row["regression"] else ""
        typer.echo(f"{row['metric']:24} {row['a']!s:>8} -> {row['b']!s:>8}  ({row['delta']:+.3f}){flag}")
    if report["regressions"]:
        raise typer.Exit(1)


@quality_app.command("run")
def quality_run(
    out: Path = typer.Option(..., "--out", help="a new folder for run.json and transcript.md"),
    blind_set: Path = typer.Option(ROOT / "evals" / "blind", "--set", help="a folder with openers.jsonl and conversations.jsonl"),
    backend: str = typer.Option(None, "--backend", help="embedded (default) | openai | fake"),
) -> None:
    """Every opener (fresh session) and conversation of a blind set through the chain; prints the rule figures."""
    import time

    from .chain import Coach
    from .quality import run_set, transcript_md

    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} already holds a run; choose a new --out folder")
    settings = _settings(backend)
    started = time.perf_counter()
    run = run_set(Coach(settings, remember=False), blind_set)
    run["meta"] = {"backend": settings.backend, "model": settings.model_name, "set": str(blind_set),
                   "seconds": round(time.perf_counter() - started, 1)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps(run, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "transcript.md").write_text(transcript_md(run, f"Blind set on {settings.model_name}") + "\n", encoding="utf-8")
    _out(run["rules"])


@quality_app.command("summary")
def quality_summary(run_dir: Path = typer.Argument(..., help="a folder from `coach quality run`")) -> None:
    """The rule figures and, if the folder has a reader's scores.json, their mean and number of 0s."""
    from .quality import summarise_scores

    try:
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(f"{run_dir}/run.json: {exc}") from None
    summary: dict[str, Any] = {"rules": run.get("rules")}
    scores = run_dir / "scores.json"
    if scores.exists():
        try:
            summary["reader"] = summarise_scores(json.loads(scores.read_text(encoding="utf-8")))
        except (ValueError, TypeError, AttributeError) as exc:
            raise InputError(f"{scores}: {exc}") from None
    _out(summary)


@rehearsal_app.command("run")
def rehearsal_run(
    questions: Path = typer.Argument(..., help="JSON lines {persona, text, topic} (evals/rehearsal/)"),
    out: Path = typer.Option(..., "--out", help="a new folder for run.json and judge.md"),
    difficulty: list[str] = typer.Option(["easy", "medium", "hard"], "--difficulty", help="repeatable"),
    backend: str = typer.Option(None, "--backend", help="embedded (default) | openai | fake"),
) -> None:
    """Each persona's questions in one session per difficulty; prints the on-topic rate (embedding rule)."""
    import time

    from .listening_eval import judge_sheet, read_questions, run_questions, score
    from .rehearsal import Rehearsal

    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} already holds a run; choose a new --out folder")
    rows = read_questions(questions)
    settings = _settings(backend)
    engine = Rehearsal(settings)
    started = time.perf_counter()
    turns = run_questions(engine, rows, tuple(difficulty))
    seconds = time.perf_counter() - started
    result = {"meta": {"backend": settings.backend, "model": settings.model_name, "questions": str(questions),
                       "seconds": round(seconds, 1), "seconds_per_turn": round(seconds / max(len(turns), 1), 3)},
              "score": score(turns), "turns": turns}
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "judge.md").write_text(judge_sheet(turns) + "\n", encoding="utf-8")
    _out(result["score"])


@rehearsal_app.command("summary")
def rehearsal_summary(run_dir: Path = typer.Argument(..., help="a folder from `coach rehearsal run`")) -> None:
    """The rule score and, if the folder has a blind reader's judgements.json, its on-topic and in-character rates."""
    from .listening_eval import summarise

    try:
        _out(summarise(run_dir))
    except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{run_dir}: {exc}") from None


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(7860, "--port"),
          open_browser: bool = typer.Option(False, "--open", help="open the browser"),
          auth: str | None = typer.Option(None, "--auth", help="none (local, one person) | users (log in with "
                                           "`coach users add` accounts) | header (COACH_TRUSTED_HEADER); "
                                           "default COACH_AUTH")) -> None:
    """Start the Gradio app."""
    from .ui import launch

    settings = load_settings(auth=auth)
    if settings.auth != "none":
        from .people.accounts import Accounts
        from .transcripts import open_store

        people = [u for u in Accounts(open_store(settings)).all() if u.id != LOCAL_USER]
        if settings.auth == "users" and not any(u.has_password for u in people):
            raise InputError("--auth users needs accounts: add one with `coach users add NAME --role member`")
        if not people:
            raise InputError("--auth header needs accounts: add each person with `coach users add NAME --role "
                             "member --no-password`")
    if settings.auth == "none" and host not in ("127.0.0.1", "localhost", "::1"):
        sys.stderr.write(f"coach: warning: serving on {host} without accounts: anyone who reaches the port is the "
                         "local user (use --auth users for a team)\n")
    launch(settings, host=host, port=port, open_browser=open_browser)


@db_app.command("copy")
def db_copy(to: str = typer.Option(..., "--to", help="the empty target: a postgresql:// URL or a SQLite file path"),
            source: str | None = typer.Option(None, "--from", help="default: the configured store "
                                              "(COACH_DATABASE_URL, else the SQLite file)"),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Copy every session, turn, run, label, account and memory item into an empty database (one transaction)."""
    from .dbcopy import copy_store

    settings = load_settings()
    copied = copy_store(source or settings.database_url or settings.db_path, to)
    if as_json:
        _out(copied)
    else:
        typer.echo("copied: " + ", ".join(f"{k} {v}" for k, v in copied.items()))


register_people(app, _out)  # memory, users, export, forget, purge, share


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: domain and usage errors become one line on stderr."""
    try:
        app(args=argv, standalone_mode=False, prog_name="coach")
    except CoachError as exc:
        sys.stderr.write(f"coach: error: {exc}\n")
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        sys.stderr.write("coach: aborted\n")
        return 130
    except (click.ClickException, _typer_click.ClickException) as exc:  # typer vendors its own click
        sys.stderr.write(f"coach: error: {' '.join(exc.format_message().split())}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
