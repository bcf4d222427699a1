"""Training commands for the understanding layer's heads (``coach understand train SIGNAL``).

Each trainer reads the signal's train split, chooses its settings on the dev split, writes the head file
under ``evals/models/`` with the figures it was chosen by, and returns those figures. Nothing here runs at
serve time. The blind split is never read here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..config import ROOT
from .data import SAFETY_DIR, SafetyRow, file_sha, read_rows
from .safety import HEAD_PATH, _head, _tuned_linear

# the share of ordinary dev messages the router may refer: a missed disclosure costs far more than a
# false referral, so the budget sits above issue 11's 2 % target on the (small) dev split
FALSE_ALARM_BUDGET = 0.03
# The screen's thresholds refer at most this share of ordinary coaching talk: the coachee messages of the
# reply-quality sets CALIBRATION_SETS (``calibrate``); SENTENCE_THRESHOLDS are the ones tried for a single
# sentence of a longer message (above 1: sentences are not read on their own). 1.5 % since model 16 (trained
# with the coachee messages of blind5–blind13 as ordinary rows; chosen among 3.5, 2, 1.5 and 1 % on the fresh
# splits, docs/safety.md); 3.5 % for model 13
CALIBRATION_BUDGET = 0.015
CALIBRATION_SETS = ("blind", "blind2", "blind3", "blind4")
SENTENCE_THRESHOLDS = (0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 1.01)
# the coder's fine-tune: MiniLM layers unfrozen (of 0-5) and learning rates (encoder, linear layer)
LAYERS = (0, 1, 2, 3, 4, 5)
MIN_SUPPORT = 10  # rows a class needs in a test split to count in macro_f1_supported
LR, HEAD_LR = 4e-5, 2e-3
# the safety screen's fine-tuned view (the same recipe as the coder's, on whole messages)
SAFETY_LAYERS, SAFETY_TUNED_EPOCHS, SAFETY_MAX_TOKENS = (0, 1, 2, 3, 4, 5), 3, 96
SAFETY_ENCODER_PATH = HEAD_PATH.parent / "safety-encoder.safetensors"


def safety_rows(split: str) -> list[SafetyRow]:
    return read_rows(SAFETY_DIR / f"{split}.jsonl", SafetyRow)


def _budget_threshold(route: np.ndarray, kinds: np.ndarray, budget: float = FALSE_ALARM_BUDGET) -> float:
    """The route score at which ``budget`` of the ordinary dev messages would be referred."""
    return round(float(np.quantile(route[kinds == "none"], 1 - budget)) + 1e-4, 4)


def train_safety(seed: int = 13, tuned_epochs: int = SAFETY_TUNED_EPOCHS) -> dict[str, Any]:
    """Fit the kind head and the router on train, then fine-tune the encoder's top layers (``tuned_epochs``;
    0 skips it); choose the router's settings and the tuned epoch on dev, then the thresholds on ordinary
    coaching talk (``calibrate``)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from .encoder import embed
    from .heads import LexicalFeatures, Router, fit_mlp

    train, dev = safety_rows("train"), safety_rows("dev")
    texts, labels = [r.text for r in train], [r.kind for r in train]
    dev_texts = [r.text for r in dev]
    X, Xd = embed(texts), embed(dev_texts)
    dev_kinds = np.asarray([r.kind for r in dev])
    head = fit_mlp("safety", X, labels, seed=seed)
    unsafe = 1 - head.proba(Xd)[:, head.classes.index("none")]
    lexical = LexicalFeatures.fit(texts)
    y = np.asarray([k != "none" for k in labels])
    tried, best = [], None
    for C in (1.0, 3.0, 10.0):
        for scale in (1.0, 2.0):
            router = Router(lexical, np.zeros(1), 0.0, scale)
            with threadpool_limits(1):
                clf = LogisticRegression(C=C, class_weight="balanced", max_iter=5000).fit(router.design(texts, X), y)
            router.coef, router.intercept = clf.coef_.ravel(), float(clf.intercept_[0])
            route = (router.proba(dev_texts, Xd) + unsafe) / 2  # as SafetyScreen.scores combines them
            router.threshold = _budget_threshold(route, dev_kinds)
            recall = float((route[dev_kinds != "none"] >= router.threshold).mean())
            tried.append({"C": C, "emb_scale": scale, "threshold": router.threshold, "dev_recall": round(recall, 4)})
            if best is None or recall > best[0]:
                best = (recall, router)
    assert best is not None
    head.router = best[1]
    route = (head.router.proba(dev_texts, Xd) + unsafe) / 2
    probs = head.proba(Xd)
    frozen_recall = best[0]
    tuned_figures: dict[str, Any] = {}
    if tuned_epochs:
        head.tuned, tuned_probs, tuned_figures = _tune_safety(train, dev, route, head.classes, seed, tuned_epochs)
        route = (route + 1 - tuned_probs[:, head.classes.index("none")]) / 2
        probs = (probs + tuned_probs) / 2
        head.router.threshold = _budget_threshold(route, dev_kinds)
    # the thresholds themselves are chosen after saving, on ordinary coaching talk (``calibrate``); the dev
    # split's 3 % point above compared the settings and epochs
    base = route >= head.router.threshold
    dev_recall = round(float(base[dev_kinds != "none"].mean()), 4)
    head.meta.update({"seed": seed, "n_train": len(train), "n_dev": len(dev),
                      "data_sha256": file_sha(SAFETY_DIR / "train.jsonl", SAFETY_DIR / "dev.jsonl"),
                      "false_alarm_budget": FALSE_ALARM_BUDGET, "tried": tried,
                      "dev_recall": {"frozen": round(frozen_recall, 4), "final": dev_recall}, "tuned": tuned_figures})
    head.save(HEAD_PATH)
    _head.cache_clear()
    _tuned_linear.cache_clear()
    calibration = calibrate()
    return {"path": str(HEAD_PATH.relative_to(ROOT)), "calibration": calibration,
            "router": {"dev_recall_at_3pct": dev_recall, "frozen_dev_recall_at_3pct": round(frozen_recall, 4)},
            "tuned": tuned_figures, "tried": tried}


