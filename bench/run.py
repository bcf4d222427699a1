"""Benchmarks for the targets in the issues. Prints figures; asserts nothing (tests stay deterministic).

    .venv/bin/python bench/run.py            # all
    .venv/bin/python bench/run.py ask index  # some (index, safety, ask, serve, load)
    COACH_LOAD_USERS=20 .venv/bin/python bench/run.py load   # the web app under many users (not in "all")

Uses a temporary data folder so the developer's transcripts and index are untouched.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COACH = Path(sys.executable).parent / "coach"
DATA = Path(tempfile.mkdtemp(prefix="coach-bench-"))
ENV = {**os.environ, "COACH_DATA_DIR": str(DATA), "HF_HUB_OFFLINE": "1"}
os.environ.update({"COACH_DATA_DIR": str(DATA), "HF_HUB_OFFLINE": "1"})
MESSAGES = ["I don't want to manage but I want to grow", "Right now the only promotion on offer is team lead",
            "I could ask for a staff role or move to the platform team", "I feel unrecognised for the migration I led",
            "My best engineer is bored and I am worried she will leave", "How do I thank my team for a hard quarter"]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def bench_index() -> None:
    t = time.perf_counter()
    subprocess.run([str(COACH), "index", "--rebuild"], env=ENV, check=True, capture_output=True)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([str(COACH), "index"], env=ENV, check=True, capture_output=True)
    print(f"index: cold full build {cold:.1f} s (process start to done); no-change re-run "
          f"{time.perf_counter() - t:.1f} s")
    from assistant.config import load_settings
    from assistant.embeddings import _embed_one
    from assistant.retrieval import HandbookIndex

    idx = HandbookIndex(load_settings())
    idx.search("warm up", k=5)
    times = []
    for _ in range(5):
        for m in MESSAGES:
            _embed_one.cache_clear()  # measure the query embedding too, not the memo
            t = time.perf_counter()
            idx.search(m, k=5)
            times.append((time.perf_counter() - t) * 1000)
    print(f"retrieval (hybrid, k=5, warm): p50 {statistics.median(times):.1f} ms, p95 {pct(times, 0.95):.1f} ms")


def bench_ask() -> None:
    subprocess.run([str(COACH), "index"], env=ENV, check=True, capture_output=True)
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([str(COACH), "ask", "--json", "I feel stuck"], env=ENV, check=True, capture_output=True)
        runs.append(time.perf_counter() - t)
    print(f"cold `coach ask` (process start to reply, embedded): median {statistics.median(runs):.1f} s "
          f"(runs: {', '.join(f'{r:.1f}' for r in runs)})")
    from assistant.chain import Coach
    from assistant.config import load_settings

    for label, guarded in (("with guard", True), ("without guard", False)):
        coach = Coach(load_settings(backend="embedded"), remember=False)
        if not guarded:  # the guard's checks and fallback switched off: what the raw chain costs
            import assistant.chain as chain

            chain.check_reply = lambda *a, **k: []  # type: ignore[assignment]
        coach.turn("warm up: I want to grow")
        totals, firsts = [], []
        for _ in range(2):
            for m in MESSAGES:
                t = time.perf_counter()
                first = None
                for _piece in coach.stream(m):
                    if first is None:
                        first = time.perf_counter() - t
                totals.append(time.perf_counter() - t)
                firsts.append(first or 0.0)
        print(f"warm turn {label}: median {statistics.median(totals):.2f} s, p95 {pct(totals, 0.95):.2f} s, "
              f"time to first token median {statistics.median(firsts):.2f} s")


def bench_safety() -> None:
    """The safety screen on one message, warm, as a turn sees it (the message's embedding not yet cached)."""
    from assistant.embeddings import _embed_one
    from assistant.understanding.safety import SafetyScreen

    screen = SafetyScreen()
    screen.read("warm up")
    for label, previous in (("alone", None), ("with the previous message", MESSAGES[0])):
        times = []
        for _ in range(5):
            for m in MESSAGES:
                _embed_one.cache_clear()
                t = time.perf_counter()
                screen.read(m, previous)
                times.append((time.perf_counter() - t) * 1000)
        print(f"safety screen ({label}, warm): p50 {statistics.median(times):.1f} ms, p95 {pct(times, 0.95):.1f} ms")
    # real openers are several sentences, and each sentence is also read on its own (safety.windows)
    import json

    openers = [json.loads(x)["text"] for x in (ROOT / "evals/dev/openers.jsonl").read_text().splitlines() if x.strip()]
    times = []
    for m in openers:
        _embed_one.cache_clear()
        t = time.perf_counter()
        screen.read(m)
        times.append((time.perf_counter() - t) * 1000)
    print(f"safety screen (the {len(openers)} dev openers, 1-5 sentences, warm): p50 {statistics.median(times):.1f} ms, "
          f"p95 {pct(times, 0.95):.1f} ms")


def bench_serve() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(COACH), "serve", "--port", str(port)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                time.sleep(1)
        # one real turn through the Python client so the models are loaded before measuring
        from gradio_client import Client

        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        try:
            client.predict("I want to grow", [], None, fn_index=0)
        except Exception as exc:  # noqa: BLE001 - the measurement still stands without a turn
            print(f"(warm-up turn failed: {exc})")
        rss = 0
        for pid in [proc.pid, *map(int, subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                       text=True).stdout.split())]:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS"):
                    rss += int(line.split()[1])
        print(f"`coach serve` resident memory after a turn: {rss / 1024:.0f} MB")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _serving(extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`coach serve` on a free loopback port, answering, with one warm-up turn done."""
    from gradio_client import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(COACH), "serve", "--port", str(port)], env={**ENV, **(extra_env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(1)
    Client(url, verbose=False).predict("I want to grow", [], None, fn_index=0)
    return proc, url


def _turn(url: str, message: str) -> float:
    from gradio_client import Client

    start = time.perf_counter()
    history = Client(url, verbose=False).predict(message, [], None, fn_index=0)[0]
    content = history[-1]["content"]
    text = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
    if not text.strip() or "⚠️" in text:
        raise RuntimeError(f"turn failed: {text[:200]}")
    return time.perf_counter() - start


def bench_load(extra_env: dict[str, str] | None = None) -> None:
    """Turn latency over HTTP under many users: single user (sequential), users with think time, a burst.
    Each simulated user is a fresh client and session, as a browser tab is."""
    import random
    import threading

    users = int(os.environ.get("COACH_LOAD_USERS", "20"))
    think = float(os.environ.get("COACH_LOAD_THINK", "20"))
    turns = int(os.environ.get("COACH_LOAD_TURNS", "3"))
    proc, url = _serving(extra_env)
    try:
        single = [_turn(url, MESSAGES[i % len(MESSAGES)]) for i in range(8)]
        rate = 1 / statistics.median(single)
        print(f"single user: median {statistics.median(single):.2f} s per turn ({rate:.2f} turns/s)")

        def run(latencies: list[float], failures: list[str], messages: list[str], pause: float) -> None:
            for k, message in enumerate(messages):
                if k:
                    time.sleep(random.uniform(0.5, 1.5) * pause)
                try:
                    latencies.append(_turn(url, message))
                except Exception as exc:  # noqa: BLE001 - counted and shown, the run goes on
                    failures.append(str(exc)[:120])

        for name, pause, per_user in (("think time", think, turns), ("burst", 0.0, 1)):
            latencies: list[float] = []
            failures: list[str] = []
            random.seed(7)
            threads = []
            start = time.perf_counter()
            for u in range(users):
                messages = [MESSAGES[(u + k) % len(MESSAGES)] for k in range(per_user)]
                t = threading.Thread(target=run, args=(latencies, failures, messages, pause))
                threads.append(t)
                t.start()
                if pause:
                    time.sleep(random.uniform(0, pause) / users)  # users arrive spread over one think time
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
            done = len(latencies)
            print(f"{name}: {users} users x {per_user} turns: {done} answered, {len(failures)} failed; "
                  f"p50 {pct(latencies, 0.5) if latencies else 0:.2f} s, p95 {pct(latencies, 0.95) if latencies else 0:.2f} s; "
                  f"throughput {done / wall:.2f} turns/s ({done / wall / rate:.2f} of the single-user rate)")
            for f in failures[:3]:
                print(f"  failure: {f}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_load_llama() -> None:
    """The load benchmark with the model on llama.cpp's own server (``.venv/bin/llama-server``, built by
    ``scripts/setup.sh --test``) with ``COACH_LLAMA_PARALLEL`` (default 4) slots, started and stopped here by
    the same helper the deployment test uses (``tests/services.py``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from services import llama_server, llama_server_bin

    from assistant.config import shipped_model_path

    if llama_server_bin() is None:
        sys.exit("bench: llama-server is not built; run `bash scripts/setup.sh --test` first")
    parallel = int(os.environ.get("COACH_LLAMA_PARALLEL", "4"))
    with llama_server(shipped_model_path(), parallel=parallel) as url:
        print(f"llama-server: {parallel} parallel slots, continuous batching, 2 threads")
        bench_load({"COACH_BACKEND": "openai", "COACH_BASE_URL": url, "COACH_API_KEY": "none",
                    "COACH_MODEL": "smollm2"})


if __name__ == "__main__":
    chosen = sys.argv[1:] or ["index", "safety", "ask", "serve"]
    for name in chosen:
        globals()[f"bench_{name}"]()
