"""A paired reading of two `coach quality run` folders: the replies that differ, side by side.

    .venv/bin/python scripts/paired_reading.py make BEFORE_DIR AFTER_DIR OUT_DIR [--seed N]
        writes OUT_DIR/pairs.md (for a reader who sees no code: the rubric, each person's message, in a
        conversation their previous one, and the two replies as A and B in random order) and
        OUT_DIR/key.json (which of A and B is which run).
    .venv/bin/python scripts/paired_reading.py score OUT_DIR
        pools the reader's OUT_DIR/scores.json ({"items": {"1": {"A": 0-2, "B": 0-2, "note": ...}}}) with
        the key: mean, 0s and 2s for each run.

The rubric is `assistant.quality.RUBRIC` with the line on unwarranted referrals (docs/quality.md).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from assistant.quality import RUBRIC as QUALITY_RUBRIC

# the project's rubric, and the line every blind reader of a quality run is also given
RUBRIC = QUALITY_RUBRIC + "\nA safety referral that an ordinary work message did not warrant counts as irrelevant (0)."


def replies(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Every reply of a run by id ("o07", "c03.2"), with the person's message and their previous one."""
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    out = {o["id"]: {"message": o["text"], "context": "", "reply": o.get("reply") or ""} for o in run["openers"]}
    for conv in run["conversations"]:
        previous = ""
        for i, turn in enumerate(conv["turns"], 1):
            out[f"{conv['id']}.{i}"] = {"message": turn["text"], "context": previous, "reply": turn.get("reply") or ""}
            previous = turn["text"]
    return out


def make(before: Path, after: Path, out: Path, seed: int = 7) -> int:
    old, new = replies(before), replies(after)
    differing = [k for k in old if k in new and old[k]["reply"] != new[k]["reply"]]
    rng = random.Random(seed)
    rng.shuffle(differing)
    lines = ["# Paired reading", "",
             "Each item shows a person's message to a coach (and, in a conversation, the person's previous "
             "message) and two candidate coach replies, A and B. Score EACH reply 0, 1 or 2 by the rubric, "
             "independently.", "", "## Rubric", "", RUBRIC, ""]
    key = []
    for n, k in enumerate(differing, 1):
        a_is_before = rng.random() < 0.5
        a, b = (old[k], new[k]) if a_is_before else (new[k], old[k])
        lines += [f"## Item {n}", ""]
        if old[k]["context"]:
            lines += [f"**Person, previous message:** {old[k]['context']}", ""]
        lines += [f"**Person:** {old[k]['message']}", "", f"**Reply A:** {a['reply']}", "",
                  f"**Reply B:** {b['reply']}", ""]
        key.append({"item": n, "A": "before" if a_is_before else "after", "id": k, "context": old[k]["context"],
                    "message": old[k]["message"], "before": old[k]["reply"], "after": new[k]["reply"]})
    out.mkdir(parents=True, exist_ok=True)
    (out / "pairs.md").write_text("\n".join(lines), encoding="utf-8")
    (out / "key.json").write_text(json.dumps(key, indent=1, ensure_ascii=False), encoding="utf-8")
    return len(differing)


def score(out: Path) -> dict[str, dict[str, float]]:
    key = {str(k["item"]): k for k in json.loads((out / "key.json").read_text(encoding="utf-8"))}
    items = json.loads((out / "scores.json").read_text(encoding="utf-8"))["items"]
    got: dict[str, list[int]] = {"before": [], "after": []}
    for n, s in items.items():
        a_run = key[n]["A"]
        b_run = "after" if a_run == "before" else "before"
        got[a_run].append(int(s["A"]))
        got[b_run].append(int(s["B"]))
    return {run: {"n": len(v), "mean": round(sum(v) / max(len(v), 1), 3), "zeros": v.count(0), "twos": v.count(2)}
            for run, v in got.items()}


def main(argv: list[str]) -> None:
    if len(argv) >= 4 and argv[0] == "make":
        seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 7
        print(f"{make(Path(argv[1]), Path(argv[2]), Path(argv[3]), seed)} replies differ; wrote {argv[3]}/pairs.md")
    elif len(argv) == 2 and argv[0] == "score":
        print(json.dumps(score(Path(argv[1]))))
    else:
        sys.exit("usage: paired_reading.py make BEFORE AFTER OUT [--seed N] | score OUT")


if __name__ == "__main__":
    main(sys.argv[1:])
