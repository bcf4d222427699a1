"""Real servers for the tests, started on loopback in a temporary folder and stopped after: PostgreSQL from
Debian's package (``scripts/setup.sh --test`` installs it) and ``chroma run`` from the chromadb package.

PostgreSQL refuses to run as root: as root, its programs run as the ``postgres`` user the Debian package
creates (else ``nobody``), in a folder that user owns. The server trusts local connections (it listens on
127.0.0.1 and a socket in its own folder only) and uses the C locale, so text sorts as in SQLite.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, what: str, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on port {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


def pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl (the newest installed PostgreSQL), or None."""
    for folder in PG_BIN_DIRS:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


class Postgres:
    """A throwaway PostgreSQL server; ``database()`` makes a fresh database and gives its URL."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = free_port()
        self.user = None if os.geteuid() != 0 else ("postgres" if _has_user("postgres") else "nobody")
        self.root = Path(tempfile.mkdtemp(prefix="coach-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.url = f"postgresql://coach@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)

    def start(self) -> None:
        made = self._run("initdb", "-D", str(self.data), "-U", "coach", "--auth=trust", "--locale=C", "-E", "UTF8")
        if made.returncode:
            raise RuntimeError(f"initdb failed: {made.stderr.strip() or made.stdout.strip()}")
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        started = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")
        if started.returncode:
            log = self.log.read_text(errors="replace")[-800:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log}")

    def restart(self) -> None:
        """Stop and start the server on the same port (connections are dropped, data kept)."""
        done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "-t", "60", "restart")
        if done.returncode:
            raise RuntimeError(f"pg_ctl restart failed: {done.stderr.strip()}")

    def database(self) -> str:
        """A new empty database on this server; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def drop(self, url: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A running PostgreSQL; raises RuntimeError when it cannot start (the caller decides skip or fail)."""
    bin_dir = pg_bin()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    server = Postgres(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextmanager
def chroma_server(folder: Path) -> Iterator[str]:
    """``chroma run`` on a free loopback port; its URL."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if not chroma:
        raise FileNotFoundError("the chroma CLI comes with the chromadb package")
    port = free_port()
    proc = subprocess.Popen([chroma, "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, "chroma run", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc, 20)


def llama_server_bin() -> Path | None:
    """llama.cpp's ``llama-server``, built once by ``scripts/setup.sh --test`` and linked into the venv."""
    found = Path(sys.executable).parent / "llama-server"
    return found if found.exists() else None


@contextmanager
def llama_server(model: Path, parallel: int = 2, log: Path | None = None) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server on a free loopback port, serving ``model`` with ``parallel`` slots
    (continuous batching) and its Prometheus metrics on; its ``/v1`` URL once the model is loaded."""
    import urllib.request

    binary = llama_server_bin()
    if binary is None:
        raise FileNotFoundError("llama-server is not built (scripts/setup.sh --test builds it)")
    port = free_port()
    out = log.open("w") if log else subprocess.DEVNULL
    proc = subprocess.Popen([str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
                             "--parallel", str(parallel), "-c", str(2048 * parallel), "--threads", "2",
                             "--cont-batching", "--metrics", "--no-webui"], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, "llama-server", proc)
        deadline = time.time() + 120
        while True:  # the port opens before the model is loaded: /health answers 200 once it is
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"llama-server did not load {model.name} (exit {proc.poll()})")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc, 20)
        if log:
            out.close()  # type: ignore[union-attr]


def stop(proc: subprocess.Popen, timeout: float) -> None:
    """Terminate a server process started by a test; kill it if it has not exited within ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
