"""The Review tab for L&D: runs and their figures, coded transcripts, human labels, agreement, exports.

>>> cohen_kappa(["advice", "advice", "reflection", "reflection"], ["advice", "reflection", "reflection", "reflection"])
0.5

``build_review_tab(settings)`` is called inside an open ``gr.Tab`` and wires its own events; everything
else here is a plain function of the transcript store so it can be tested without a browser. It does
not run suites or code sentences (``evals`` and ``coding`` do) and never deletes or edits transcripts:
a human label is stored beside the coder's code, not instead of it.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import gradio as gr

from .config import Settings
from .errors import NotFoundError
from .people.access import Gate, Identity, visible_to_reviewers
from .people.redact import redact_session
from .report import COLOURS, meets, miti_level, transcript_html
from .scorers import METRICS, MITI, transcript_of
from .transcripts import TranscriptStore, open_store
from .understanding.coder import CODES

SHORT = {"open_question_share": "open Q", "one_question_per_turn": "1 Q/turn", "unsolicited_advice": "advice",
         "reflection_share": "reflect", "coachee_word_share": "coachee words", "grounded_turns": "grounded",
         "safety_routing": "safety", "injection_resistance": "injection", "coder_accuracy": "coder acc",
         "miti_reflection_to_question": "MITI R:Q (fair 1, good 2)",
         "miti_complex_reflection_share": "MITI %CR (fair .40, good .50)",
         "miti_adherent_share": "MITI %MIA (fair .90, good 1)"}
CSS = ("<style>.review-tr .turn{margin:.3em 0;padding:.3em .6em;border-radius:4px;color:#222}"
       ".review-tr .coachee{background:#f3f3f3}.review-tr .coach{background:#fff;border-left:3px solid #888}"
       ".review-tr .code{padding:0 .15em;border-radius:3px;color:#222}.review-tr .meta{color:#666;font-size:12px}"
       ".review-tr sup{color:#b00}</style>")


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa between two raters' labels of the same items (None with no items).

    Perfect agreement on a single category (chance agreement 1) counts as 1.0.
    """
    if len(a) != len(b):
        raise ValueError("both raters must label the same items")
    n = len(a)
    if not n:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    chance = sum(ca[k] * cb[k] for k in ca) / (n * n)
    return 1.0 if chance >= 1 else round((observed - chance) / (1 - chance), 4)


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)


def runs_table(store: TranscriptStore) -> list[list[str]]:
    """One row per run: id, date, backend, model, suites, every BRIEF metric, then the MITI summary scores."""
    return [[r["id"], r["created_at"][:16].replace("T", " "), r["backend"], r["model"],
             ", ".join(Path(s).stem for s in r["suites"])] + [_fmt(r["summary"].get(m)) for m in (*METRICS, *MITI)]
            for r in store.runs()]


def run_choices(store: TranscriptStore) -> list[str]:
    return [r["id"] for r in store.runs()]


SHARED = "shared"  # the Run dropdown's entry for sessions members chose to share


def session_choices(store: TranscriptStore, run_id: str | None) -> list[tuple[str, str]]:
    """(label, session id) for every session of a run, by scenario (or every shared session)."""
    if not run_id:
        return []
    if run_id == SHARED:
        rows = store.db.execute("SELECT id FROM sessions WHERE shared=1 AND run_id IS NULL ORDER BY created_at DESC")
        return [(f"{s.mode} · {s.created_at[:16].replace('T', ' ')} · {s.id}", s.id)
                for s in (store.session(r[0]) for r in rows.fetchall())]
    found = sorted(store.sessions(run_id=run_id, limit=10_000), key=lambda s: (s.scenario or "", s.created_at))
    return [(f"{s.scenario or '(no scenario)'} · {s.id}", s.id) for s in found]


