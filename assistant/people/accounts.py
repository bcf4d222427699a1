"""Accounts: a user id, a role and a password hash (scrypt, salted), stored in the transcript database.

>>> import tempfile, pathlib
>>> from assistant.transcripts import TranscriptStore
>>> accounts = Accounts(TranscriptStore(pathlib.Path(tempfile.mkdtemp()) / "t.sqlite3"))
>>> accounts.add("ana", "member", "correct horse").role
'member'
>>> accounts.verify("ana", "correct horse"), accounts.verify("ana", "wrong")
(True, False)

Passwords are never stored or logged in plain text. The local user (``local``) always exists, has no
password and cannot log in: it is the person at the laptop when the app runs without accounts. This
module does not know about Gradio or requests (``access`` does).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from ..errors import InputError, NotFoundError
from ..transcripts import LOCAL_USER, TranscriptStore, now

ROLES = ("member", "reviewer")
_ID = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
# scrypt cost: ~50 ms per check on this machine's CPU, 16 MiB of memory
_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 8

__all__ = ["LOCAL_USER", "ROLES", "Accounts", "User", "hash_password", "check_password"]


@dataclass(frozen=True)
class User:
    id: str
    role: str
    created_at: str
    has_password: bool


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (hex); a fresh random salt each time."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison)."""
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                         dklen=len(digest) // 2)
    return hmac.compare_digest(got.hex(), digest)


def check_user_id(user_id: str) -> str:
    uid = (user_id or "").strip().lower()
    if not _ID.match(uid):
        raise InputError(f"bad user name {user_id!r}: use 1-64 lower-case letters, digits, '.', '_', '-' or '@'")
    return uid


class Accounts:
    """Users in the transcript store's ``users`` table."""

    def __init__(self, store: TranscriptStore) -> None:
        self.store = store

    def add(self, user_id: str, role: str, password: str | None) -> User:
        """A new user; ``password`` may be None only for people who sign in through a trusted SSO header."""
        uid = check_user_id(user_id)
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}; known roles: {', '.join(ROLES)}")
        if uid == LOCAL_USER:
            raise InputError(f"{LOCAL_USER!r} is the built-in local user; choose another name")
        if password is not None and len(password) < MIN_PASSWORD:
            raise InputError(f"the password is too short: at least {MIN_PASSWORD} characters")
        if self.exists(uid):
            raise InputError(f"user {uid!r} already exists")
        with self.store.lock:
            self.store.db.execute("INSERT INTO users (id, role, password, created_at) VALUES (?,?,?,?)",
                                  (uid, role, hash_password(password) if password else None, now()))
        return self.get(uid)

    def set_password(self, user_id: str, password: str) -> None:
        uid = self.get(user_id).id
        if len(password) < MIN_PASSWORD:
            raise InputError(f"the password is too short: at least {MIN_PASSWORD} characters")
        with self.store.lock:
            self.store.db.execute("UPDATE users SET password=? WHERE id=?", (hash_password(password), uid))

    def exists(self, user_id: str) -> bool:
        return self.store.db.execute("SELECT 1 FROM users WHERE id=?", ((user_id or "").lower(),)).fetchone() is not None

    def get(self, user_id: str) -> User:
        row = self.store.db.execute("SELECT * FROM users WHERE id=?", ((user_id or "").lower(),)).fetchone()
        if row is None:
            raise NotFoundError(f"no user {user_id!r}; add one with `coach users add NAME --role member`")
        return User(row["id"], row["role"], row["created_at"], bool(row["password"]))

    def all(self) -> list[User]:
        rows = self.store.db.execute("SELECT * FROM users ORDER BY id").fetchall()
        return [User(r["id"], r["role"], r["created_at"], bool(r["password"])) for r in rows]

    def verify(self, user_id: str, password: str) -> bool:
        """Login check for Gradio's ``auth``: an unknown user or the local user never passes."""
        row = self.store.db.execute("SELECT password FROM users WHERE id=?", ((user_id or "").lower(),)).fetchone()
        if row is None:
            check_password(password, hash_password("x" * MIN_PASSWORD))  # same cost: no timing hint of who exists
            return False
        return check_password(password or "", row["password"])
