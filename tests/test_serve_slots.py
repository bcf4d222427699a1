"""`coach serve` on a model server: a slow server holding some users' turns does not block another user's.

A fake OpenAI-compatible server answers at once, except for messages that mention "glacier", which it
holds for a few seconds. The app is queued exactly as `coach serve` queues it (``ui.queued``); three slow
turns are sent, then a quick one, which must finish while the slow ones are still waiting.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assistant.config import Settings

HOLD = 6.0


class _Server(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        if "glacier" in json.dumps(body).lower():
            time.sleep(HOLD)
        reply = "It sounds like this matters to you. What would make it feel worthwhile?"
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": reply}, "finish_reason": None}]}
            done = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
            return
        out = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                                       "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture
def model_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _text(history: list[dict]) -> str:
    """The last chat message's text (the client may give it as a list of content parts)."""
    content = history[-1]["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_backends_get_more_turn_slots_than_the_embedded_model() -> None:
    assert Settings(backend="embedded").turn_slots == 2
    assert Settings(backend="openai").turn_slots == 16
    assert Settings(backend="openai", concurrency=4).turn_slots == 4


def test_a_slow_model_server_does_not_block_another_users_turn(model_server: str, tmp_path, monkeypatch) -> None:
    from gradio_client import Client

    from assistant.ui import build_app, queued

    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    settings = Settings(backend="openai", base_url=model_server, api_key="x", model="m", data_dir=tmp_path,
                        timeout=30)
    port = _free_port()
    demo = queued(build_app(settings), settings)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}"
        slow = [Client(url, verbose=False).submit(f"My glacier project {i} is stuck and I feel overlooked.", [], None,
                                                  fn_index=0) for i in range(3)]
        time.sleep(0.5)
        started = time.perf_counter()
        quick = Client(url, verbose=False).submit("I want to grow without managing people.", [], None, fn_index=0)
        history = quick.result(timeout=60)[0]
        quick_took = time.perf_counter() - started
        assert _text(history).strip() and "⚠️" not in _text(history), _text(history)
        assert quick_took < HOLD - 1, f"the quick turn waited behind the slow ones ({quick_took:.1f} s)"
        assert not all(job.done() for job in slow)  # the slow turns were still being held meanwhile
        for job in slow:
            assert "⚠️" not in _text(job.result(timeout=60)[0])
    finally:
        demo.close()


def test_a_turn_during_the_warm_up_waits_for_it(monkeypatch) -> None:
    """`coach serve` warms the engines in a thread; a first turn that arrives meanwhile waits for it instead
    of importing torch and loading the encoders beside it (two threads doing that at once failed with
    "partially initialized module 'torch'", seen with two people's first turns on a new process)."""
    import assistant.chain
    from assistant.ui import Services

    built: list[str] = []

    class SlowCoach:
        def __init__(self, settings: Settings) -> None:
            built.append(threading.current_thread().name)
            time.sleep(0.3)

    monkeypatch.setattr(assistant.chain, "Coach", SlowCoach)
    warmed = threading.Event()

    def warm(self: Services) -> None:
        try:
            self.coach  # noqa: B018 - builds it, as the real warm-up does
            time.sleep(0.3)
            warmed.set()
        finally:
            self._warmed.set()

    monkeypatch.setattr(Services, "warm", warm)
    services = Services(Settings())
    services.start_warm()
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append((services.coach, warmed.is_set()))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert built == ["warm-up"]  # one engine, built by the warm-up
    assert len(results) == 3 and all(done for _, done in results)  # every turn waited for the warm-up
    assert len({id(c) for c, _ in results}) == 1
