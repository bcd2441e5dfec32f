"""Which database and broker o2o uses: DATABASE_URL / REDIS_URL when set, otherwise a
private PostgreSQL and Redis under the data folder.

The embedded servers are started in subprocesses with a temporary ``O2O_DATA_DIR``, so
the servers of this checkout's ``.o2o/`` (which a running demo may be using) are never
touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest
import redis

from o2o import embedded

BASE_DIR = Path(__file__).resolve().parents[2]


def test_urls_from_the_environment_are_used_as_is(monkeypatch):
    database = "postgresql://shop:s3cret@db.internal:6432/o2o_prod?sslmode=require"
    broker = "redis://:hunter2@cache.internal:6380/2"
    monkeypatch.setenv("DATABASE_URL", database)
    monkeypatch.setenv("REDIS_URL", broker)

    def must_not_start():
        raise AssertionError("an embedded server was started although a URL is set")

    monkeypatch.setattr(embedded, "postgres_url", must_not_start)
    monkeypatch.setattr(embedded, "redis_url", must_not_start)

    assert embedded.resolved_urls() == (database, broker)

    text = embedded.describe(database, broker)
    assert "PostgreSQL from DATABASE_URL" in text
    assert "Redis from REDIS_URL" in text
    assert "embedded" not in text
    # Passwords never reach the terminal.
    assert "s3cret" not in text and "hunter2" not in text
    assert "postgresql://shop:***@db.internal:6432/o2o_prod" in text
    assert "redis://:***@cache.internal:6380/2" in text


def test_unset_or_empty_urls_fall_back_to_the_embedded_servers(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(embedded, "postgres_url", lambda: "postgresql://postgres@/o2o?host=/embedded")
    monkeypatch.setattr(embedded, "redis_url", lambda: "redis://127.0.0.1:1234/0")

    assert embedded.resolved_urls() == ("postgresql://postgres@/o2o?host=/embedded", "redis://127.0.0.1:1234/0")


def test_only_one_url_set_uses_it_and_embeds_the_other(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/o2o")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(embedded, "postgres_url", lambda: pytest.fail("PostgreSQL must come from DATABASE_URL"))
    monkeypatch.setattr(embedded, "redis_url", lambda: "redis://127.0.0.1:1234/0")

    assert embedded.resolved_urls() == ("postgresql://postgres@127.0.0.1:5432/o2o", "redis://127.0.0.1:1234/0")


# --- the embedded servers, for real --------------------------------------------------


@pytest.fixture
def data_dir():
    # Short and under /tmp: PostgreSQL puts its Unix socket here (paths are limited to ~100 bytes).
    path = Path(tempfile.mkdtemp(prefix="o2o-emb-", dir="/tmp"))
    try:
        yield path
    finally:
        _run(path, "-m", "o2o.embedded", "down", check=False)
        shutil.rmtree(path, ignore_errors=True)


def _run(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["O2O_DATA_DIR"] = str(data)
    result = subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=180
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _ping(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return client.ping()
    except redis.ConnectionError:
        return False
    finally:
        client.close()


def test_embedded_redis_starts_answers_ping_and_is_reused(data_dir):
    started = _run(data_dir, "-c", "from o2o import embedded; print(embedded.redis_url())").stdout.strip()

    assert started.startswith("redis://127.0.0.1:")
    assert _ping(started)
    port = (data_dir / "redis.port").read_text().strip()
    assert started == f"redis://127.0.0.1:{port}/0"
    # A second process finds the running server instead of starting another.
    again = _run(data_dir, "-c", "from o2o import embedded; print(embedded.redis_url())").stdout.strip()
    assert again == started

    _run(data_dir, "-m", "o2o.embedded", "down")

    assert not (data_dir / "redis.port").exists()
    assert _wait_until(lambda: not _ping(started))


@pytest.mark.slow
def test_embedded_up_starts_postgresql_and_redis_and_down_stops_them(data_dir):
    out = _run(data_dir, "-m", "o2o.embedded", "up").stdout

    db_line = next(line for line in out.splitlines() if line.startswith("database:"))
    broker_line = next(line for line in out.splitlines() if line.startswith("broker:"))
    assert "embedded PostgreSQL" in db_line
    assert "embedded Redis" in broker_line
    database_url = db_line.split(" -> ", 1)[1]
    broker_url = broker_line.split(" -> ", 1)[1]
    assert f"host={data_dir / 'pg'}" in database_url

    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_database(), current_setting('server_version_num')::int")
        name, version = cur.fetchone()
    conn.close()
    assert name == "o2o"
    assert version >= 150000
    assert _ping(broker_url)

    # `up` again reuses both servers.
    assert _run(data_dir, "-m", "o2o.embedded", "up").stdout == out

    _run(data_dir, "-m", "o2o.embedded", "down")

    assert not _ping(broker_url)
    assert _wait_until(lambda: not _pg_accepts(database_url))


def _pg_accepts(url: str) -> bool:
    try:
        psycopg2.connect(url, connect_timeout=1).close()
    except psycopg2.OperationalError:
        return False
    return True


def _wait_until(predicate, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()
