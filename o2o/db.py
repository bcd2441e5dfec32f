"""Transactions for services: one atomic block, retried on deadlock or serialization failure."""

from __future__ import annotations

import functools
import logging
import random
import time
from contextvars import ContextVar
from typing import Callable, ParamSpec, TypeVar

from django.conf import settings
from django.db import OperationalError, connection, transaction

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# PostgreSQL SQLSTATEs that mean "try the whole transaction again".
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected

_IN_SERVICE: ContextVar[bool] = ContextVar("o2o_in_service", default=False)


def _is_retryable(exc: BaseException) -> bool:
    cause = getattr(exc, "__cause__", None) or exc
    return getattr(cause, "pgcode", None) in RETRYABLE_SQLSTATES


def service(func: Callable[P, R]) -> Callable[P, R]:
    """Run a service function in one transaction.

    As the outermost block, a deadlock or serialization failure rolls back and
    retries the whole function a bounded number of times with jittered backoff.
    Called from another service it joins that transaction without a savepoint
    (services never catch a nested service's error and go on, so the error
    aborts the whole unit).  Called inside some other transaction (a test, a
    page that groups calls) it runs in a savepoint, so its failure undoes only
    its own writes.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if connection.in_atomic_block:
            nested_in_service = _IN_SERVICE.get()
            token = _IN_SERVICE.set(True)
            try:
                with transaction.atomic(savepoint=not nested_in_service):
                    return func(*args, **kwargs)
            finally:
                _IN_SERVICE.reset(token)
        token = _IN_SERVICE.set(True)
        try:
            return _run_with_retry(func, args, kwargs)
        finally:
            _IN_SERVICE.reset(token)

    return wrapper


def atomic_with_retry(func: Callable[[], R]) -> R:
    """Run ``func`` in one transaction, retried like a service's on deadlock or serialization failure."""
    return _run_with_retry(func, (), {})


def _run_with_retry(func, args, kwargs):
    attempts = settings.O2O_DB_RETRY_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic():
                return func(*args, **kwargs)
        except OperationalError as exc:
            if not _is_retryable(exc) or attempt == attempts:
                raise
            log.info("retrying %s after %s (attempt %d)", func.__qualname__, exc.__cause__, attempt)
            time.sleep(random.uniform(0, 0.01 * 2**attempt))
    raise AssertionError("unreachable")
