"""Fault injection: a seeded store world (the benchmark's seed) and helpers to check the ledgers."""

import json
import random

import pytest

from o2o.audit import audit_run


@pytest.fixture(autouse=True)
def sessions_in_the_database(settings):
    """The servers these tests start use a Redis of their own: a till signed in here reaches them
    through the session table (tests/faults/procs.py starts them with SESSION_BACKEND=db)."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"


@pytest.fixture
def world(transactional_db):
    from bench.seed import seed

    return seed()


def assert_ledgers_clean() -> None:
    failures = {f"[{inv}] {title}": v[:5] for inv, title, v in audit_run() if v}
    assert failures == {}, json.dumps(failures, ensure_ascii=False, indent=1, default=str)


@pytest.fixture
def rng():
    return random.Random(20261123)


@pytest.fixture
def private_broker(tmp_path):
    """A private redis-server as this process's Celery broker, for the length of a test."""
    from o2o.celery import app
    from tests.faults.redis_private import PrivateRedis

    server = PrivateRedis(tmp_path)
    server.start()
    old = app.conf.broker_url
    app.conf.broker_url = server.url
    app._pool = None
    app.amqp._producer_pool = None
    yield server
    server.stop()
    app.conf.broker_url = old
    app._pool = None
    app.amqp._producer_pool = None