def reviewable(store: TranscriptStore, sid: str) -> list[dict[str, Any]]:
    """A session's transcript as a reviewer may read it: a member's shared session with the names of people
    talked about redacted (``people.redact``); an eval run's as it is."""
    entries = transcript_of(store, sid)
    if store.session(sid).run_id is not None:
        return entries
    # one pass over the whole session: a name found in any turn is redacted in every turn, in any case
    texts = [e["text"] for e in entries] + [x for e in entries for x, _ in e.get("sentences", [])]
    clean = iter(redact_session(texts))
    out = [{**e, "text": next(clean)} for e in entries]
    for e in out:
        if "sentences" in e:
            e["sentences"] = [[next(clean), c] for _, c in e["sentences"]]
    return out


def human_labels(store: TranscriptStore, run_id: str | None = None) -> dict[tuple[int, int], str]:
    return {(r["turn_id"], r["sentence"]): r["human_code"] for r in store.labels(run_id)}


def sentence_choices(store: TranscriptStore, sid: str | None) -> list[tuple[str, str]]:
    """(label, "turn_id:sentence") for every coach sentence of a session."""
    if not sid or not visible_to_reviewers(store, sid):
        return []
    out = []
    for n, t in enumerate((t for t in reviewable(store, sid) if t["role"] == "coach"), start=1):
        for i, (sentence, code) in enumerate(t["sentences"]):
            out.append((f"turn {n}.{i + 1} [{code}] {sentence[:70]}", f"{t['turn_id']}:{i}"))
    return out


def show_session(store: TranscriptStore, sid: str | None) -> str:
    if not sid:
        return "<p>Pick a run and a session.</p>"
    if not visible_to_reviewers(store, sid):  # a private session reads exactly like an unknown one
        return "<p>No such session among eval runs and shared sessions.</p>"
    legend = " ".join(f'<span class="code" style="background:{c}">{k.replace("_", " ")}</span>'
                      for k, c in COLOURS.items())
    return (f'{CSS}<div class="review-tr"><p>{legend}</p>'
            f"{transcript_html(reviewable(store, sid), human_labels(store))}</div>")


def label_sentence(store: TranscriptStore, key: str, human_code: str, labeller: str | None = "human") -> None:
    """Store a human code for one coach sentence (``key`` is "turn_id:sentence"), beside the coder's."""
    if human_code not in CODES:
        raise ValueError(f"unknown code {human_code!r}; known: {', '.join(CODES)}")
    turn_id, idx = (int(x) for x in key.split(":"))
    if not visible_to_reviewers(store, store.turn(turn_id).session_id):
        raise NotFoundError(f"no turn {turn_id}")
    entry = next(t for t in reviewable(store, store.turn(turn_id).session_id) if t.get("turn_id") == turn_id)
    sentence, coder = entry["sentences"][idx]
    store.set_label(turn_id, idx, sentence, coder, human_code, labeller or "human")


def agreement(store: TranscriptStore, run_id: str | None) -> str:
    """Markdown: Cohen's kappa and raw agreement between coder and human labels for a run."""
    if not run_id:
        return "Pick a run to see coder–human agreement."
    rows = [r for r in store.labels(run_id) if r["coder_code"]]
    kappa = cohen_kappa([r["coder_code"] for r in rows], [r["human_code"] for r in rows])
    if kappa is None:
        return f"**Cohen's kappa:** — (no human labels yet for `{run_id}`)"
    same = sum(r["coder_code"] == r["human_code"] for r in rows)
    return f"**Cohen's kappa:** {kappa:.2f} · agreement {same}/{len(rows)} labelled sentences · run `{run_id}`"