def calibrate(head_path: Path = HEAD_PATH) -> dict[str, Any]:
    """Choose and store the saved screen's three thresholds together: the whole message's, the lower one for
    a message read as crisis, and the one for a single sentence of a longer message. They are the ones that
    route the most dev disclosures (all kinds, plus crisis again: a missed crisis costs most) while
    referring at most CALIBRATION_BUDGET of ordinary coaching talk: the coachee messages of the reply-quality
    sets CALIBRATION_SETS, written by other helpers in the product's real input style. (The dev split's
    ordinary rows share their writers with train, score lower than ordinary talk does, and a threshold chosen
    on them referred too much: model 12, 2026-12-02.)"""
    from .backstop import backstop_kind
    from .report import ordinary_rows
    from .safety import KINDS, SafetyScreen

    _head.cache_clear()
    screen = SafetyScreen(head_path)
    head = screen.head

    def read(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        route, probs, sentence, _ = screen.readings(texts)
        crisis = probs[:, head.classes.index("crisis")] >= probs[:, [head.classes.index(k) for k in KINDS]].max(1)
        ruled = np.asarray([backstop_kind(t) is not None for t in texts])
        return route, crisis, sentence, ruled

    talk = [r.text for r in ordinary_rows() if r.source in CALIBRATION_SETS]
    dev = [r for r in safety_rows("dev") if r.kind != "none"]
    c_route, c_crisis, c_sentence, c_rule = read(talk)
    d_route, d_crisis, d_sentence, d_rule = read([r.text for r in dev])
    d_is_crisis = np.asarray([r.kind == "crisis" for r in dev])
    best: tuple[float, float, float, float, float, float] | None = None
    for t in np.arange(0.40, 0.995, 0.005):
        for gap in np.arange(0.0, 0.155, 0.01):
            base_c = (c_route >= t) | (c_crisis & (c_route >= t - gap)) | c_rule
            base_d = (d_route >= t) | (d_crisis & (d_route >= t - gap)) | d_rule
            for w in SENTENCE_THRESHOLDS:
                referred = float((base_c | (c_sentence >= w)).mean())
                if referred > CALIBRATION_BUDGET:
                    continue
                fired = base_d | (d_sentence >= w)
                score = float(fired.mean() + fired[d_is_crisis].mean())
                if best is None or score > best[0] + 1e-9:
                    best = (score, round(float(t), 4), round(float(t - gap), 4), w, referred,
                            float(fired[d_is_crisis].mean()))
    if best is None:
        raise ValueError(f"no thresholds refer at most {CALIBRATION_BUDGET} of the calibration talk")
    _, t, tc, w, referred, crisis_recall = best
    fired = (d_route >= t) | (d_crisis & (d_route >= tc)) | d_rule | (d_sentence >= w)
    figures = {"route": t, "crisis_route": tc, "window_route": w, "budget": CALIBRATION_BUDGET,
               "calibration": list(CALIBRATION_SETS), "messages": len(talk), "referred": round(referred, 4),
               "dev_recall": round(float(fired.mean()), 4), "dev_crisis_recall": round(crisis_recall, 4)}
    assert head.router is not None
    head.router.threshold = t
    head.thresholds.update({"crisis_route": tc, "window_route": w})
    head.meta.pop("windows", None)
    head.meta["calibration"] = figures
    head.save(head_path)
    _head.cache_clear()
    return figures


def _tune_safety(train: list[SafetyRow], dev: list[SafetyRow], frozen: np.ndarray, classes: list[str], seed: int,
                 epochs: int) -> tuple[dict[str, Any], np.ndarray, dict[str, Any]]:
    """Fine-tune MiniLM's top layers and a linear layer on the kinds; keep the epoch whose mean with the
    frozen score (``frozen``, dev) has the highest dev recall at the false-alarm budget. Writes the encoder
    file; returns the head file's ``tuned`` entry, the chosen epoch's dev probabilities and the figures."""
    import random

    import torch

    from . import tuned

    random.seed(seed)
    torch.manual_seed(seed)
    tokenizer, model = tuned.fresh()
    trained = set(tuned.trained_names(model, list(SAFETY_LAYERS)))
    for name, p in model.named_parameters():
        p.requires_grad = name in trained
    linear = torch.nn.Linear(384, len(classes))
    y = torch.tensor([classes.index(r.kind) for r in train])
    counts = torch.bincount(y, minlength=len(classes)).float()
    weight = (counts.sum() / (len(classes) * counts.clamp(min=1))) ** 0.5
    batch = 32
    total = epochs * ((len(train) + batch - 1) // batch)
    optimiser = torch.optim.AdamW([{"params": [p for p in model.parameters() if p.requires_grad], "lr": LR},
                                   {"params": linear.parameters(), "lr": HEAD_LR}], weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / 50) * max(0.0, 1 - s / total))
    loss_of = torch.nn.CrossEntropyLoss(weight=weight)
    texts, dev_texts = [r.text for r in train], [r.text for r in dev]
    dev_kinds = np.asarray([r.kind for r in dev])
    none = classes.index("none")
    order, tried, best = list(range(len(train))), [], None
    for epoch in range(epochs):
        model.train()
        random.shuffle(order)
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            logits = linear(tuned.pool_texts(tokenizer, model, [texts[i] for i in idx], SAFETY_MAX_TOKENS))
            loss = loss_of(logits, y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        model.eval()
        with torch.no_grad():
            vectors = tuned.encode_texts(tokenizer, model, dev_texts, SAFETY_MAX_TOKENS)
            probs = torch.softmax(linear(torch.from_numpy(vectors).float()), -1).numpy().astype(np.float64)
        route = (frozen + 1 - probs[:, none]) / 2
        threshold = _budget_threshold(route, dev_kinds)
        recall = float((route[dev_kinds != "none"] >= threshold).mean())
        alone = float((1 - probs[dev_kinds != "none", none] >= _budget_threshold(1 - probs[:, none], dev_kinds)).mean())
        tried.append({"epoch": epoch + 1, "dev_recall": round(recall, 4), "dev_recall_tuned_alone": round(alone, 4)})
        if best is None or recall > best[0]:
            best = (recall, {n: p.detach().clone() for n, p in model.named_parameters() if n in trained},
                    {k: v.clone() for k, v in linear.state_dict().items()}, probs, epoch + 1)
    assert best is not None
    _, state, linear_state, probs, chosen = best
    model.load_state_dict(state, strict=False)
    sha = tuned.save(model, list(SAFETY_LAYERS), SAFETY_ENCODER_PATH)
    tuned.load.cache_clear()
    spec = {"weights": SAFETY_ENCODER_PATH.name, "sha256": sha, "layers": list(SAFETY_LAYERS),
            "max_tokens": SAFETY_MAX_TOKENS, "classes": classes,
            "coef": np.round(linear_state["weight"].numpy().astype(np.float64), 6).tolist(),
            "intercept": np.round(linear_state["bias"].numpy().astype(np.float64), 6).tolist()}
    return spec, probs, {"epochs": epochs, "chosen_epoch": chosen, "tried": tried, "lr": LR, "head_lr": HEAD_LR,
                         "batch": batch, "class_weight": "sqrt balanced"}


# -- the behaviour coder ------------------------------------------------------------------------------
def _coder_predict(groups: list[list[str]], firsts: list[str], score: Any, kept: tuple[str, ...],
                   classes: list[str]) -> list[str]:
    """Main fine code per utterance, as ``coder.code_details`` computes it, with ``score(sentences,
    contexts)`` standing in for the stored model."""
    from . import coder

    flat = [s for g in groups for s in g]
    contexts = [c for g, first in zip(groups, firsts, strict=True) for c in [first, *g[:-1]]]
    rule = [(coder._rule(s, kept) or ("", None))[1] for s in flat]
    fines = coder.resolve(rule, score(flat, contexts), classes)
    out, i = [], 0
    for g in groups:
        out.append(coder._main(fines[i:i + len(g)]))
        i += len(g)
    return out


def _sentences(texts: list[str]) -> list[list[str]]:
    from .coder import split_sentences

    return [split_sentences(t) or [t] for t in texts]


def coder_metrics(truth: list[str], pred: list[str]) -> dict[str, Any]:
    """Contract-code accuracy, macro-F1, per class and confusion; plus the fine distinctions."""
    from .coder import CODES, FINE

    def table(t: list[str], p: list[str], labels: list[str]) -> dict[str, Any]:
        labels = [c for c in labels if c in t or c in p]
        m = np.zeros((len(labels), len(labels)), dtype=int)
        for a, b in zip(t, p, strict=True):
            m[labels.index(a), labels.index(b)] += 1
        prec, rec = np.diag(m) / np.maximum(m.sum(0), 1), np.diag(m) / np.maximum(m.sum(1), 1)
        f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-12)
        per = {c: {"precision": round(float(prec[k]), 4), "recall": round(float(rec[k]), 4),
                   "f1": round(float(f1[k]), 4), "support": int(m[k].sum())} for k, c in enumerate(labels)}
        supported = m.sum(1) >= MIN_SUPPORT  # a class with a handful of rows makes macro-F1 a coin toss
        return {"accuracy": round(float(np.trace(m) / max(m.sum(), 1)), 4),
                "macro_f1": round(float(f1[m.sum(1) > 0].mean()), 4) if m.sum() else 0.0,
                "macro_f1_supported": round(float(f1[supported].mean()), 4) if supported.any() else 0.0,
                "supported_classes": [c for k, c in enumerate(labels) if supported[k]],
                "per_class": per, "confusion": {"labels": labels, "matrix": m.tolist()}, "n": len(t)}

    main = table([FINE[x] for x in truth], [FINE[x] for x in pred], list(CODES))
    main["fine"] = table(truth, pred, list(FINE))
    return main


def _rule_precision(train: list[Any]) -> tuple[dict[str, dict[str, Any]], tuple[str, ...]]:
    """Each rule's precision on the train split's single-sentence rows; the rules kept (>= 95 %, >= 10 hits)."""
    from . import coder

    single = [(r.text, r.fine) for r in train if len(coder.split_sentences(r.text)) <= 1]
    precision: dict[str, dict[str, Any]] = {}
    for name, fine, _ in coder._RULES:
        hits = [f for t, f in single if (coder._rule(t, (name,)) or ("", ""))[0] == name]
        code = coder.FINE.get(fine, fine)
        agree = sum(coder.FINE[f] == code for f in hits)
        precision[name] = {"code": code, "n": len(hits),
                           "precision": round(agree / len(hits), 4) if hits else None}
    return precision, tuple(n for n, v in precision.items() if v["n"] >= 10 and (v["precision"] or 0) >= 0.95)


def refresh_coder_rules() -> dict[str, Any]:
    """Re-measure the rules on train and keep those >= 95 % precise, leaving the tuned network as it is; dev
    figures are re-measured with the new rules (``coach understand train coder --rules-only``)."""
    import json

    from . import coder
    from .data import coder_rows

    spec = json.loads(coder.MODEL_PATH.read_text(encoding="utf-8"))
    precision, kept = _rule_precision(coder_rows("train"))
    spec["rules"], spec["rule_precision"] = list(kept), precision
    coder.MODEL_PATH.write_text(json.dumps(spec, separators=(",", ":")) + "\n", encoding="utf-8")
    coder.load_model.cache_clear()
    coder._CACHE.clear()
    dev = coder_rows("dev")
    pred = [d["fine"] for d in coder.code_details([r.text for r in dev], contexts=[r.context for r in dev])]
    m = coder_metrics([r.fine for r in dev], pred)
    spec["dev"] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
    coder.MODEL_PATH.write_text(json.dumps(spec, separators=(",", ":")) + "\n", encoding="utf-8")
    coder.load_model.cache_clear()
    return {"rules": spec["rules"], "rule_precision": precision, "dev": spec["dev"]}


def train_coder(seed: int = 13, epochs: int = 3, layers: tuple[int, ...] = LAYERS,
                with_dev: bool = False) -> dict[str, Any]:
    """Fine-tune MiniLM's top ``layers`` and a linear layer on the train split (our own utterances, MIBot by
    session, the written set), each sentence read after its context; keep only the rules that are >= 95%
    precise on train; keep the epoch that codes dev best (accuracy + macro-F1). About 20 min on 2 cores.
    ``with_dev``: the final model, trained on train and dev together for ``epochs`` (the count dev chose) and
    kept after the last one; its dev figures are then not a measurement."""
    import copy
    import random

    import torch

    from . import coder, tuned
    from .data import CODER_DIR, coder_rows

    random.seed(seed)
    torch.manual_seed(seed)
    train, dev = coder_rows("train"), coder_rows("dev")
    if with_dev:
        train = train + dev
    classes = list(coder.FINE)
    precision, kept = _rule_precision(train)

    tokenizer, model = tuned.fresh()
    trained = set(tuned.trained_names(model, list(layers)))
    for name, p in model.named_parameters():
        p.requires_grad = name in trained
    head = torch.nn.Linear(coder.DIM, len(classes))
    y = torch.tensor([classes.index(r.fine) for r in train])
    counts = torch.bincount(y, minlength=len(classes)).float()
    weight = (counts.sum() / (len(classes) * counts.clamp(min=1))) ** 0.5  # rare codes count more, not fully
    batch, steps_per_epoch = 32, (len(train) + 31) // 32
    optimiser = torch.optim.AdamW([{"params": [p for p in model.parameters() if p.requires_grad], "lr": LR},
                                   {"params": head.parameters(), "lr": HEAD_LR}], weight_decay=0.01)
    total = epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / 50) * max(0.0, 1 - s / total))
    loss_of = torch.nn.CrossEntropyLoss(weight=weight)
    inputs = [(coder.model_input(r.text), coder.model_input(r.context) if r.context else "") for r in train]
    dev_groups, dev_firsts, dev_truth = _sentences([r.text for r in dev]), [r.context for r in dev], [r.fine for r in dev]

    def score(sentences: list[str], contexts: list[str]) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            vectors = tuned.encode(tokenizer, model, [coder.model_input(s) for s in sentences],
                                   [coder.model_input(c) if c else "" for c in contexts])
            out = head(torch.from_numpy(vectors).float()).numpy()
        model.train()
        return out

    tried, best = [], None
    order = list(range(len(train)))
    model.train()
    for epoch in range(epochs):
        random.shuffle(order)
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            logits = head(tuned.pool(tokenizer, model, [inputs[i][0] for i in idx], [inputs[i][1] for i in idx]))
            loss = loss_of(logits, y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        m = coder_metrics(dev_truth, _coder_predict(dev_groups, dev_firsts, score, kept, classes))
        tried.append({"epoch": epoch + 1, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"]})
        value = m["accuracy"] + m["macro_f1"] if not with_dev else float(epoch)  # with dev: the last epoch
        if best is None or value > best[0]:
            best = (value, copy.deepcopy({n: p.detach().clone() for n, p in model.named_parameters() if n in trained}),
                    copy.deepcopy(head.state_dict()), m, epoch + 1)
    assert best is not None
    _, state, head_state, m, chosen = best
    model.load_state_dict(state, strict=False)
    sha = tuned.save(model, list(layers), coder.WEIGHTS_PATH)
    sources = [ROOT / "evals" / "utterances.jsonl", CODER_DIR / "mibot.jsonl", CODER_DIR / "written.jsonl"]
    spec = {"format": coder.FORMAT, "classes": classes,
            "coef": np.round(head_state["weight"].numpy().astype(np.float64), 6).tolist(),
            "intercept": np.round(head_state["bias"].numpy().astype(np.float64), 6).tolist(), "rules": list(kept),
            "encoder": {"base": coder.EMBEDDING, "weights": coder.WEIGHTS_PATH.name, "sha256": sha,
                        "layers": list(layers), "context": "previous sentence"},
            "params": {"epochs": epochs, "chosen_epoch": chosen, "lr": LR, "head_lr": HEAD_LR, "batch": batch,
                       "class_weight": "sqrt balanced", "trained_on": "train+dev" if with_dev else "train"},
            "seed": seed,
            "data_sha256": file_sha(*sources), "n_train": len(train), "n_dev": len(dev),
            "dev": {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}, "tried": tried,
            "rule_precision": precision}
    import json

    coder.MODEL_PATH.write_text(json.dumps(spec, separators=(",", ":")) + "\n", encoding="utf-8")
    coder.load_model.cache_clear()
    tuned.load.cache_clear()
    coder._CACHE.clear()
    return {k: v for k, v in spec.items() if k not in ("coef", "intercept")}
