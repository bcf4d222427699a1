"""What a manager's sentence does to the employee in a rehearsal: a dismissal, a leading question, an
acknowledgement, or something else. The ``move`` head over the shared sentence embedding.

>>> manager_moves(["Calm down, it's not a big deal.", "You'd agree the deadline was fair, wouldn't you?"])  # doctest: +SKIP
['dismissive', 'leading_question']

A multinomial logistic-regression head over word and character n-grams beside the MiniLM vector
(``evals/models/move.json``, trained by ``coach understand train move`` on ``evals/understanding/move/``:
manager sentences written for rehearsal by two helpers who saw no code or persona lines; n-grams chosen on dev,
0.842 against 0.775 for the embedding alone). The head's most likely move is used whatever its confidence.
On a blind split by another writer it is right 0.877 of the time, against 0.606 for the regular expressions
it replaced (``docs/rehearsal.md``). The coder's codes (open question, reflection, advice, affirmation) and
the ``next_step`` head are read beside it (``rehearsal.move_of``).
"""

from __future__ import annotations

from .turn import TurnSignals


def manager_moves(sentences: list[str]) -> list[str]:
    """For each sentence: ``dismissive``, ``leading_question``, ``acknowledgement`` or ``other``."""
    if not sentences:
        return []
    from .encoder import embed

    reader = TurnSignals()
    return [reader._read("move", v, s).best for v, s in zip(embed(sentences), sentences, strict=True)]
