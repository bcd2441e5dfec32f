"""Real server and worker processes for the fault tests, each in its own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.faults.redis_private import _free_port
from tests.procs import database_url

ROOT = Path(__file__).resolve().parents[2]


def process_env(*, db: dict, broker_url: str, settings: str = "tests.faults.fault_settings", **extra: str) -> dict:
    """The environment of a process on ``settings`` (the fault settings), talking to ``db`` (a
    DATABASES entry) and ``broker_url``.  Login sessions are kept in the database, where this
    test process (on its own Redis) signs a till in and the server finds it (conftest.py)."""
    return {**os.environ, "DATABASE_URL": database_url(db), "REDIS_URL": broker_url, "O2O_BENCH_URLS": "1",
            "DJANGO_SETTINGS_MODULE": settings, "LOG_LEVEL": "ERROR", "PYTHONPATH": str(ROOT),
            "SESSION_BACKEND": "db", **extra}


def worker_start(env: dict, *, queue: str, concurrency: int = 2, log: Path | None = None,
                 app: str = "o2o") -> subprocess.Popen:
    out = open(log, "a") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queue, "-c",
                             str(concurrency), "-l", "warning", "--without-gossip", "--without-mingle",
                             "--without-heartbeat"], env=env, cwd=ROOT, stdout=out, stderr=out,
                            start_new_session=True)


def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the whole process group (a worker and its pool children) and reap the leader."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class Gunicorn:
    def __init__(self, env: dict, *, workers: int = 2, log: Path | None = None) -> None:
        self.port = _free_port()
        self.env, self.workers, self.log = env, workers, log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = open(self.log, "a") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "o2o.wsgi", "-w", str(self.workers), "-b",
                                      f"127.0.0.1:{self.port}", "--timeout", "60"], env=self.env, cwd=ROOT,
                                     stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}")
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /healthz")

    def worker_pids(self) -> set[int]:
        assert self.proc is not None
        pids = set()
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*"):
            pids |= {int(p) for p in (task / "children").read_text().split()}
        return pids

    def stop(self) -> None:
        if self.proc is not None:
            kill(self.proc, signal.SIGTERM)


class AnswerCut:
    """A relay in front of a server for one connection: the request goes through, and when the server
    starts to answer (its work done and committed) ``on_answer`` runs (the test kills the server) and
    the connection is dropped, so the client never gets the answer."""

    def __init__(self, upstream_url: str, on_answer) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname, parts.port)
        self.on_answer = on_answer
        self.answered = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._relay, daemon=True).start()

    def _relay(self) -> None:
        client, _ = self.listener.accept()
        server = socket.create_connection(self.upstream)

        def forward() -> None:
            try:
                while data := client.recv(65536):
                    server.sendall(data)
            except OSError:
                pass

        threading.Thread(target=forward, daemon=True).start()
        try:
            first = server.recv(1)  # blocks until the server starts to answer
        except OSError:
            first = b""
        try:
            if first:
                self.on_answer()
                self.answered.set()
        finally:
            for sock in (client, server, self.listener):
                sock.close()
