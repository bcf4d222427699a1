"""Who is asking, and may they? The server-side checks every Gradio endpoint goes through.

>>> Identity("ana", "member").may("member"), Identity("ana", "member").may("reviewer")
(True, False)
>>> Identity(None, None).may("anyone")
False

Three modes (``COACH_AUTH``): ``none`` — the laptop default, one person, no login: every request is the
local user, who is both member and reviewer; ``users`` — Gradio's login form checked against the
accounts table; ``header`` — an SSO proxy in front of the app sets ``COACH_TRUSTED_HEADER`` to the
person's user name (only ever set this behind a proxy that strips the header from clients). In the two
team modes a request's identity is read from the request itself, on the server, for every call: the UI
hiding a tab is a convenience, never the check. This module does not build UI.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..config import Settings
from ..errors import NotFoundError
from ..transcripts import LOCAL_USER, TranscriptStore
from .accounts import Accounts

NEEDS = ("anyone", "member", "reviewer")  # "anyone" still means a signed-in person (or the local user)
DENIED = "Not allowed"


@dataclass(frozen=True)
class Identity:
    user_id: str | None
    role: str | None  # member | reviewer | local (both, no login) | None (nobody)

    def may(self, need: str) -> bool:
        if self.user_id is None or self.role is None:
            return False
        return need == "anyone" or self.role in ("local", need)


NOBODY = Identity(None, None)
LOCAL = Identity(LOCAL_USER, "local")


class Gate:
    """Resolves a Gradio request to an Identity and wraps handlers so each call is checked."""

    def __init__(self, settings: Settings, store: TranscriptStore) -> None:
        self.mode = settings.auth
        self.header = (settings.trusted_header or "").strip().lower()
        self.accounts = Accounts(store)

    def who(self, request: gr.Request | None) -> Identity:
        if self.mode == "none":
            return LOCAL
        if request is None:
            return NOBODY
        if self.mode == "header":
            headers = getattr(request, "headers", None) or {}
            name = headers.get(self.header) if hasattr(headers, "get") else None
        else:
            name = getattr(request, "username", None)
        if not name:
            return NOBODY
        try:
            user = self.accounts.get(str(name).strip().lower())
        except NotFoundError:
            return NOBODY
        return Identity(user.id, user.role) if user.id != LOCAL_USER else NOBODY

    def check(self, need: str, request: gr.Request | None) -> Identity:
        who = self.who(request)
        if not who.may(need):
            raise gr.Error(f"{DENIED}: this needs a signed-in {'person' if need == 'anyone' else need}.",
                           print_exception=False)
        return who

    def guard(self, need: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(who, *inputs)`` as a Gradio handler ``(*inputs, request)`` that checks ``need`` first."""
        if need not in NEEDS:
            raise ValueError(f"unknown need {need!r}; known: {', '.join(NEEDS)}")
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())[1:]  # without ``who``
        request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)

        if inspect.isgeneratorfunction(fn):
            def wrapper(*args: Any) -> Any:
                who = self.check(need, args[-1])
                yield from fn(who, *args[:-1])
        else:
            def wrapper(*args: Any) -> Any:
                return fn(self.check(need, args[-1]), *args[:-1])

        wrapper.__signature__ = sig.replace(parameters=[*params, request])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {"request": gr.Request}
        wrapper.__name__ = wrapper.__qualname__ = fn.__name__
        wrapper.coach_need = need  # type: ignore[attr-defined]  # read by the endpoint security test
        return wrapper

    def launch_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Blocks.launch``: Gradio's login form, or the trusted header as identity."""
        if self.mode == "users":
            return {"auth": self.accounts.verify,
                    "auth_message": "Sign in with the account your coach administrator made (coach users add)."}
        if self.mode == "header":
            return {"auth_dependency": lambda req: req.headers.get(self.header) or None}
        return {}


def visible_to_reviewers(store: TranscriptStore, sid: str) -> bool:
    """Eval-run transcripts, and a person's own session only when they shared it."""
    if not store.has_session(sid):
        return False
    s = store.session(sid)
    return s.run_id is not None or bool(s.shared)


def owned(store: TranscriptStore, user_id: str, sid: str | None) -> str | None:
    """``sid`` if ``user_id`` owns it (and it is not an eval session), else None."""
    if not sid or not store.has_session(sid):
        return None
    s = store.session(sid)
    return sid if s.user_id == user_id and s.run_id is None else None


def set_shared(store: TranscriptStore, user_id: str, sid: str, shared: bool) -> None:
    """Share one of your sessions with reviewers, or stop sharing it."""
    if owned(store, user_id, sid) is None:
        raise NotFoundError(f"no session {sid!r} for {user_id!r}")
    with store.lock:
        store.db.execute("UPDATE sessions SET shared=? WHERE id=?", (int(shared), sid))
