"""Does the rehearsal persona answer what the manager asked? Runs a question set and scores it.

>>> on_topic([[1.0, 0.0]], [[0.9, 0.1], [0.1, 0.9]], [0])
[True]

A question set is JSON lines ``{"persona": id, "text": manager message, "topic": what a responsive
answer would cover}`` (``evals/rehearsal/``). ``run_questions`` asks each persona's questions in order, in
one session per persona and difficulty, and records every reply with its band and tension. The score is
the issue's rule: a reply counts as on topic when its sentence embedding is closer to its own question's
topic than to the topics of the other questions for the same persona (chance: one in the group size).
Repeated lines within a session are counted too. A blind reader's judgements (``judgements.json``: one
``{"id", "on_topic": bool, "in_character": bool}`` per reply) are pooled by ``summarise``. This module
does not choose lines (``lines``) and does not write questions: those come from someone who has not
seen the persona files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError

DIFFICULTIES = ("easy", "medium", "hard")


def read_questions(path: Path) -> list[dict[str, str]]:
    """The rows of a question set; a bad row is a DataError naming the file, the line and the field."""
    rows = []
    for i, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError as exc:
            raise DataError(f"{path}:{i}: not JSON: {exc}") from None
        for field in ("persona", "text", "topic"):
            if not isinstance(row.get(field), str) or not row[field].strip():
                raise DataError(f"{path}:{i}: field {field}: a non-empty string is required")
        rows.append({"persona": row["persona"], "text": row["text"], "topic": row["topic"]})
    return rows


def on_topic(replies: Any, topics: Any, own: list[int]) -> list[bool]:
    """For each reply vector, is it closer to its own topic (index ``own[i]``) than to every other topic?"""
    r, t = np.atleast_2d(np.asarray(replies, float)), np.atleast_2d(np.asarray(topics, float))
    sims = r @ t.T
    return [bool(sims[i, k] >= sims[i].max()) for i, k in enumerate(own)]


def run_questions(engine: Any, rows: list[dict[str, str]],
                  difficulties: tuple[str, ...] = DIFFICULTIES) -> list[dict[str, Any]]:
    """Every persona's questions, in order, in one session per persona and difficulty."""
    personas = list(dict.fromkeys(r["persona"] for r in rows))
    out = []
    for difficulty in difficulties:
        for persona in personas:
            sid = None
            for row in (r for r in rows if r["persona"] == persona):
                result = engine.turn(row["text"], persona, difficulty, session_id=sid)
                sid = result["session"]
                out.append({"id": f"{difficulty}/{persona}/{len(out)}", "difficulty": difficulty, **row,
                            "reply": result["reply"], "band": result["band"], "tension": result["tension"],
                            "revealed": result["revealed"], "moves": result["moves"], "session": sid})
    return out


def score(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """The on-topic rate by the embedding rule (overall, per difficulty, per band), chance, and repeats."""
    from .understanding.encoder import embed

    for t in turns:
        t.pop("on_topic_rule", None)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in turns:
        groups.setdefault((t["difficulty"], t["persona"]), []).append(t)
    chance = []
    for group in groups.values():
        topics = embed([t["topic"] for t in group])
        replies = embed([t["reply"] for t in group])
        for t, hit in zip(group, on_topic(replies, topics, list(range(len(group)))), strict=True):
            t["on_topic_rule"] = hit
        chance += [1 / len(group)] * len(group)
    repeats = sum(len(g) - len({t["reply"] for t in g}) for g in groups.values())

    def rate(items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"n": len(items), "on_topic": round(sum(t["on_topic_rule"] for t in items) / max(len(items), 1), 3)}

    return {"all": rate(turns), "chance": round(float(np.mean(chance)), 3) if chance else None,
            "by_difficulty": {d: rate([t for t in turns if t["difficulty"] == d])
                              for d in dict.fromkeys(t["difficulty"] for t in turns)},
            "by_band": {b: rate([t for t in turns if t["band"] == b])
                        for b in sorted({str(t["band"]) for t in turns})},
            "repeated_lines": repeats}


def judge_sheet(turns: list[dict[str, Any]]) -> str:
    """What a blind reader sees: each question and reply, nothing about the persona files or the code."""
    parts = ["# Rehearsal replies to judge", "",
             "For each item: is the reply about what the manager asked (on_topic: yes/no), and does it sound "
             "like an employee speaking to their manager (in_character: yes/no)? A brief or guarded reply "
             "can still be on topic.", ""]
    for t in turns:
        parts += [f"## {t['id']}", f"**Manager:** {t['text']}", "", f"**Employee:** {t['reply']}", ""]
    return "\n".join(parts)


def summarise(run_dir: Path) -> dict[str, Any]:
    """The rule score of a run folder and, if present, a blind reader's ``judgements.json`` pooled."""
    run = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    out: dict[str, Any] = {"rule": run["score"]}
    path = Path(run_dir) / "judgements.json"
    if path.exists():
        marks = {j["id"]: j for j in json.loads(path.read_text(encoding="utf-8"))}
        turns = [t for t in run["turns"] if t["id"] in marks]
        if not turns:
            raise DataError(f"{path}: no judgement matches a reply id of the run")
        for key in ("on_topic", "in_character"):
            out[f"reader_{key}"] = round(sum(bool(marks[t["id"]][key]) for t in turns) / len(turns), 3)
        out["reader_n"] = len(turns)
        out["reader_by_difficulty"] = {
            d: round(sum(bool(marks[t["id"]]["on_topic"]) for t in turns if t["difficulty"] == d)
                     / max(sum(t["difficulty"] == d for t in turns), 1), 3)
            for d in dict.fromkeys(t["difficulty"] for t in turns)}
    return out
