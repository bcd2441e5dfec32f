"""gunicorn's worker count and the private PgBouncer's configuration (no processes started here:
tests/faults/test_pgbouncer.py runs a real one)."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest
import yaml

from o2o.pgbouncer import PgBouncer

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "gunicorn.conf.py"


def _workers(monkeypatch, **env: str) -> int:
    for name in ("GUNICORN_WORKERS", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))["workers"]


def test_gunicorn_runs_two_sync_workers_per_usable_core(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert _workers(monkeypatch) == 6
    assert runpy.run_path(str(CONF))["worker_class"] == "sync"


def test_the_worker_count_can_be_set_outright(monkeypatch):
    assert _workers(monkeypatch, GUNICORN_WORKERS="3") == 3
    assert _workers(monkeypatch, WEB_CONCURRENCY="5") == 5
    with pytest.raises(ValueError, match="at least 1"):
        _workers(monkeypatch, GUNICORN_WORKERS="0")


@pytest.mark.parametrize("where", ["Dockerfile", "docker-compose.yml"])
def test_the_image_and_compose_start_gunicorn_with_the_config_and_no_fixed_worker_count(where):
    text = (ROOT / where).read_text()
    if where == "docker-compose.yml":
        text = " ".join(yaml.safe_load(text)["services"]["web"]["command"])
    assert "gunicorn.conf.py" in text and "--workers" not in text


def test_pgbouncer_pools_per_transaction_toward_the_given_server(tmp_path):
    bouncer = PgBouncer("postgresql://shop:s%27cret@db.internal:6543/o2o", run_dir=tmp_path, port=16432,
                        pool_size=7)
    config = bouncer.config()
    assert "pool_mode = transaction" in config
    assert "* = host=db.internal port=6543" in config
    assert "listen_addr = 127.0.0.1" in config and "listen_port = 16432" in config
    assert "default_pool_size = 7" in config
    assert bouncer.url == "postgresql://shop@127.0.0.1:16432/o2o"
    assert bouncer.url_for("o2o_bench") == "postgresql://shop@127.0.0.1:16432/o2o_bench"


def test_pgbouncer_reaches_a_server_on_a_unix_socket():
    bouncer = PgBouncer("postgresql://postgres@/o2o?host=/run/o2o/pg&port=5433", port=16433)
    try:
        assert "* = host=/run/o2o/pg port=5433" in bouncer.config()
    finally:
        bouncer.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="pgbouncer drops to another user only when root starts it")
def test_pgbouncer_started_by_root_runs_as_the_user_who_owns_the_server_socket(tmp_path):
    import pwd

    from o2o.pgbouncer import RUN_AS, _run_as

    private = tmp_path / "pg"
    private.mkdir(mode=0o700)
    nobody = pwd.getpwnam("nobody")
    os.chown(private, nobody.pw_uid, nobody.pw_gid)
    # The embedded server's socket sits in a directory only its own user may open.
    assert _run_as(str(private)) == "nobody"
    assert _run_as(str(tmp_path)) == RUN_AS  # root's: the package's user
    assert _run_as("db.internal") == RUN_AS  # a TCP server
