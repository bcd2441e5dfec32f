"""``make demo``'s supervisor, run for real: web, worker and beat start together, Ctrl-C
stops all three with exit 0, and one dying takes the others down with a non-zero exit.

The demo runs on the test database and on a Redis database of its own, so its worker
never takes messages meant for anyone else.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children_of(pid: int) -> dict[int, str]:
    """pid -> command line of the direct children of ``pid``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Demo:
    def __init__(self):
        self.port = _free_port()
        self.data_dir = tempfile.mkdtemp(prefix="o2o-demo-")
        db = urlsplit(settings.DATABASE_URL)
        test_db = urlunsplit(db._replace(path="/" + connection.settings_dict["NAME"]))
        broker = urlsplit(settings.REDIS_URL)
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env.update(
            DATABASE_URL=test_db,
            REDIS_URL=urlunsplit(broker._replace(path="/15")),
            O2O_DATA_DIR=self.data_dir,
            DEBUG="1",
            PORT=str(self.port),
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "o2o.demo", "--no-seed"], cwd=BASE_DIR, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if "o2o is running" in line:
                self.ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self):
        assert self.ready.wait(90), f"the demo did not come up:\n{self.output}"
        # worker and beat report themselves after web answers; give them a moment.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not ("ready." in self.output and "beat: Starting" in self.output):
            time.sleep(0.2)

    def get(self, path: str) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
            return response.status

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        import shutil

        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture
def demo(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        d = Demo()
    try:
        yield d
    finally:
        d.close()


def _kinds(children: dict[int, str]) -> dict[str, int]:
    kinds = {}
    for pid, cmd in children.items():
        if "runserver" in cmd:
            kinds["web"] = pid
        elif "celery -A o2o worker" in cmd:
            kinds["worker"] = pid
        elif "celery -A o2o beat" in cmd:
            kinds["beat"] = pid
    return kinds


def test_demo_runs_web_worker_and_beat_and_ctrl_c_stops_them(demo):
    demo.wait_ready()

    assert "database: PostgreSQL from DATABASE_URL" in demo.output
    assert f"http://127.0.0.1:{demo.port}/admin/" in demo.output
    assert demo.get("/admin/login/") == 200
    assert demo.get("/healthz") == 200
    kinds = _kinds(_children_of(demo.proc.pid))
    assert set(kinds) == {"web", "worker", "beat"}, demo.output

    demo.proc.send_signal(signal.SIGINT)

    assert demo.proc.wait(timeout=60) == 0, demo.output
    assert not any(_alive(pid) for pid in kinds.values())


def test_a_child_that_dies_stops_the_others_with_an_error(demo):
    demo.wait_ready()
    kinds = _kinds(_children_of(demo.proc.pid))
    assert set(kinds) == {"web", "worker", "beat"}, demo.output

    os.kill(kinds["beat"], signal.SIGKILL)

    assert demo.proc.wait(timeout=60) != 0
    assert "beat exited" in demo.output
    assert not any(_alive(pid) for pid in kinds.values())
