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


# --- writes taken last ------------------------------------------------------------------------------

_LATE: ContextVar[list | None] = ContextVar("o2o_late_writes", default=None)


def late(write: Callable[[], object]) -> None:
    """Run ``write`` as the last thing before the enclosing ``late_window`` commits, or now without one.

    For the write that takes the hottest row locks (stock levels): everything else of the request,
    its response and its idempotency record included, is done before, so the lock is held only
    for the commit.  A late write that fails rolls the whole unit back, as if it had run in place.
    """
    pending = _LATE.get()
    if pending is None:
        write()
    else:
        pending.append(write)


def late_window(func: Callable[[], R]) -> R:
    """Run ``func`` (inside an open transaction), then the writes it deferred with ``late``, in order."""
    if not connection.in_atomic_block:
        raise AssertionError("late_window needs an open transaction")
    pending: list = []
    token = _LATE.set(pending)
    try:
        result = func()
    finally:
        _LATE.reset(token)
    # A late write's failure aborts the whole unit, as a nested service's does: no savepoints.
    token = _IN_SERVICE.set(True)
    try:
        for write in pending:
            write()
    finally:
        _IN_SERVICE.reset(token)
    return result