def export_run(store: TranscriptStore, run_id: str, folder: Path) -> list[str]:
    """Write ``<run>.csv`` (one row per sentence) and ``<run>.jsonl`` (one line per turn); returns paths."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = human_labels(store, run_id)
    csv_path, jsonl_path = folder / f"{run_id}.csv", folder / f"{run_id}.jsonl"
    with csv_path.open("w", newline="", encoding="utf-8") as fc, jsonl_path.open("w", encoding="utf-8") as fj:
        writer = csv.writer(fc)
        writer.writerow(["run_id", "scenario", "session", "turn", "role", "sentence", "text", "coder_code",
                         "human_code", "stage", "safety"])
        for s in sorted(store.sessions(run_id=run_id, limit=10_000), key=lambda s: (s.scenario or "", s.created_at)):
            for n, t in enumerate(transcript_of(store, s.id)):
                parts = t.get("sentences") or [[t["text"], ""]]
                human = [labels.get((t["turn_id"], i)) for i in range(len(parts))]
                for i, (sentence, code) in enumerate(parts):
                    writer.writerow([run_id, s.scenario, s.id, n, t["role"], i, sentence, code, human[i] or "",
                                     t["stage"] or "", t["safety"] or ""])
                fj.write(json.dumps({"run_id": run_id, "scenario": s.scenario, "session": s.id, "turn": n, **t,
                                     "human_codes": human if t["role"] == "coach" else []}, ensure_ascii=False) + "\n")
    return [str(csv_path), str(jsonl_path)]


def compare_table(store: TranscriptStore, run_a: str | None, run_b: str | None) -> list[list[str]]:
    runs = {r["id"]: r["summary"] for r in store.runs()}
    sa, sb = runs.get(run_a or "", {}), runs.get(run_b or "", {})
    rows = []
    for m in (*METRICS, *MITI, "pass_rate"):
        a, b = sa.get(m), sb.get(m)
        delta = f"{b - a:+.2f}" if isinstance(a, int | float) and isinstance(b, int | float) else "—"
        verdict = {True: "meets", False: "misses", None: ""}
        # MITI scores are read against the manual's fair/good thresholds, not a pass/fail target
        rows.append([m, _fmt(a), _fmt(b), delta, miti_level(m, b) if m in MITI else verdict[meets(m, b)]])
    return rows


def scenario_session(store: TranscriptStore, run_id: str | None, scenario: str | None) -> str | None:
    found = [s for s in store.sessions(run_id=run_id, limit=10_000) if s.scenario == scenario] if run_id else []
    return min(found, key=lambda s: s.created_at).id if found else None


def build_review_tab(settings: Settings, gate: Gate | None = None) -> None:
    """Create the Review tab's components and events inside the caller's open ``gr.Tab``; every event is
    checked for the reviewer role on the server (``gate``; local mode when None)."""
    from gradio.context import Context

    store = open_store(settings)
    gate = gate or Gate(settings, store)
    team = settings.auth != "none"
    exports = Path(settings.data_dir) / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    # exports are not static files: a reviewer gets copies through the export event (Gradio's cache, an
    # unguessable path per request), so nobody else can fetch DATA_DIR/exports/* by name
    headers = ["run", "created", "backend", "model", "suites", *[SHORT[m] for m in (*METRICS, *MITI)]]
    codes = list(CODES)

    gr.Markdown("### Runs\nEvery eval run, newest first, with its figures.")
    refresh = gr.Button("Refresh runs", size="sm", elem_id="review-refresh")
    # nothing is rendered into the page itself: the figures arrive through the (checked) refresh
    table = gr.Dataframe(None, headers=headers, interactive=False, wrap=True, elem_id="review-runs")
    with gr.Row():
        run = gr.Dropdown([], label="Run", elem_id="review-run", scale=2, value=None)
        session = gr.Dropdown([], label="Scenario · session", elem_id="review-session", scale=2, value=None)
    kappa = gr.Markdown(agreement(store, None), elem_id="review-kappa")
    transcript = gr.HTML("<p>Pick a run and a session.</p>", elem_id="review-transcript")
    with gr.Row():
        sentence = gr.Dropdown([], label="Coach sentence", elem_id="review-sentence", scale=4, value=None)
        code = gr.Dropdown(codes, value=codes[0], label="Human code", elem_id="review-code", scale=1)
        save = gr.Button("Save label", variant="primary", elem_id="review-label", scale=1)
    status = gr.Markdown(elem_id="review-status")
    with gr.Row():
        export = gr.Button("Export run (CSV + JSONL)", elem_id="review-export")
        files = gr.File(label="Exports", file_count="multiple", interactive=False, elem_id="review-export-files")
    gr.Markdown("### Two runs side by side")
    with gr.Row():
        run_a = gr.Dropdown([], label="Run A", elem_id="review-run-a", value=None)
        run_b = gr.Dropdown([], label="Run B", elem_id="review-run-b", value=None)
        scenario = gr.Dropdown([], label="Scenario", elem_id="review-compare-scenario", value=None)
    compared = gr.Dataframe(headers=["metric", "A", "B", "B − A", "B vs target (MITI: level)"], interactive=False,
                            elem_id="review-compare-summary")
    with gr.Row():
        left = gr.HTML(elem_id="review-compare-a")
        right = gr.HTML(elem_id="review-compare-b")

    def on_refresh(who: Identity, current: str | None) -> tuple[Any, ...]:
        ids = run_choices(store)
        keep = current if current in ids else (ids[0] if ids else None)  # the newest run by default
        shared = [("Sessions members shared", SHARED)]
        return (runs_table(store) or None, gr.Dropdown(choices=[*ids, *shared], value=keep), gr.Dropdown(choices=ids),
                gr.Dropdown(choices=ids))

    def on_run(who: Identity, run_id: str | None) -> tuple[Any, ...]:
        return (gr.Dropdown(choices=session_choices(store, run_id), value=None),
                agreement(store, run_id if run_id != SHARED else None))

    def on_session(who: Identity, sid: str | None) -> tuple[Any, ...]:
        return show_session(store, sid), gr.Dropdown(choices=sentence_choices(store, sid), value=None)

    def on_save(who: Identity, run_id: str | None, sid: str | None, key: str | None, human: str) -> tuple[Any, ...]:
        if not key:
            return gr.update(), gr.update(), "Pick a coach sentence first."
        try:
            label_sentence(store, key, human, labeller=who.user_id if team else "human")
        except (NotFoundError, ValueError) as exc:
            return gr.update(), gr.update(), f"⚠️ {exc}"
        return show_session(store, sid), agreement(store, run_id), f"Saved **{human}** for sentence `{key}`."

    def on_export(who: Identity, run_id: str | None) -> tuple[Any, ...]:
        if not run_id or run_id not in run_choices(store):
            return None, "Pick a run to export."
        paths = export_run(store, run_id, exports)
        handed = Path(tempfile.mkdtemp(prefix="coach-export-"))
        copies = [str(shutil.copy(p, handed / Path(p).name)) for p in paths]
        return copies, f"Exported `{Path(paths[0]).name}` and `{Path(paths[1]).name}`."

    def on_pair(who: Identity, a: str | None, b: str | None) -> tuple[Any, ...]:
        def ids(r: str | None) -> set[str]:
            return {s.scenario for s in store.sessions(run_id=r, limit=10_000) if s.scenario} if r else set()

        common = sorted(ids(a) & ids(b)) if a and b else sorted(ids(a) | ids(b))
        return compare_table(store, a, b), gr.Dropdown(choices=common, value=None)

    def on_scenario(who: Identity, a: str | None, b: str | None, sc: str | None) -> tuple[str, str]:
        return (show_session(store, scenario_session(store, a, sc)),
                show_session(store, scenario_session(store, b, sc)))

    def reviewer(fn: Any) -> Any:
        return gate.guard("reviewer", fn)

    refresh_outs = [table, run, run_a, run_b]
    refresh.click(reviewer(on_refresh), [run], refresh_outs)
    # the tab's select refreshes; so does the page load in local mode (in team mode a member's page load must
    # not call a reviewer endpoint)
    for owner in (Context.block, None if team else Context.root_block):
        listener = getattr(owner, "select", None) if owner is Context.block else getattr(owner, "load", None)
        if callable(listener):
            listener(reviewer(on_refresh), [run], refresh_outs)
    run.change(reviewer(on_run), [run], [session, kappa])
    session.change(reviewer(on_session), [session], [transcript, sentence])
    save.click(reviewer(on_save), [run, session, sentence, code], [transcript, kappa, status])
    export.click(reviewer(on_export), [run], [files, status])
    run_a.change(reviewer(on_pair), [run_a, run_b], [compared, scenario])
    run_b.change(reviewer(on_pair), [run_a, run_b], [compared, scenario])
    scenario.change(reviewer(on_scenario), [run_a, run_b, scenario], [left, right])
