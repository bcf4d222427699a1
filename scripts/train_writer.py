"""Fine-tune the embedded SmolLM2-135M with LoRA to write a reflection and a question; export a GGUF adapter.

    .venv/bin/python scripts/train_writer.py --out /tmp/writer [--epochs 2] [--limit N]

Reads ``evals/understanding/replies/*.jsonl`` (rows: audience, stage, previous, message, reflection,
question), hash-splits 90/10 into train and dev by the message text, trains a LoRA adapter (r=16, every
projection) on the reply tokens only, reports dev loss per epoch, keeps the best epoch, writes greedy
samples of dev replies and converts the adapter with llama.cpp's ``convert_lora_to_gguf.py`` (from the
llama-cpp-python sdist, ``--convert-script``). Needs ``peft`` (``requirements/train.txt``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.config import shipped_model_path  # noqa: E402
from assistant.writer import load_examples, prompt_messages, target  # noqa: E402

DATA = ROOT / "evals" / "understanding" / "replies"


def load_rows(folder: Path = DATA) -> list[dict]:
    return [row.model_dump() for row in load_examples(folder)]


def split(row: dict) -> str:
    h = int(hashlib.sha256(row["message"].encode()).hexdigest()[:8], 16)
    return "dev" if h % 10 == 0 else "train"


def encode(tok, row: dict) -> tuple[list[int], list[int]]:
    msgs = prompt_messages(row["audience"], row["stage"], row["previous"], row["message"])
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    reply = target(row["reflection"], row["question"]) + "<|im_end|>"
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    r = tok(reply, add_special_tokens=False)["input_ids"]
    return p + r, [-100] * len(p) + r


def batches(items: list, size: int, shuffle: bool, seed: int) -> list[list]:
    order = sorted(items, key=lambda x: len(x[0]))
    groups = [order[i:i + size] for i in range(0, len(order), size)]
    if shuffle:
        random.Random(seed).shuffle(groups)
    return groups


def collate(group: list, pad: int) -> dict[str, torch.Tensor]:
    n = max(len(ids) for ids, _ in group)
    ids = torch.full((len(group), n), pad)
    labels = torch.full((len(group), n), -100)
    mask = torch.zeros((len(group), n), dtype=torch.long)
    for i, (a, b) in enumerate(group):
        ids[i, : len(a)] = torch.tensor(a)
        labels[i, : len(b)] = torch.tensor(b)
        mask[i, : len(a)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def dev_loss(model, dev: list, pad: int) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for group in batches(dev, 16, False, 0):
            b = collate(group, pad)
            out = model(**b)
            n = int((b["labels"][:, 1:] != -100).sum())
            total += float(out.loss) * n
            count += n
    model.train()
    return total / max(count, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--convert-script", type=Path,
                    default=Path("/tmp/sdist/llama_cpp_python-0.3.36/vendor/llama.cpp/convert_lora_to_gguf.py"))
    args = ap.parse_args()
    torch.manual_seed(7)
    torch.set_num_threads(args.threads)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = shipped_model_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    args.out.mkdir(parents=True, exist_ok=True)
    base_dir = args.out / "base-config"
    model.config.architectures = ["LlamaForCausalLM"]  # the GGUF loader leaves it unset; the converter needs it
    model.config.save_pretrained(base_dir)
    conf = json.loads((base_dir / "config.json").read_text())
    conf.pop("quantization_config", None)  # the weights are dequantised; the converter reads only the config
    (base_dir / "config.json").write_text(json.dumps(conf, indent=1))
    tok.save_pretrained(base_dir)

    rows = load_rows(args.data)
    train_rows = [r for r in rows if split(r) == "train"]
    dev_rows = [r for r in rows if split(r) == "dev"]
    if args.limit:
        train_rows, dev_rows = train_rows[: args.limit], dev_rows[: max(8, args.limit // 10)]
    train = [encode(tok, r) for r in train_rows]
    dev = [encode(tok, r) for r in dev_rows]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    print(f"rows: train {len(train)}, dev {len(dev)}; tokens/epoch {sum(len(a) for a, _ in train)}", flush=True)

    cfg = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.05, task_type="CAUSAL_LM",
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(model, cfg)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    steps = args.epochs * math.ceil(len(train) / args.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * max(0.05, 1 - s / steps))
    best = (dev_loss(model, dev, pad), 0)
    print(f"epoch 0 dev loss {best[0]:.4f}", flush=True)
    t0, step = time.time(), 0
    for epoch in range(1, args.epochs + 1):
        for group in batches(train, args.batch, True, epoch):
            loss = model(**collate(group, pad)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 20 == 0:
                print(f"step {step}/{steps} loss {float(loss):.3f} {time.time() - t0:.0f}s", flush=True)
        loss = dev_loss(model, dev, pad)
        print(f"epoch {epoch} dev loss {loss:.4f} ({time.time() - t0:.0f}s)", flush=True)
        if loss < best[0]:
            best = (loss, epoch)
            model.save_pretrained(args.out / "adapter")
            convert(args.convert_script, args.out / "adapter", base_dir, args.out / "writer-lora.gguf")
    print(f"kept epoch {best[1]} (dev loss {best[0]:.4f})", flush=True)
    (args.out / "train.json").write_text(json.dumps({
        "rows_train": len(train), "rows_dev": len(dev), "epochs": args.epochs, "kept_epoch": best[1],
        "dev_loss": best[0], "rank": args.rank, "lr": args.lr, "seconds": round(time.time() - t0)}, indent=1))
    if best[1] == 0:
        raise SystemExit("no epoch improved on the base model's dev loss")
    print("wrote", args.out / "writer-lora.gguf", flush=True)


def convert(script: Path, adapter: Path, base: Path, out: Path) -> None:
    """llama.cpp's converter: the PEFT adapter as a GGUF LoRA that ``Llama(lora_path=...)`` loads."""
    subprocess.run([sys.executable, str(script), str(adapter), "--base", str(base), "--outtype", "f16",
                    "--outfile", str(out)], check=True, capture_output=True)


if __name__ == "__main__":
    main()
