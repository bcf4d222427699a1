"""Reply quality as a reader sees it: broken sentences, the wrong audience, repeated and generic questions.

>>> broken_sentences("It sounds like as a manager. What matters most to you?")
['It sounds like as a manager.']
>>> broken_sentences("It sounds like your work went unseen. What would being seen look like?")
[]
>>> audience_mismatch("What does your report want next?", "high-performer")
True

The rule checks here are a floor, not a judge: they catch garbled echoes and a high performer asked about
"your report". Whether a reply is specific and moves the person on is scored by a blind reader against
``RUBRIC`` (``coach quality run`` writes the transcript to read; ``coach quality summary`` pools the
reader's scores with the rule figures). The guard uses ``broken_sentences`` so a garbled reply is never
shown. This module does not generate replies.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .mirror import UNCLOSED_QUOTE
from .understanding.coder import split_sentences

RUBRIC = """Score each coach reply 0, 1 or 2.
0 = broken (a garbled or ungrammatical sentence), wrong audience (e.g. asks someone with no reports about
    "your report"), irrelevant to what the person said, or gives advice.
1 = correct and sensible, but could be asked of almost anyone (generic).
2 = specific to what this person said (and, in a conversation, builds on their previous answer) and moves
    them on.
In conversations also note: does the coach repeat a question; does it reach the person's own plan when
they offer one."""

_QUOTED = re.compile(r"[\"“][^\"”]*[\"”]|(?<![A-Za-z])['‘][^'’]{3,}['’](?![A-Za-z])")
_STEM = re.compile(r"^(it sounds like|it seems like|it sounds as if|so|you)\s+(\S+)", re.I)
_BAD_AFTER_STEM = {"as", "if", "because", "and", "but", "or", "im", "i", "i'm", "my", "me", "of", "to", "for",
                   "got", "offered", "been", "was", "were", "is", "are", "has", "had", "did", "does", "with",
                   "at", "by", "from", "honestly", "basically", "like", "um", "so", "just"}
_AGREEMENT = re.compile(r"(^|[,;]\s*|\b(that|and|but|if|when|because|like|so)\s+)you (was|is|has|doesn't|wasn't|isn't|am)\b|"
                        r"\bi (is|are|were)\b|\byou'm\b|"
                        r"\byou're (a|an|the) \w+ (got|was|has|is|did|took|said)\b|"
                        r"\byou('re| are) (got|had|did|went|was|were|been|has|have|closed|started|finished)\b|"
                        r"\b(\w+) \1\b", re.I)
# a subject named and then taken up again by a pronoun ("your best operator, 9 years here, he knows…"): the
# person's non-native or spoken word order, which is not English once put after a reflective stem
_RESUMED = re.compile(r"^(it sounds like|it seems like|so|you're saying|you are saying)\s+(your|the|a|an|this|that|"
                      r"his|her|their|our)\s+[^,]{1,40},\s+(?:[^,]{1,40},\s+)?(he|she|they|it|we)\s+\w+", re.I)
# non-native forms a reflection must not copy: a duration in the present ("is with you seven years", "you are
# here since 8 years", "she is only 1 year here") and "want that" with a clause ("you want that it finish well"); blind15 c06
_NON_NATIVE = re.compile(r"\b(?:is|are|am|'re|'s)\b(?!\s+been\b)(?:\s+[\w,]+){0,5}?\s+(?<!for )(?<!in )(?<!about )"
                         r"(?:since\s+)?(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|many)"
                         r"\s+(?:years?|months?|weeks?)(?:\s+(?:now|already|here|there))?\s*[.!]?$"
                         r"|\bwants? that (?:it|he|she|they|we|you|i)\b"
                         r"|\boffer(?:s|ed)? (?:me|you|him|her|them|us) to \w+", re.I)  # "offered you to become…"
_DANGLING_Q = re.compile(r"\b(the|a|an|and|or|but|my|your|than|because|whether)\s*[?]$", re.I)
_NO_MAIN = re.compile(r"\bthat if\b[^,]*[.]$|^it sounds like (you're |you are )?\w+ that\b[^,]*\bif\b[^,]*[.]$", re.I)
_DANGLING = re.compile(r"\b(the|a|an|and|or|but|if|it's|its|my|your|as|"
                       r"than|because|when|whether)\s*[.?!]$", re.I)
_FIRST_PERSON = re.compile(r"\b(my|im|mine|myself)\b|\bi (?!hear\b|appreciate\b|notice\b|wonder\b|can\b|hope\b|'m curious)", re.I)
_MANAGER_ONLY = re.compile(r"\byour (reports?|direct reports?|team members?|employees?|star|staff|hires?)\b|"
                           r"\bthe (person|people) you manage\b|\bsomeone (on|in) your team\b|"
                           r"\b(praise|praised|recognise|recognize|coach|promote) (your|them in front of your) team\b", re.I)
_HP_ONLY = re.compile(r"\byour (own )?(manager|boss|lead|skip-level)\b", re.I)


def broken_sentences(reply: str) -> list[str]:
    """Sentences of a coach reply a reader would call garbled (by rules; a floor, not a judge)."""
    from .understanding.referrals import reminder_opening, resume_line

    out: list[str] = []
    # the product's own lines after a referral speak as "me" ("if my last message…", "The support I mentioned…",
    # whatever contact the organisation configured after it)
    canned = set(split_sentences(resume_line()))
    reminder = reminder_opening()
    for s in split_sentences(reply):
        bare = _QUOTED.sub("QUOTE", s.strip())
        if not bare or s.strip() in canned or (reminder and s.strip().startswith(reminder)):
            continue
        m = _STEM.match(bare)
        stem, after = (m.group(1).lower(), m.group(2).lower().strip(",")) if m else ("", "")
        bad = stem.startswith("it ") and after in _BAD_AFTER_STEM
        bad = bad or (stem == "you" and after in {"as", "if", "because", "im", "i", "i'm", "my", "me", "was", "is"})
        bad = bad or bool(m and m.group(1).lower() == "it sounds like" and m.group(2).endswith("ed")
                          and m.group(2)[:1].islower())  # "It sounds like offered…", not "It sounds like Ahmed…"
        dangling = _DANGLING_Q if s.endswith("?") else _DANGLING
        bad = bad or bool(_RESUMED.search(bare)) or bool(_NON_NATIVE.search(bare))
        bad = bad or bool(_AGREEMENT.search(bare)) or bool(dangling.search(bare)) or bool(_NO_MAIN.search(bare))
        bad = bad or (not s.endswith("?") and bool(_FIRST_PERSON.search(bare)))
        bad = bad or bare[0].islower() or s.count("(") != s.count(")") or s.count('"') % 2 == 1
        bad = bad or bool(UNCLOSED_QUOTE.search(s))  # a quote opened and never closed ("you 'hover.")
        bad = bad or len(bare.split()) < 3 or bool(re.search(r"[^\w\s)’'\"”]\s*[?.!]$", bare))
        if bad:
            out.append(s)
    return out


def audience_mismatch(reply: str, audience: str | None) -> bool:
    """A high performer asked about "your report", or a manager about "your manager". Only the question is
    read when there is one: a reflection of the person's own words ("It sounds like your lead engineer
    resigned this morning.", from a manager) names their people as they did."""
    text = question_of(reply) or reply
    if audience == "high-performer":
        return bool(_MANAGER_ONLY.search(text))
    if audience == "manager":
        return bool(_HP_ONLY.search(text))
    return False


