"""Domain errors. Library code raises these; the CLI and the UI translate them once, at the edge.

Deliberately small: each error carries a one-line message meant for a person, and an exit code.
It does not format, log or print anything.
"""

from __future__ import annotations


class CoachError(Exception):
    """Base for every error a user may see. ``str(err)`` is one line."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ConfigError(CoachError):
    """A setting is wrong: unknown backend or mode, missing model file, bad path."""

    exit_code = 2


class InputError(CoachError):
    """The user's input cannot be used: empty or oversized message, malformed JSON line."""

    exit_code = 2


class BackendError(CoachError):
    """The chat model or embedding backend failed: unreachable server, bad key, crash."""

    exit_code = 3


class NotFoundError(CoachError):
    """A named thing does not exist: session, persona, run, page."""

    exit_code = 4


class DataError(CoachError):
    """A data file (page, prompt, persona, scenario) does not match its schema."""

    exit_code = 5


def check_text(text: str, what: str = "the message") -> str:
    """A message that arrived as text: not invalid UTF-8 (undecodable bytes reach Python as surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what} is not valid UTF-8 text") from None
    return text
