"""Run outputs: ``results.json``, a self-contained ``report.html``, and the comparison of two runs.

>>> "<svg" in metric_chart("grounded_turns", 0.5)
True

The report is one HTML file with inline CSS and SVG: no external assets, no JavaScript (``<details>``
folds the transcripts). Every piece of text from a transcript is escaped. This module does not play or
score scenarios (``evals`` does) and does not talk to the transcript store.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from .errors import DataError, NotFoundError
from .scorers import METRICS, MITI, MITI_THRESHOLDS, QUALITY, SCORERS, TARGETS, distinct_first_questions, pooled

LOWER_IS_BETTER = {"unsolicited_advice"}
COLOURS = {"open_question": "#b9e4c0", "closed_question": "#fbe7a1", "reflection": "#bcd8f5", "advice": "#f7b9b9",
           "information": "#dedede", "affirmation": "#e3c8f0", "other": "#f3f3f3"}
CSS = """body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.pass{background:#d8f3dc}.fail{background:#fbd5d5}.na{background:#eee;color:#666}
.charts{display:flex;flex-wrap:wrap;gap:1em}.charts figure{margin:0}figcaption{font-size:13px}
.scenario{border:1px solid #ccc;border-radius:6px;margin:1em 0;padding:.4em .9em}
.scenario.failed{border-color:#d33}.turn{margin:.35em 0;padding:.3em .6em;border-radius:4px}
.coachee{background:#f6f6f6}.coach{background:#fff;border-left:3px solid #888}.meta{color:#666;font-size:12px}
.code{padding:0 .15em;border-radius:3px}.legend span{margin-right:.6em}.failures{color:#a11}"""


# -- results.json -------------------------------------------------------------------------------
def coder_figures() -> tuple[float | None, float | None]:
    """The behaviour coder's accuracy and macro-F1 on held-out real counsellor speech (MIBot sessions the
    coder never saw), or nulls if it cannot say."""
    try:
        from .understanding.report import coder_report

        figures = coder_report("mibot_test")["mibot_test"]
        return figures.get("accuracy"), figures.get("macro_f1")
    except Exception:  # optional here: a failing coder report is a null figure, never a failed run
        return None, None


def assemble(meta: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json from the played scenarios (``rows``: id, suite, reps[session, passed, counts...])."""
    repeat = meta.get("repeat", 1)
    scenarios = []
    for row in rows:
        reps = row["reps"]
        entry = {"id": row["id"], "suite": row["suite"], "passed": all(r["passed"] for r in reps),
                 "failures": sorted({f for r in reps for f in r["failures"]}), "session": reps[0]["session"],
                 "transcript": reps[0]["transcript"], "metrics": pooled([r["counts"] for r in reps])}
        if repeat > 1:  # pass^k: the scenario passes only if every repetition passed
            entry["pass_rate"] = round(sum(r["passed"] for r in reps) / repeat, 4)
            entry["repeats"] = [{k: r[k] for k in ("session", "passed", "failures", "metrics", "transcript")}
                                for r in reps]
        scenarios.append(entry)
    runs = [r for row in rows for r in row["reps"]]
    summary: dict[str, Any] = {**pooled([r["counts"] for r in runs]), "coder_accuracy": None,
                               "coder_macro_f1": None,
                               "pass_rate": round(sum(r["passed"] for r in runs) / max(len(runs), 1), 4)}
    results: dict[str, Any] = {**meta, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "summary": summary, "scenarios": scenarios,
                               "targets": {k: {"op": op, "value": v} for k, (op, v) in TARGETS.items()}}
    distinct, firsts = distinct_first_questions([r["transcript"] for r in runs if "transcript" in r])
    summary["distinct_first_questions"] = round(distinct / firsts, 4) if firsts else None
    if repeat > 1:
        summary["pass^k"] = round(sum(s["passed"] for s in scenarios) / max(len(scenarios), 1), 4)
        per_rep = [pooled([row["reps"][i]["counts"] for row in rows]) for i in range(repeat)]
        results["mean"] = {}
        for m in SCORERS:
            vals = [p[m] for p in per_rep if p[m] is not None]
            results["mean"][m] = round(sum(vals) / len(vals), 4) if vals else None
    return results


def write_outputs(out: Path, meta: dict[str, Any], rows: list[dict[str, Any]], started: float) -> dict[str, Any]:
    """Write ``out/results.json`` and ``out/report.html``; returns the results.

    ``wall_s`` counts from ``started`` (a ``time.perf_counter()`` value) to just before writing.
    """
    results = assemble(meta, rows)
    results["summary"]["coder_accuracy"], results["summary"]["coder_macro_f1"] = coder_figures()
    results["wall_s"] = round(time.perf_counter() - started, 1)
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "report.html").write_text(render(results), encoding="utf-8")
    return results


# -- comparison ---------------------------------------------------------------------------------
def load_results(path: Path | str) -> dict[str, Any]:
    """A run's results.json, given the run folder or the file."""
    path = Path(path)
    path = path / "results.json" if path.is_dir() else path
    if not path.is_file():
        raise NotFoundError(f"no results.json at {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg})") from None


def compare(a: Path | str, b: Path | str, threshold: float = 0.05) -> dict[str, Any]:
    """Metric deltas from run A to run B; a regression is a move the wrong way by more than ``threshold``.

    A metric missing (null) on either side is shown with delta 0 and never counts as a regression.
    """
    sa, sb = load_results(a).get("summary", {}), load_results(b).get("summary", {})
    rows = []
    for metric in (*METRICS, "coder_macro_f1", "pass_rate"):
        va, vb = sa.get(metric), sb.get(metric)
        both = isinstance(va, int | float) and isinstance(vb, int | float)
        delta = round(vb - va, 4) if both else 0.0
        worse = delta if metric in LOWER_IS_BETTER else -delta
        rows.append({"metric": metric, "a": va, "b": vb, "delta": delta,
                     "regression": bool(both and worse > threshold + 1e-9)})
    return {"rows": rows, "regressions": sum(r["regression"] for r in rows), "threshold": threshold}


# -- report.html --------------------------------------------------------------------------------
def meets(metric: str, value: float | None) -> bool | None:
    """Whether a value meets its BRIEF target (None when there is no value or no target)."""
    if value is None or metric not in TARGETS:
        return None
    op, target = TARGETS[metric]
    return value <= target + 1e-9 if op == "<=" else value >= target - 1e-9


def _status(metric: str, value: float | None) -> str:
    return {True: "pass", False: "fail", None: "na"}[meets(metric, value)]


def metric_chart(metric: str, value: float | None, width: int = 240) -> str:
    """An inline SVG bar on a 0..1 scale with the target drawn as a line."""
    op, target = TARGETS.get(metric, ("", None))
    fill = {"pass": "#2f9e44", "fail": "#d9480f", "na": "#adb5bd"}[_status(metric, value)]
    bar = round(width * min(max(value or 0.0, 0.0), 1.0), 1)
    label = "n/a" if value is None else f"{value:.2f}"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 60}" height="44" role="img" '
             f'aria-label="{escape(metric)} {label}">',
             f'<rect x="0" y="8" width="{width}" height="18" fill="#f1f3f5"/>',
             f'<rect x="0" y="8" width="{bar}" height="18" fill="{fill}"/>',
             f'<text x="{width + 6}" y="22" font-size="13">{label}</text>']
    if target is not None:
        x = round(width * target, 1)
        parts += [f'<line x1="{x}" y1="2" x2="{x}" y2="32" stroke="#212529" stroke-width="2" '
                  'stroke-dasharray="4 2"/>',
                  f'<text x="{min(x, width - 40)}" y="42" font-size="10">target {escape(op)} {target:.2f}</text>']
    return "".join(parts) + "</svg>"


def legend() -> str:
    return '<p class="legend">' + "".join(
        f'<span class="code" style="background:{c}">{escape(code.replace("_", " "))}</span>'
        for code, c in COLOURS.items()) + "</p>"


def transcript_html(transcript: list[dict[str, Any]], human: dict[tuple[int, int], str] | None = None) -> str:
    """Turns as HTML; every coach sentence coloured by its code (and its human label, if any)."""
    out = []
    for t in transcript:
        text = escape(t["text"])
        if t["role"] != "coach":
            out.append(f'<div class="turn coachee"><b>Coachee</b> {text}</div>')
            continue
        spans = []
        for i, (sentence, code) in enumerate(t.get("sentences") or [[t["text"], "other"]]):
            label = (human or {}).get((t.get("turn_id") or -1, i))
            note = f" · human: {label}" if label else ""
            mark = f'<sup>[{escape(label)}]</sup>' if label and label != code else ""
            spans.append(f'<span class="code" style="background:{COLOURS.get(code, "#fff")}" '
                         f'title="{escape(code + note)}">{escape(sentence)}</span>{mark}')
        info = [x for x in (t.get("stage"), t.get("route"), t.get("safety") and f"safety: {t['safety']}") if x]
        cites = "; ".join(dict.fromkeys(f"{c.get('title', '')} ({c.get('source', '')})"
                                        for c in t.get("citations") or []))
        out.append(f'<div class="turn coach"><b>Coach</b> {" ".join(spans)}<div class="meta">'
                   f'{escape(" · ".join(info))}{" · cites " + escape(cites) if cites else ""}</div></div>')
    return "\n".join(out)


def summary_table(summary: dict[str, Any]) -> str:
    rows = []
    for metric in (*METRICS, "coder_macro_f1"):
        value = summary.get(metric)
        op, target = TARGETS[metric]
        shown = "n/a" if value is None else f"{value:.3f}"
        verdict = {"pass": "meets target", "fail": "misses target", "na": "no data"}[_status(metric, value)]
        rows.append(f'<tr class="{_status(metric, value)}"><td>{escape(metric)}</td><td>{shown}</td>'
                    f"<td>{escape(op)} {target:.2f}</td><td>{verdict}</td></tr>")
    return ("<table><tr><th>metric</th><th>value</th><th>target</th><th>status</th></tr>"
            + "".join(rows) + "</table>")


def miti_level(metric: str, value: float | None) -> str:
    """Where a MITI summary score stands against the manual's thresholds: good, fair, below fair or n/a.

    >>> miti_level("miti_reflection_to_question", 1.2), miti_level("miti_adherent_share", None)
    ('fair', 'n/a')
    """
    if value is None:
        return "n/a"
    fair, good = MITI_THRESHOLDS[metric]
    return "good" if value >= good - 1e-9 else "fair" if value >= fair - 1e-9 else "below fair"


def miti_table(summary: dict[str, Any]) -> str:
    """MITI 4.2 summary scores beside the manual's fair and good thresholds."""
    rows = []
    for metric in MITI:
        value = summary.get(metric)
        fair, good = MITI_THRESHOLDS[metric]
        level = miti_level(metric, value)
        shown = "n/a" if value is None else f"{value:.2f}"
        rows.append(f'<tr class="{"pass" if level in ("good", "fair") else "na" if value is None else "fail"}">'
                    f"<td>{escape(metric)}</td><td>{shown}</td><td>{fair:.2f}</td><td>{good:.2f}</td>"
                    f"<td>{level}</td></tr>")
    return ("<table><tr><th>MITI summary score</th><th>value</th><th>fair</th><th>good</th><th>level</th></tr>"
            + "".join(rows) + "</table>")


def quality_table(summary: dict[str, Any]) -> str:
    """What a reader would notice that rules can see: broken replies, wrong audience, repeats, sameness."""
    notes = {"broken_replies": "coach turns with a garbled sentence (target 0)",
             "audience_mismatch": "coach turns addressed to the wrong audience (target 0)",
             "repeated_questions": "questions asked twice in a session (target 0)",
             "distinct_first_questions": "distinct first questions / sessions (higher is better)"}
    rows = []
    for metric in (*QUALITY, "distinct_first_questions"):
        value = summary.get(metric)
        shown = "n/a" if value is None else f"{value:.3f}"
        good = value is None or (value >= 0.9 if metric == "distinct_first_questions" else value == 0)
        rows.append(f'<tr class="{"na" if value is None else "pass" if good else "fail"}"><td>{escape(metric)}</td>'
                    f"<td>{shown}</td><td>{escape(notes[metric])}</td></tr>")
    return "<table><tr><th>reply quality</th><th>value</th><th>meaning</th></tr>" + "".join(rows) + "</table>"


def _scenario_html(s: dict[str, Any]) -> str:
    state = "passed" if s["passed"] else "failed"
    fails = "".join(f"<li>{escape(f)}</li>" for f in s["failures"])
    figures = ", ".join(f"{escape(k)} {v:.2f}" for k, v in s["metrics"].items() if v is not None)
    extra = f" · passed {s['pass_rate']:.0%} of repeats" if "pass_rate" in s else ""
    return (f'<section class="scenario {state}" id="s-{escape(s["id"])}"><details{"" if s["passed"] else " open"}>'
            f'<summary><b>{"✓" if s["passed"] else "✗"} {escape(s["id"])}</b> <span class="meta">'
            f"{escape(s['suite'])} · {state}{extra}</span></summary>"
            f'<ul class="failures">{fails}</ul><p class="meta">{figures}</p>'
            f"{transcript_html(s['transcript'])}</details></section>")


def render(results: dict[str, Any]) -> str:
    """The whole report as one HTML string."""
    summary, scenarios = results.get("summary", {}), results.get("scenarios", [])
    ordered = sorted(scenarios, key=lambda s: s["passed"])  # failing first, suite order kept within
    passed = sum(s["passed"] for s in scenarios)
    head = (f"{escape(str(results.get('backend')))} · {escape(str(results.get('model')))} · suites "
            f"{escape(', '.join(results.get('suites', [])))} · {passed}/{len(scenarios)} scenarios passed"
            f" · {escape(str(results.get('wall_s', '?')))} s")
    charts = "".join(f"<figure>{metric_chart(m, summary.get(m))}<figcaption>{escape(m)}</figcaption></figure>"
                     for m in (*METRICS, "coder_macro_f1"))
    title = escape(f"Eval run {results.get('run_id', '')}")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{CSS}</style></head><body><h1>{title}</h1><p>{head}</p>"
            f"<h2>Summary against targets</h2>{summary_table(summary)}"
            f"<h2>MITI 4.2 summary scores</h2>{miti_table(summary)}"
            f"<h2>Reply quality (rules)</h2>{quality_table(summary)}"
            f'<h2>Metrics</h2><div class="charts">{charts}</div>'
            f"<h2>Scenarios</h2>{legend()}{''.join(_scenario_html(s) for s in ordered)}</body></html>\n")


def write_report(results: dict[str, Any], path: Path) -> Path:
    path.write_text(render(results), encoding="utf-8")
    return path