def question_of(reply: str) -> str:
    sentences = split_sentences(reply)
    return sentences[-1] if sentences and sentences[-1].endswith("?") else ""


# -- the blind set: run it, write what a reader reads, pool the reader's scores --------------------------
def read_set(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``openers.jsonl`` and ``conversations.jsonl`` of a blind set; a bad line names the file and line."""
    from .errors import DataError

    def rows(name: str, need: tuple[str, ...]) -> list[dict[str, Any]]:
        path = folder / name
        out = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise DataError(f"{path}:{i}: not valid JSON ({exc.args[0]})") from None
            missing = [k for k in need if k not in row]
            if missing:
                raise DataError(f"{path}:{i}: field {missing[0]} is missing")
            out.append(row)
        return out

    return rows("openers.jsonl", ("id", "audience", "text")), rows("conversations.jsonl", ("id", "audience", "turns"))


def run_set(coach: Any, folder: Path) -> dict[str, Any]:
    """Every opener in a fresh session and every conversation in one session, through the real chain."""
    openers, conversations = read_set(folder)
    out: dict[str, Any] = {"openers": [], "conversations": []}
    for o in openers:
        r = coach.turn(o["text"])
        out["openers"].append({"id": o["id"], "audience": o["audience"], "text": o["text"], "reply": r["reply"],
                               "safety": r.get("safety"), "stage": r.get("stage"), "citations": r["citations"],
                               "route": coach.store.turns(r["session"])[-1].meta.get("route")})
    for c in conversations:
        sid, turns = None, []
        for text in c["turns"]:
            r = coach.turn(text, session_id=sid)
            sid = r["session"]
            turns.append({"text": text, "reply": r["reply"], "safety": r.get("safety"), "stage": r.get("stage"),
                          "citations": r["citations"], "action_plan": r.get("action_plan")})
        out["conversations"].append({"id": c["id"], "audience": c["audience"], "turns": turns})
    out["rules"] = rule_figures(out)
    return out


def rule_figures(run: dict[str, Any]) -> dict[str, Any]:
    """What rules can see in a run: broken replies, audience mismatches, repeats, distinct questions."""
    replies = [(o["reply"], o["audience"], o.get("safety")) for o in run["openers"]]
    replies += [(t["reply"], c["audience"], t.get("safety")) for c in run["conversations"] for t in c["turns"]]
    coaching = [(r, a) for r, a, s in replies if not s]
    opener_qs = [question_of(o["reply"]) for o in run["openers"] if not o.get("safety")]
    repeats = 0
    for c in run["conversations"]:
        qs = [question_of(t["reply"]) for t in c["turns"] if not t.get("safety")]
        repeats += len(qs) - len(set(qs))
    reached = sum(any(t.get("stage") == "way_forward" for t in c["turns"]) for c in run["conversations"])
    planned = sum(any(t.get("action_plan") for t in c["turns"]) for c in run["conversations"])
    return {"coach_replies": len(coaching),
            "broken_replies": sum(bool(broken_sentences(r)) for r, _ in coaching),
            "audience_mismatch": sum(audience_mismatch(r, a) for r, a in coaching),
            "repeated_questions": repeats,
            "distinct_opener_questions": len(set(opener_qs)), "openers_coached": len(opener_qs),
            "conversations_reaching_way_forward": reached, "conversations_with_plan_recorded": planned,
            "conversations": len(run["conversations"]),
            "safety_referrals": sum(bool(s) for _, _, s in replies)}


def transcript_md(run: dict[str, Any], title: str) -> str:
    """What the blind reader reads: the person's words and the coach's replies, numbered, nothing else."""
    lines = [f"# {title}", "", "## Openers (each a fresh session)", ""]
    for o in run["openers"]:
        lines += [f"### {o['id']} ({o['audience']})", "", f"**Person:** {o['text']}", "", f"**Coach:** {o['reply']}", ""]
    lines += ["## Conversations", ""]
    for c in run["conversations"]:
        lines += [f"### {c['id']} ({c['audience']})", ""]
        for i, t in enumerate(c["turns"], 1):
            lines += [f"**Person ({i}):** {t['text']}", "", f"**Coach ({c['id']}.{i}):** {t['reply']}", ""]
    return "\n".join(lines)


def summarise_scores(scores: dict[str, Any]) -> dict[str, Any]:
    """A reader's ``scores.json`` ({"openers": {id: 0-2}, "conversations": {"c01.1": 0-2, ...}}) pooled."""
    out: dict[str, Any] = {}
    for part in ("openers", "conversations"):
        vals = [int(v) for v in scores.get(part, {}).values()]
        if vals:
            out[part] = {"n": len(vals), "mean": round(sum(vals) / len(vals), 3), "zeros": vals.count(0),
                         "twos": vals.count(2)}
    return out
