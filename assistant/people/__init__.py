"""People: accounts and roles, who may call what, memory across sessions, and a person's own data.

- ``accounts``: users with a role (``member`` or ``reviewer``) and a scrypt password hash; the local user.
- ``access``: who is asking (a Gradio request: login, trusted SSO header, or the local user) and the
  server-side role and ownership checks every Gradio endpoint goes through.
- ``memory``: the person's goal and plans in their own words, and the follow-up that opens the next session.
- ``rights``: export, forget and purge (retention).
- ``panel``: the "My sessions" and "Memory" UI pieces, built from the functions above.

Tables live in the transcript store (migration 004); this package never writes another module's rows
except when forgetting or purging a person's data, which is its job.
"""

from __future__ import annotations

from .accounts import LOCAL_USER, ROLES, Accounts, User
from .memory import Memory, MemoryItem

__all__ = ["LOCAL_USER", "ROLES", "Accounts", "Memory", "MemoryItem", "User"]
