"""The behaviour coder: the stored model, its figures on held-out data, splitting, and properties.

The figures below are the ones in docs/coder.md; they are checked against the committed model file, so a
retrained model that gets worse (or a data change that moves the split) fails here.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.understanding import coder as coding
from assistant.understanding.coder import (
    CODES,
    code_batch,
    code_line,
    code_sentence,
    code_text,
    is_open_question,
    split_sentences,
)

# docs/coder.md: the committed model's figures on each held-out set (checked, so a worse retrain fails)
DOC = {"mibot_test": 0.836, "own_test": 0.935, "external": 0.933, "transcribed": 0.882}
TOLERANCE = 0.02


@pytest.fixture(scope="session")
def shared_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The coder needs no handbook index: an empty folder instead of the 15 s build in conftest."""
    return tmp_path_factory.mktemp("no-index")


@pytest.fixture(scope="module")
def blind_report() -> dict:
    from assistant.understanding.report import coder_report

    return coder_report("blind")  # embeds each test set once; codes are cached per sentence


# -- the stored model --------------------------------------------------------------------------------
def test_model_file_is_plain_json_matching_the_data() -> None:
    from assistant.understanding import tuned
    from assistant.understanding.data import CODER_DIR, file_sha

    spec = json.loads(coding.MODEL_PATH.read_text(encoding="utf-8"))
    assert spec["format"] == coding.FORMAT == 4 and set(spec["classes"]) == set(coding.FINE)
    assert len(spec["coef"]) == len(spec["classes"]) and {len(row) for row in spec["coef"]} == {coding.DIM}
    encoder = spec["encoder"]
    assert encoder["base"] == coding.EMBEDDING == "all-MiniLM-L6-v2" and encoder["context"] == "previous sentence"
    weights = coding.MODEL_PATH.parent / encoder["weights"]
    assert tuned.file_sha(weights) == encoder["sha256"], "weights changed without coder.json"
    assert set(spec["rules"]) <= set(coding.rule_names())
    sources = [coding.ROOT / "evals" / "utterances.jsonl", CODER_DIR / "mibot.jsonl", CODER_DIR / "written.jsonl"]
    assert spec["data_sha256"] == file_sha(*sources), "labelled data changed: run `coach understand train coder`"


def test_stored_weights_are_safetensors_of_the_tuned_layers_only() -> None:
    from assistant.understanding import tuned

    spec = coding.load_model()
    assert spec is not None
    raw = spec["weights"].read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])  # safetensors: no pickle anywhere
    names = {k for k in header if k != "__metadata__"}
    assert names and all(any(k.startswith(f"encoder.layer.{i}.") for i in spec["encoder"]["layers"]) for k in names)
    assert {header[k]["dtype"] for k in names} == {"F16"}
    tokenizer, model = tuned.load(spec["weights"], spec["encoder"]["sha256"], tuple(spec["encoder"]["layers"]))
    frozen = dict(tuned.fresh()[1].named_parameters())
    changed = {n for n, p in model.named_parameters() if not bool((p == frozen[n]).all())}
    assert changed == names  # the stored layers are in, nothing else moved


