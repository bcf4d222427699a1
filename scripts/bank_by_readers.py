"""Bank questions the blind readers have scored as not fitting, pooled over every scored run.

    .venv/bin/python scripts/bank_by_readers.py            # list them
    .venv/bin/python scripts/bank_by_readers.py --remove   # and remove them from knowledge/question_bank.yaml

A question is listed when readers scored it at least ``MIN_READ`` times (openers and conversation replies of
``evals/blind*/scored/*``, referrals left out), never 2, and on average at most ``MAX_MEAN``: a question that
many readers, over many people's messages, found irrelevant or presumptuous ("What options did the person in
this story have...", asked of someone who told no story). One reading is never enough.

Also listed (since 2026-12-03): a question read at least ``MIN_READ_OFTEN`` times and scored 0 in at least
``MAX_ZERO_SHARE`` of them, even if some readers scored it 2. "What does your report need from this
relationship to keep choosing your team?" fits a manager worried that a report may leave, but was asked of
managers with every other concern and scored 0 in 28 of 76 readings; a general question is scored 0 about one
time in ten.
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
MIN_READ_OFTEN, MAX_ZERO_SHARE = 8, 0.30


def readings() -> dict[str, list[int]]:
    found: dict[str, list[int]] = defaultdict(list)
    for run in sorted(ROOT.glob("evals/blind*/scored/*")):
        if not (run / "scores.json").exists() or not (run / "run.json").exists():  # a paired reading has no run
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
    def unfit_one(scores: list[int]) -> bool:
        if len(scores) >= MIN_READ and 2 not in scores and sum(scores) / len(scores) <= MAX_MEAN:
            return True
        return len(scores) >= MIN_READ_OFTEN and scores.count(0) / len(scores) >= MAX_ZERO_SHARE

    return [(q, read[q["text"]]) for q in bank if unfit_one(read.get(q["text"], []))]


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
