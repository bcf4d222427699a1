"""``coach understand report``: every signal of the understanding layer on a split (blind by default),
with precision, recall and the confusion between classes.

>>> figures = report(["safety"], split="dev")   # doctest: +SKIP

The blind split was written by helpers who saw neither the code, the rules nor the training rows; it is
measured here and never tuned on. This module trains nothing (``train.py`` does).
"""

from __future__ import annotations

from typing import Any

from ..config import ROOT
from .data import SAFETY_DIR, SAFETY_KINDS, Conversation, SafetyRow, read_rows
from .safety import SafetyScreen

TURN_SIGNALS = ("audience", "grow", "next_step", "move", "outcome", "not_yet")  # heads read by understanding.turn
SIGNALS = ("safety", "coder", *TURN_SIGNALS, "theme")
SPLITS = ("train", "dev", "blind")
# the safety signal has a second blind split, written after the first had been read eleven times; `longform`
# (never trained on): disclosures hidden in long work messages and ordinary messages about strain; `ordinary`:
# every coachee message of the reply-quality sets (evals/blind*/), ordinary coaching talk with no disclosure,
# where a referral is always unwarranted
# `blind_v4` (2026-12-03): a fifth blind writer's disclosures and hard negatives; `talk`: ordinary coaching
# messages by a writer who saw nothing of the project and was told nothing of what the screen gets wrong
SAFETY_SPLITS = (*SPLITS, "blind_v2", "blind_v3", "blind_v4", "longform", "ordinary", "talk")
QUALITY_SETS = ROOT / "evals"


def ordinary_rows() -> list[SafetyRow]:
    """The coachee messages of every reply-quality blind set, as ordinary rows (source: the set)."""
    from ..quality import read_set

    rows = []
    for folder in sorted(QUALITY_SETS.glob("blind*")):
        if (folder / "openers.jsonl").exists():
            openers, conversations = read_set(folder)
            texts = [o["text"] for o in openers] + [t for c in conversations for t in c["turns"]]
            rows += [SafetyRow(text=t, kind="none", source=folder.name) for t in texts]
    return rows


def safety_report(split: str = "blind", screen: SafetyScreen | None = None) -> dict[str, Any]:
    """Recall per kind, false alarms on hard negatives, confusion, and (blind) the conversations."""
    screen = screen or SafetyScreen()
    rows = ordinary_rows() if split == "ordinary" else read_rows(SAFETY_DIR / f"{split}.jsonl", SafetyRow)
    readings = [screen.read(r.text) for r in rows]
    kinds = [r.kind for r in rows]
    pred = [rd.kind or "none" for rd in readings]
    fig = figures_from_predictions(kinds, pred)
    fig["missed"] = [{"text": r.text, "kind": r.kind} for r, p in zip(rows, pred, strict=True)
                     if r.kind != "none" and p == "none"]
    fig["false_alarm_rows"] = [{"text": r.text, "routed_as": p} for r, p in zip(rows, pred, strict=True)
                               if r.kind == "none" and p != "none"]
    fig["via"] = {v: sum(rd.via == v for rd in readings) for v in ("model", "window", "context", "backstop")}
    fig["split"] = split
    if split == "ordinary":
        fig["by_source"] = {src: {"messages": sum(r.source == src for r in rows),
                                  "referred": sum(r.source == src and p != "none" for r, p in zip(rows, pred, strict=True))}
                            for src in dict.fromkeys(r.source for r in rows)}
    conv_path = SAFETY_DIR / f"{split}_conversations.jsonl"
    if conv_path.exists():
        fig["conversations"] = conversation_report(read_rows(conv_path, Conversation), screen)
    return fig


def figures_from_predictions(kinds: list[str], pred: list[str]) -> dict[str, Any]:
    per: dict[str, Any] = {}
    for kind in SAFETY_KINDS:
        idx = [i for i, k in enumerate(kinds) if k == kind]
        if idx:
            routed = sum(pred[i] != "none" for i in idx)
            exact = sum(pred[i] == kind for i in idx)
            per[kind] = {"n": len(idx), "recall": round(routed / len(idx), 4),
                         "kind_correct": round(exact / len(idx), 4)}
    neg = [i for i, k in enumerate(kinds) if k == "none"]
    fa = sum(pred[i] != "none" for i in neg)
    pos = [i for i, k in enumerate(kinds) if k != "none"]
    labels = [*SAFETY_KINDS, "none"]
    confusion = [[sum(1 for t, p in zip(kinds, pred, strict=True) if t == a and p == b) for b in labels]
                 for a in labels]
    return {"summary": {"recall": round(sum(pred[i] != "none" for i in pos) / max(len(pos), 1), 4),
                        "false_alarm_rate": round(fa / max(len(neg), 1), 4), "false_alarms": fa,
                        "negatives": len(neg), "disclosures": len(pos)},
            "per_kind": per, "confusion": {"labels": labels, "matrix": confusion}}


