"""How blind readers scored the coaching-moves library's questions, by how close the question's own situation
was to what the person said: the figures behind ``moves.SITUATION_FLOOR``.

    .venv/bin/python scripts/library_by_readers.py                  # every scored run but the newest sets
    .venv/bin/python scripts/library_by_readers.py --only blind13   # one set's runs

Every reading of ``evals/blind*/scored/*`` (openers and conversation replies; referrals left out) whose
question is a library question is placed by its situation's closeness (MiniLM cosine of the message, or of
the session's opening message when closer, with the situation's best example: what ``MoveLibrary.rank``
uses). The question is the reply's last sentence. For each floor the readings below and above it are
summarised (mean score, share of 0s), beside the questions that are not from the library.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = ("blind13", "blind14")  # read after the floor was chosen
FLOORS = (0.50, 0.52, 0.55, 0.58, 0.60)


def readings(only: str | None) -> list[dict]:
    out = []
    for run in sorted(ROOT.glob("evals/blind*/scored/*")):
        name = run.parent.parent.name
        if (only and name != only) or (not only and name in HELD_OUT):
            continue
        if not (run / "scores.json").exists() or not (run / "run.json").exists():  # a paired reading has no run
            continue
        scores = json.loads((run / "scores.json").read_text(encoding="utf-8"))
        data = json.loads((run / "run.json").read_text(encoding="utf-8"))
        if not isinstance(scores.get("openers"), dict):
            continue
        for o in data["openers"]:
            out.append({"text": o["text"], "opening": o["text"], "reply": o.get("reply") or "",
                        "safety": o.get("safety"), "score": scores["openers"].get(o["id"]), "run": str(run)})
        for c in data["conversations"]:
            for i, t in enumerate(c["turns"]):
                out.append({"text": t["text"], "opening": c["turns"][0]["text"], "reply": t.get("reply") or "",
                            "safety": t.get("safety"), "score": scores["conversations"].get(f"{c['id']}.{i + 1}"),
                            "run": str(run)})
    return [r for r in out if r["score"] is not None and not r["safety"] and r["reply"]]


def main() -> None:
    from assistant.moves import MoveLibrary
    from assistant.understanding.encoder import embed

    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--only", help="one set (e.g. blind13), else every set but the held-out ones")
    only = args.parse_args().only
    lib = MoveLibrary.load()
    situation = {m.text: m.situation.id for m in lib.moves}
    rows = readings(only)
    for r in rows:
        r["question"] = re.split(r"(?<=[.!?])\s+", r["reply"].strip())[-1]
    used = [r for r in rows if r["question"] in situation]
    other = np.asarray([int(r["score"]) for r in rows if r["question"] not in situation])
    vectors = embed([r["text"] for r in used] + [r["opening"] for r in used])
    close = []
    for r, msg, opening in zip(used, vectors[:len(used)], vectors[len(used):], strict=True):
        best = {s.id: v for s, v in lib.scores(msg)}
        for s, v in lib.scores(opening):
            best[s.id] = max(v, best.get(s.id, -1.0))
        close.append(best.get(situation[r["question"]], 0.0))
    close_a, score = np.asarray(close), np.asarray([int(r["score"]) for r in used])

    def line(mask: np.ndarray) -> str:
        n = int(mask.sum())
        return f"n={n:4d} mean={score[mask].mean():.2f} zeros={np.mean(score[mask] == 0):.2f}" if n else "n=   0"

    print(f"readings: {len(rows)}; library questions {len(used)}; others n={len(other)} "
          f"mean={other.mean():.2f} zeros={np.mean(other == 0):.2f}")
    for floor in FLOORS:
        print(f"floor {floor:.2f}: below {line(close_a < floor)} | at or above {line(close_a >= floor)}")


if __name__ == "__main__":
    main()
