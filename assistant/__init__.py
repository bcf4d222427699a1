"""The high-performer coach: asks thought-provoking questions instead of giving answers.

>>> from assistant import Coach, load_settings                  # doctest: +SKIP
>>> Coach(load_settings(backend="fake")).turn("I feel stuck")["reply"]   # doctest: +SKIP

Only what ``app.py``, the CLI and the eval harness use is re-exported; names load lazily so that
``import assistant`` stays cheap (the models and Chroma load on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Settings": "config", "load_settings": "config",
    "Coach": "chain",
    "HandbookIndex": "retrieval",
    "TranscriptStore": "transcripts",
    "Rehearsal": "rehearsal", "debrief": "debrief", "load_personas": "personas",
    "code_text": "understanding.coder", "code_utterances": "understanding.coder",
    "run_suites": "evals", "compare_runs": "evals",
    "build_app": "ui",
    "CoachError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'assistant' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
