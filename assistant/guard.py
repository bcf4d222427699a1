"""The reply guard: exactly one open question, last; no advice; at most 60 words; none of our prompt text.

>>> check_reply("It sounds like you feel stuck. What would growth look like for you?")
[]
>>> check_reply("You should ask for a raise. Do you agree?")
['advice', 'closed_question']

Also the grammar that makes llama.cpp produce that shape the first time. This module does not generate
or retrieve anything; ``chain`` decides what to do with a failing reply.
"""

from __future__ import annotations

import re

from .understanding.coder import code_batch, in_turn, split_sentences

MAX_WORDS = 60
_LEAK = re.compile(r"\b(system prompt|candidate questions|handbook notes|coaching stage:|my instructions|"
                   r"as an ai|language model|i am an ai|i'm an ai|coachee:)", re.I)
_ADVICE_HINT = re.compile(r"\b(you should|you need to|you must|i recommend|i suggest|try to|make sure|"
                          r"why don't you|have you considered|it might help to|consider \w+ing)\b", re.I)


def clean_reply(text: str) -> str:
    """Strip speaker labels, quotes and stray whitespace a model adds."""
    text = re.sub(r"^\s*(coach|assistant|reply)\s*:\s*", "", text.strip(), flags=re.I)
    text = text.strip().strip('"').strip()
    return " ".join(text.split())


def _ngrams(text: str, n: int = 7) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z']+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def check_reply(text: str, secret: str = "", trusted: list[str] | None = None) -> list[str]:
    """Problems with a reply (empty list: it may be shown). ``secret``: prompt text that must not leak;
    ``trusted``: question-bank questions, open by construction (validated when the bank loads)."""
    problems: list[str] = []
    text = clean_reply(text)
    if not text:
        return ["empty"]
    if len(text.split()) > MAX_WORDS:
        problems.append("too_long")
    sentences = split_sentences(text)
    codes = code_batch(sentences, in_turn(sentences))
    if "advice" in codes or _ADVICE_HINT.search(text):
        problems.append("advice")
    questions = text.count("?")
    if questions == 0:
        problems.append("no_question")
    elif questions > 1:
        problems.append("several_questions")
    elif not sentences[-1].endswith("?"):
        problems.append("question_not_last")
    elif codes[-1] != "open_question" and sentences[-1] not in (trusted or []):
        problems.append("closed_question")
    if _LEAK.search(text) or (secret and _ngrams(text) & _ngrams(secret)):
        problems.append("prompt_leak")
    from .quality import broken_sentences  # the rules a reader's "garbled" starts from

    if broken_sentences(text):
        problems.append("broken_sentence")
    return problems


_STOPWORDS = set("the a an and or but to of in on for with at by from is are was were be been it its this that "
                 "you your i me my we our they them he she his her what how feel feels like sounds".split())


def _content_words(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z]+", text.lower()) if w not in _STOPWORDS and len(w) > 2}


def reflection_problems(reply: str, message: str) -> list[str]:
    """A reflection must reflect: share at least one content word with what the coachee said."""
    sentences = split_sentences(clean_reply(reply))
    if len(sentences) < 2:
        return []
    said = _content_words(message)
    if said and not (_content_words(" ".join(sentences[:-1])) & said):
        return ["reflection_off_topic"]
    return []


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def reply_grammar(candidates: list[str], free: bool = True, reflect: bool = True) -> str:
    """GBNF for "<reflection>. <one question>?" where the question is a candidate or (if ``free``) a
    new What/How question."""
    options = [_literal(c.strip()) for c in candidates if c.strip().endswith("?")]
    alternatives = list(options)
    if free or not options:
        alternatives.append("free")
    rules = [
        "root ::= refl \" \" q" if reflect else "root ::= q",
        "refl ::= \"It sounds like you\" [^?!.\\n\"]{8,90} \".\"",
        "q ::= " + " | ".join(alternatives),
        "free ::= (\"What \" | \"How \") [^?!.\\n\"]{6,90} \"?\"",
    ]
    return "\n".join(rules) + "\n"
