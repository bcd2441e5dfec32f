"""Fault injection: a seeded store world (the benchmark's seed) and helpers to check the ledgers."""

import json
import random

import pytest

from o2o.audit import audit_run


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
