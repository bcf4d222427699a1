"""The understanding layer: every decision about what a person meant, learned from labelled data.

Signals (each with train / dev / blind files under ``evals/understanding/``, a head file under
``evals/models/`` and a figure in ``docs/understanding.md``):

- ``safety``: is this message a disclosure, and of which kind (``safety.py``, ``backstop.py``);
- ``coder``: what a coach or manager sentence does (``coder.py``);
- ``audience``, ``grow``: who is speaking and which GROW aim a coachee message meets (``turn.py``);
- ``next_step``: does a manager sentence propose a next step (``proposals.py``);
- ``move``: is a manager sentence a dismissal, a leading question or an acknowledgement
  (``manager_moves.py``);
- ``outcome``: did a remembered plan happen (``outcome.py``); ``theme``: does a message come back to an earlier
  goal or plan (``themes.py``); ``not_yet``: does a coachee want time before deciding (``turn.py``).

All signals read the same local MiniLM sentence embedding (``encoder.py``); heads are plain JSON
(``heads.py``), trained by ``coach understand train SIGNAL`` (``train.py``) and reported by
``coach understand report`` (``report.py``). Referral texts and resources live in ``referrals.py``.
"""

from __future__ import annotations

from .referrals import referral
from .safety import KINDS, SafetyScreen

__all__ = ["KINDS", "SafetyScreen", "referral"]
