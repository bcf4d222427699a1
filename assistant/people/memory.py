"""Memory across sessions: the person's goal and the plans they wrote, in their own words.

>>> followup_line("I'll ask for the fraud rebuild before the 14th.")
'It sounds like last time you were planning to ask for the fraud rebuild before the 14th. How did it go?'
>>> print(followup_line("I'll ask my director for the fraud rebuild."))
Last time you wrote this plan: “I'll ask my director for the fraud rebuild.” How did it go?

Rules, enforced here and not only by the caller: an item is an exact excerpt of one of the person's own
turns (never the coach's), in a session that person owns, and never a turn the safety screen referred
(a disclosure is not something to bring up next time). The person can correct or delete any item; a
correction is their own words too. Whether a follow-up answer says the plan happened is read by the
understanding layer (``understanding.outcome``). This module does not write coaching questions beyond the
follow-up line itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import InputError, NotFoundError
from ..stages import is_commitment
from ..transcripts import TranscriptStore, now

KINDS = ("goal", "plan")
STATUSES = ("open", "done", "not_done", "partly")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_PLAN_HEAD = re.compile(r"^(?:(?:so|ok|okay|yes|yeah|right|then|and|first)[,.]?\s+)*i(?:'ll|’ll| will| am going to|'m going"
                        r" to|’m going to| plan to| want to| intend to)\s+(.+?)[.!]?$", re.I)
_PERSON = re.compile(r"\b(i|i'm|i'll|i've|i'd|me|my|mine|myself|we|we'll|us|our|ours|you|your|yours)\b", re.I)
MAX_QUOTE = 220


@dataclass(frozen=True)
class MemoryItem:
    id: int
    user_id: str
    kind: str
    text: str
    session_id: str | None
    turn_id: int | None
    status: str
    created_at: str
    updated_at: str

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "text": self.text, "session": self.session_id,
                "status": self.status, "created_at": self.created_at, "updated_at": self.updated_at}


def excerpt(text: str, kind: str) -> str:
    """The part of a message worth remembering, verbatim and contiguous (so it stays an exact excerpt): for a
    plan its first commitment sentence and the next one if it commits too, for a goal its first sentence of
    four or more words that is not a question (and the next, if it qualifies); at most ``MAX_QUOTE``
    characters, cut at a word."""
    sentences = [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]

    def fits(s: str) -> bool:
        return "?" not in s and (is_commitment(s) if kind == "plan" else len(s.split()) >= 4)

    picked = [i for i, s in enumerate(sentences) if fits(s)] or [0]
    chosen = sentences[picked[0]:picked[0] + (2 if picked[0] + 1 in picked else 1)]
    out = " ".join(chosen)
    if len(out) > MAX_QUOTE and len(chosen) > 1:
        out = chosen[0]
    return out if len(out) <= MAX_QUOTE else out[:MAX_QUOTE].rsplit(" ", 1)[0]


def followup_line(plan: str) -> str:
    """The coach's follow-up on a remembered plan: a safe rephrase when the plan is one "I'll …" sentence
    with no other person-words (so no pronoun has to be swapped), otherwise the person's own words quoted."""
    plan = " ".join(plan.split()).replace("?", ".")
    sentences = [s for s in _SENTENCE.split(plan) if s]
    m = _PLAN_HEAD.match(plan) if len(sentences) == 1 else None
    if m and not _PERSON.search(m.group(1)) and "“" not in m.group(1):
        # the coach's reflection form: the coder reads "Last time you planned to ask…" as advice (an imperative
        # verb after "to"), and "It sounds like last time you were planning to ask…" as a reflection
        return f"It sounds like last time you were planning to {m.group(1).rstrip('.!…')}. How did it go?"
    quoted = plan if plan.endswith((".", "!", "…")) else plan + "."
    return f"Last time you wrote this plan: “{quoted}” How did it go?"


class Memory:
    """Memory items in the transcript store's ``memory`` table."""

    def __init__(self, store: TranscriptStore) -> None:
        self.store = store

    def remember(self, user_id: str, kind: str, text: str, session_id: str, turn_id: int) -> MemoryItem:
        """Store ``text`` if it is the person's own words from ``turn_id``, and that turn was not referred."""
        if kind not in KINDS:
            raise InputError(f"unknown memory kind {kind!r}; known: {', '.join(KINDS)}")
        turn = self.store.turn(turn_id)
        session = self.store.session(turn.session_id)
        if turn.role != "user" or session.id != session_id or session.user_id != user_id:
            raise InputError("only the person's own words, from their own session, can be remembered")
        if " ".join(text.split()) not in " ".join(turn.text.split()):
            raise InputError("a memory item must be an exact excerpt of what the person said")
        if self._referred(turn.session_id, turn.idx):
            raise InputError("a turn the safety screen referred is never remembered")
        same = next((i for i in self.items(user_id, kind) if i.text == text and i.status == "open"), None)
        if same:  # said again in another session: one item, not two
            return same
        stamp = now()
        with self.store.lock:
            item_id = self.store.db.insert(
                "INSERT INTO memory (user_id, kind, text, session_id, turn_id, status, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?)", (user_id, kind, text, session_id, turn_id, "open", stamp, stamp))
        return self.get(item_id)

    def _referred(self, sid: str, idx: int) -> bool:
        turns = self.store.turns(sid)
        around = [t for t in turns if t.idx in (idx, idx + 1)]
        return any(t.meta.get("safety") for t in around)

    def get(self, item_id: int, user_id: str | None = None) -> MemoryItem:
        row = self.store.db.execute("SELECT * FROM memory WHERE id=?", (item_id,)).fetchone()
        if row is None or (user_id is not None and row["user_id"] != user_id):
            raise NotFoundError(f"no memory item {item_id}" + (f" for {user_id!r}" if user_id else ""))
        return MemoryItem(**dict(row))

    def items(self, user_id: str, kind: str | None = None) -> list[MemoryItem]:
        sql, args = "SELECT * FROM memory WHERE user_id=?", [user_id]
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        rows = self.store.db.execute(sql + " ORDER BY created_at DESC, id DESC", args).fetchall()
        return [MemoryItem(**dict(r)) for r in rows]

    def open_plan(self, user_id: str) -> MemoryItem | None:
        """The newest plan not yet followed up."""
        return next((i for i in self.items(user_id, "plan") if i.status == "open"), None)

    def correct(self, item_id: int, text: str, user_id: str) -> MemoryItem:
        """The person rewrites an item in their own words."""
        text = " ".join((text or "").split())
        if not text:
            raise InputError("a memory item cannot be empty; delete it instead")
        self.get(item_id, user_id)
        with self.store.lock:
            self.store.db.execute("UPDATE memory SET text=?, updated_at=? WHERE id=?", (text[:1000], now(), item_id))
        return self.get(item_id)

    def set_status(self, item_id: int, status: str) -> None:
        if status not in STATUSES:
            raise InputError(f"unknown status {status!r}; known: {', '.join(STATUSES)}")
        with self.store.lock:
            self.store.db.execute("UPDATE memory SET status=?, updated_at=? WHERE id=?", (status, now(), item_id))

    def delete(self, item_id: int, user_id: str | None = None) -> MemoryItem:
        item = self.get(item_id, user_id)
        with self.store.lock:
            self.store.db.execute("DELETE FROM memory WHERE id=?", (item_id,))
        return item
