"""How far the issue's on-topic rule can go on a rehearsal run: the rule applied to the run's replies, to the
manager's own message as if it were the reply, and to each reply led by the message's main noun phrase
("The roadmap items? ..."), an echo that was measured and not shipped (docs/rehearsal.md).

    .venv/bin/python scripts/rehearsal_rule_ceiling.py evals/rehearsal/scored/blind-after/run.json
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from assistant.listening_eval import score

GENERIC = {"thing", "things", "part", "manager", "lot", "bit", "way", "time", "answer", "something", "anything",
           "everything", "one", "kind", "sort", "difference", "day", "person", "people", "question", "point"}


def main_phrase(text: str) -> str | None:
    """The longest noun phrase of the message's questions that is not a pronoun, a name said in address, a
    time or a generic word; possessives put in the speaker's person ("your reviews" -> "my reviews")."""
    from assistant.mirror import parsed

    swap = {"your": "my", "you": "me", "my": "your", "me": "you"}
    best = None
    for sent in parsed(text).sents:
        if not sent.text.strip().endswith("?"):
            continue
        for chunk in sent.noun_chunks:
            root = chunk.root
            if root.pos_ == "PRON" or root.lower_ in GENERIC or root.dep_ in ("npadvmod", "intj", "dep"):
                continue
            if root.ent_type_ in ("TIME", "DATE") or root.pos_ == "PROPN" and chunk.start == sent.start:
                continue
            if best is None or len(chunk) > len(best):
                best = chunk
    if best is None:
        return None
    words = "".join((swap.get(t.lower_, t.text) if t.pos_ in ("PRON", "DET") else t.text) + t.whitespace_
                    for t in best).strip()
    return words[:1].upper() + words[1:]


def rate(turns: list[dict[str, Any]], reply) -> float:
    copied = copy.deepcopy(turns)
    for t in copied:
        t["reply"] = reply(t)
    return score(copied)["all"]["on_topic"]


def echoed(t: dict[str, Any]) -> str:
    phrase = None if t["band"] in ("dismissed", "agree") else main_phrase(t["text"])
    return f"{phrase}? {t['reply']}" if phrase else t["reply"]


def main() -> None:
    turns = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))["turns"]
    print(f"replies as said:                 {rate(turns, lambda t: t['reply']):.3f}")
    print(f"the manager's message as reply:  {rate(turns, lambda t: t['text']):.3f}")
    print(f"replies led by an echo:          {rate(turns, echoed):.3f}")


if __name__ == "__main__":
    main()