def test_reading_the_model_spec_needs_only_numpy() -> None:
    code = ("import sys; from assistant.understanding import coder as coding; m = coding.load_model(); "
            "assert m is not None and m['W'].shape == (coding.DIM, len(coding.FINE)); "
            "assert not {'sklearn', 'torch'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=coding.ROOT, timeout=60)


def test_a_stale_or_damaged_model_is_refused_naming_the_file(tmp_path: Path) -> None:
    from assistant.understanding import tuned

    spec = json.loads(coding.MODEL_PATH.read_text(encoding="utf-8"))
    stale = {**spec, "encoder": {**spec["encoder"], "context": "none"}}
    path = tmp_path / "coder.json"
    path.write_text(json.dumps(stale), encoding="utf-8")
    with pytest.raises(ValueError, match="coach understand train coder"):
        coding.load_model(path)
    damaged = tmp_path / "coder-encoder.safetensors"
    damaged.write_bytes(coding.WEIGHTS_PATH.read_bytes()[:-10] + b"0" * 10)
    with pytest.raises(ValueError, match="coder-encoder.safetensors: its sha256 differs"):
        tuned.load(damaged, spec["encoder"]["sha256"], tuple(spec["encoder"]["layers"]))


# -- figures ------------------------------------------------------------------------------------------
def test_held_out_figures_match_the_docs(blind_report: dict) -> None:
    for name, accuracy in DOC.items():
        assert blind_report[name]["accuracy"] == pytest.approx(accuracy, abs=TOLERANCE), name
    assert blind_report["external"]["n"] == 150


def test_report_shape(blind_report: dict) -> None:
    report = blind_report["own_test"]
    labels, matrix = report["confusion"]["labels"], report["confusion"]["matrix"]
    assert set(labels) == set(CODES) == set(report["per_class"])
    assert len(matrix) == len(labels) and all(len(row) == len(labels) for row in matrix)
    assert sum(map(sum, matrix)) == report["n"]
    for code, row in zip(labels, matrix, strict=True):
        assert sum(row) == report["per_class"][code]["support"]
    assert {"simple_reflection", "complex_reflection"} <= set(report["fine"]["per_class"])
    json.dumps(report)  # plain types only: the CLI prints it


def test_mibot_is_split_by_session_never_by_utterance() -> None:
    from assistant.understanding.data import CODER_DIR, coder_rows, read_rows
    from assistant.understanding.data import _MibotRow as Row

    sessions = {r.session: r for r in read_rows(CODER_DIR / "mibot.jsonl", Row)}
    groups = {name: {r.group for r in coder_rows(name) if r.source == "mibot"} for name in ("train", "dev", "mibot_test")}
    assert all(groups.values()) and len(sessions) == sum(map(len, groups.values()))
    assert groups["train"].isdisjoint(groups["dev"]) and groups["train"].isdisjoint(groups["mibot_test"])
    assert groups["dev"].isdisjoint(groups["mibot_test"])


def test_unknown_split_is_an_error() -> None:
    from assistant.understanding.data import coder_rows

    with pytest.raises(ValueError, match="known: train, dev"):
        coder_rows("nope")


def test_without_a_model_file_the_rules_and_heuristic_still_code(tmp_path: Path) -> None:
    missing = tmp_path / "none.json"
    codes = code_batch(["It sounds hard.", "What would help?", "Your BMI is 31."], model_path=missing)
    assert codes[1] == "open_question" and set(codes) <= set(CODES)


def test_contexts_must_match_the_sentences() -> None:
    with pytest.raises(ValueError, match="2 sentences but 1 contexts"):
        coding.fine_batch(["Hello.", "What now?"], [""])


def test_details_give_a_main_code_and_per_sentence_codes() -> None:
    detail = coding.code_details(["You've clearly thought hard about this. What would a good week look like?"])[0]
    assert detail["code"] == "open_question" and len(detail["sentences"]) == 2
    assert all(s["code"] in CODES and s["fine"] in coding.FINE for s in detail["sentences"])


def test_a_sentence_longer_than_the_model_reads_is_coded_not_an_error() -> None:
    """A short sentence, then one far past the encoder's token limit (a model that writes freely can): the
    long one is cut to fit, as a long context is, instead of the tokenizer raising and failing the reply."""
    long = "Thank you for telling me about the project" + " and the meetings and the deadlines" * 30 + "."
    detail = coding.code_details([f"That is interesting. {long}"])[0]
    assert len(detail["sentences"]) == 2 and detail["code"] in CODES


# -- splitting and coding -----------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "sentences"), [
    ("It sounds hard. What would help?", ["It sounds hard.", "What would help?"]),
    ("Is it A? Or B?", ["Is it A?", "Or B?"]),
    ('She said "no." Then what?', ['She said "no."', "Then what?"]),
    ("It was 3.5 hours.  Long   day.", ["It was 3.5 hours.", "Long day."]),
    ("so how did that go", ["so how did that go"]),
    ("   ", []),
])
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_transcript_disfluencies_are_normalised() -> None:
    assert coding.normalise("So, um, what, what's been happening") == "what's been happening"
    assert coding.normalise("Well done.") == "Well done."
    assert code_sentence("so, uh, how did the weekend go") == "open_question"


def test_a_line_takes_its_most_informative_sentence() -> None:
    assert code_line("Okay. It sounds like a hard week. What would help?") == "open_question"
    assert code_line("Thanks. You should email her tonight.") == "advice"
    assert code_line("") == "other"
    lines = ["Hi. Did you sleep?", "Your BMI is 31. You should walk more.", "Mm. Right."]
    assert coding.code_utterances(lines) == ["closed_question", "advice", "other"]


def test_code_batch_equals_per_sentence_coding(blind_report: dict) -> None:
    sentences = ["Hello.", "Your team seems stretched.", "You've worked really hard on this.",
                 "Why don't you ask for a raise?", "Did you talk to her?", "Most people feel like this at first.",
                 "I used to manage a team myself."]
    batch = code_batch(sentences)
    coding._CACHE.clear()
    assert batch == [code_sentence(s) for s in sentences]
    in_turn = code_batch(sentences, coding.in_turn(sentences))  # one turn: each sentence after the one before
    assert [c for _, c in code_text(" ".join(sentences))] == in_turn
    detail = coding.code_details([" ".join(sentences)], contexts=["Hi there."])[0]
    assert [s["code"] for s in detail["sentences"]] == code_batch(sentences, ["Hi there.", *sentences[:-1]])


def test_code_batch_is_fast_once_warm(blind_report: dict) -> None:
    times = []
    for i in range(5):
        fresh = [f"That sounds like a lot to carry, {i}.", f"You kept going anyway {i} times.", "Where to next?"]
        start = time.perf_counter()
        code_batch(fresh)
        times.append(time.perf_counter() - start)
    # ~15 ms on an idle laptop; the bound is loose because test machines are shared
    assert statistics.median(times) < 0.25


WORDS = st.lists(st.sampled_from(["you", "feel", "about", "the", "team", "would", "change", "matters", "your",
                                  "manager", "next", "year", "help", "it", "that", "do", "want", "think", "most",
                                  "should", "try", "need", "to", "ask", "her", "this", "role"]), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=80))
def test_every_code_is_known_for_any_text(text: str) -> None:
    assert {c for _, c in code_text(text)} <= set(CODES)
    assert code_line(text) in CODES


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["What", "How", "Why", "So what", "And how", "Um, what"]), WORDS)
def test_a_wh_question_ending_in_a_question_mark_is_open(wh: str, words: list[str]) -> None:
    # fact-seeking wh-questions ("How many...", "When...", "Who...") are closed in MITI: not generated here
    assert is_open_question(f"{wh} {' '.join(words)}?")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["Do", "Did", "Is", "Are", "Can", "Could", "Would", "Have", "Will", "Don't", "So do"]), WORDS)
def test_an_auxiliary_verb_question_is_closed(aux: str, words: list[str]) -> None:
    assert code_sentence(f"{aux} {' '.join(words)}?") == "closed_question"