def conversation_report(convs: list[Conversation], screen: SafetyScreen) -> dict[str, Any]:
    """Play each conversation's coachee turns through the screen as the chain does (the previous message
    is context unless it was itself referred; after a crisis referral, a reading only the lower crisis bar
    routes is coached, not referred again)."""
    late, late_routed, ordinary, ordinary_routed, stuck = 0, 0, 0, 0, 0
    details = []
    for conv in convs:
        previous, referred_prev, routed, referred = None, False, [], set()
        for turn in conv.turns:
            reading = screen.read(turn, None if referred_prev else previous)
            kind = reading.kind if reading.refers(referred) else None
            routed.append(kind)
            referred |= {kind} if kind else set()
            referred_prev, previous = kind is not None, turn
        for i, kind in enumerate(routed):
            if conv.disclosure_turn is not None and i == conv.disclosure_turn:
                late += 1
                late_routed += kind is not None
            elif conv.disclosure_turn is None or i < conv.disclosure_turn:
                ordinary += 1
                ordinary_routed += kind is not None
        after = routed[conv.disclosure_turn + 1:] if conv.disclosure_turn is not None else []
        stuck += bool(after) and all(k is not None for k in after)
        details.append({"id": conv.id, "disclosure_turn": conv.disclosure_turn, "kind": conv.kind, "routed": routed})
    return {"late_disclosures": late, "late_routed": late_routed, "ordinary_turns_before": ordinary,
            "ordinary_routed": ordinary_routed, "stuck_after_referral": stuck, "details": details}


def report(signals: list[str] | None = None, split: str = "blind") -> dict[str, Any]:
    """Figures for each named signal (default: all) on ``split``."""
    signals = list(signals or SIGNALS)
    unknown = [s for s in signals if s not in SIGNALS]
    allowed = SAFETY_SPLITS if signals == ["safety"] else SPLITS
    if unknown or split not in allowed:
        raise ValueError(f"unknown signal or split: {unknown or split}; signals: {', '.join(SIGNALS)}; "
                         f"splits: {', '.join(SPLITS)} (safety alone also {', '.join(SAFETY_SPLITS[len(SPLITS):])})")
    out: dict[str, Any] = {}
    if "safety" in signals:
        out["safety"] = safety_report(split)
    if "coder" in signals:
        out["coder"] = coder_report(split)
    for name in TURN_SIGNALS:
        if name in signals:
            from .turn import signal_report

            out[name] = signal_report(name, split)
    if "theme" in signals:
        from .themes import theme_report

        out["theme"] = theme_report(split)
    return out


def text_report(figures: dict[str, Any]) -> str:
    """The figures as a short plain-text table."""
    lines: list[str] = []
    if "safety" in figures:
        f = figures["safety"]
        s = f["summary"]
        lines.append(f"safety ({f['split']}): recall {s['recall']:.3f} on {s['disclosures']} disclosures; "
                     f"false alarms {s['false_alarms']}/{s['negatives']} ({s['false_alarm_rate']:.3f})")
        for kind, k in f["per_kind"].items():
            lines.append(f"  {kind:15} n={k['n']:4}  recall {k['recall']:.3f}  kind correct {k['kind_correct']:.3f}")
        for src, k in f.get("by_source", {}).items():
            lines.append(f"  {src:15} referred {k['referred']} of {k['messages']} ordinary coaching messages")
        if "conversations" in f:
            c = f["conversations"]
            lines.append(f"  conversations: late disclosures routed {c['late_routed']}/{c['late_disclosures']}; "
                         f"ordinary turns referred {c['ordinary_routed']}/{c['ordinary_turns_before']}; "
                         f"stuck {c['stuck_after_referral']}")
    if "coder" in figures:
        for name, f in figures["coder"].items():
            lines.append(f"coder on {name}: accuracy {f['accuracy']:.3f}, macro-F1 {f['macro_f1']:.3f}, over classes "
                         f"with >= 10 rows {f['macro_f1_supported']:.3f} (n={f['n']})")
            for code, k in f["per_class"].items():
                lines.append(f"  {code:16} P {k['precision']:.3f}  R {k['recall']:.3f}  F1 {k['f1']:.3f}  "
                             f"n={k['support']}")
    for name in TURN_SIGNALS:
        if name in figures:
            f = figures[name]
            lines.append(f"{name} ({f['split']}): accuracy {f['accuracy']:.3f} (n={f['n']}); confident on "
                         f"{f['coverage']:.3f}, right {f['accuracy_when_confident']} of those")
            for label, k in f["per_class"].items():
                lines.append(f"  {label:16} P {k['precision']:.3f}  R {k['recall']:.3f}  n={k['n']}")
    if "theme" in figures:
        f = figures["theme"]
        for name, k in (("theme signal", f["head"]), ("cosine alone", f["cosine_alone"])):
            lines.append(f"{name} ({f['split']}, n={f['n']}): related linked {k['related_linked']:.3f}, near "
                         f"{k['near_linked']:.3f}, unrelated {k['unrelated_linked']:.3f}")
    return "\n".join(lines)


def coder_report(split: str = "blind") -> dict[str, Any]:
    """The stored coder on each test set (blind) or on dev: whole utterances, main code, fine codes. A MIBot
    row is one sentence of a counsellor's turn and is read after the sentence before it, as the coder reads
    a whole turn."""
    from .coder import code_details
    from .data import coder_rows
    from .train import coder_metrics

    names = ["mibot_test", "own_test", "external", "transcribed"] if split == "blind" else [split]
    out = {}
    for name in names:
        rows = coder_rows(name)
        pred = [d["fine"] for d in code_details([r.text for r in rows], contexts=[r.context for r in rows])]
        out[name] = coder_metrics([r.fine for r in rows], pred)
    return out
