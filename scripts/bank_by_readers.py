"""Bank questions the blind readers have scored as not fitting, pooled over every scored run.

    .venv/bin/python scripts/bank_by_readers.py            # list them
    .venv/bin/python scripts/bank_by_readers.py --remove   # and remove them from knowledge/question_bank.yaml

A question is listed when readers scored it at least ``MIN_READ`` times (openers and conversation replies of
``evals/blind*/scored/*``, referrals left out), never 2, and on average at most ``MAX_MEAN``: a question that
many readers, over many people's messages, found irrelevant or presumptuous ("What options did the person in
this story have...", asked of someone who told no story). One reading is never enough.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT / "knowledge" / "question_bank.yaml"
MIN_READ, MAX_MEAN = 4, 0.34


def readings() -> dict[str, list[int]]:
    found: dict[str, list[int]] = defaultdict(list)
    for run in sorted(ROOT.glob("evals/blind*/scored/*")):
        if not (run / "scores.json").exists():
            continue
        scores = json.loads((run / "scores.json").read_text(encoding="utf-8"))
        data = json.loads((run / "run.json").read_text(encoding="utf-8"))
        items = [(o, scores["openers"].get(o["id"])) for o in data["openers"]]
        items += [(t, scores["conversations"].get(f"{c['id']}.{i + 1}"))
                  for c in data["conversations"] for i, t in enumerate(c["turns"])]
        for turn, score in items:
            if score is not None and not turn.get("safety"):
                found[re.split(r"(?<=[.!?])\s+", turn["reply"].strip())[-1]].append(int(score))
    return found


def unfit(bank: list[dict]) -> list[tuple[dict, list[int]]]:
    read = readings()
    return [(q, read[q["text"]]) for q in bank if len(read.get(q["text"], [])) >= MIN_READ
            and 2 not in read[q["text"]] and sum(read[q["text"]]) / len(read[q["text"]]) <= MAX_MEAN]


def main() -> None:
    bank = yaml.safe_load(BANK.read_text(encoding="utf-8"))
    out = unfit(bank)
    for q, scores in out:
        print(f"{q['id']}  read {len(scores)}x, mean {sum(scores) / len(scores):.2f}  {q['text']}")
    if "--remove" in sys.argv[1:] and out:
        gone = {q["id"] for q, _ in out}
        blocks = re.split(r"(?m)^(?=- id: )", BANK.read_text(encoding="utf-8"))
        kept = [b for b in blocks if not (m := re.match(r"- id: (\S+)", b)) or m.group(1) not in gone]
        BANK.write_text("".join(kept), encoding="utf-8")
        print(f"removed {len(gone)} of {len(bank)}")


if __name__ == "__main__":
    main()
