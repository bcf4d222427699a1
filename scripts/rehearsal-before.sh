#!/usr/bin/env bash
# Run a rehearsal question set on the code of an earlier commit (default: the main this branch started
# from, before the persona listened), with this checkout's .venv and scorer: the "before" of
# docs/rehearsal.md. Usage: scripts/rehearsal-before.sh QUESTIONS.jsonl OUT_DIR [COMMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUESTIONS=$(realpath "$1"); OUT=$(realpath -m "$2"); BASE=${3:-0fabc63}
[[ -e "$OUT" && -n "$(ls -A "$OUT" 2>/dev/null)" ]] && { echo "$OUT already holds a run" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'git -C "$ROOT" worktree remove --force "$TMP/tree" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
git worktree add --detach -q "$TMP/tree" "$BASE"
cp assistant/listening_eval.py "$TMP/tree/assistant/"  # the scorer only; the persona is the old code's
cd "$TMP/tree"
COACH_DATA_DIR="$TMP/data" PYTHONPATH="$TMP/tree" "$ROOT/.venv/bin/python" - "$QUESTIONS" "$OUT" "$BASE" <<'PY'
import json, sys, time
from pathlib import Path
from assistant.config import load_settings
from assistant.listening_eval import judge_sheet, read_questions, run_questions, score
from assistant.rehearsal import Rehearsal

questions, out, base = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
settings = load_settings()
started = time.perf_counter()
turns = run_questions(Rehearsal(settings), read_questions(Path(questions)))
seconds = time.perf_counter() - started
run = {"meta": {"backend": settings.backend, "model": settings.model_name, "questions": questions, "commit": base,
                "seconds": round(seconds, 1), "seconds_per_turn": round(seconds / max(len(turns), 1), 3)},
       "score": score(turns), "turns": turns}
out.mkdir(parents=True, exist_ok=True)
(out / "run.json").write_text(json.dumps(run, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
(out / "judge.md").write_text(judge_sheet(turns) + "\n", encoding="utf-8")
print(json.dumps(run["score"]))
PY
