"""Transactions for services: one atomic block, retried on deadlock or serialization failure."""

from __future__ import annotations

import functools
import logging
import random
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, ParamSpec, Sequence, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, models, transaction
from django.db.models.sql import InsertQuery

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


# --- writes joined to the transaction's last statement -------------------------------------------

# The statements a ``joined_writes`` block holds back: (sql, params), in the order they were asked for.
_JOINED: ContextVar[list[tuple[str, list]] | None] = ContextVar("o2o_joined_writes", default=None)


@contextmanager
def joined_writes() -> Iterator[list[tuple[str, list]]]:
    """Hold back the inserts made through ``write_joined`` / ``insert_joined`` inside the block, so
    the block's last statement (``run_joined``) carries them as data-modifying CTEs: one round
    trip for several rows nobody reads back in the transaction (audit rows, outbox messages).

    Only writes whose result the transaction does not read again may join: until ``run_joined``
    they are not in the database.  The block must end with ``run_joined`` (RuntimeError otherwise,
    so nothing is silently dropped); an error inside drops them with the transaction.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("joined_writes must run inside the service's transaction")
    if _JOINED.get() is not None:
        raise RuntimeError("joined_writes blocks do not nest")
    pending: list[tuple[str, list]] = []
    token = _JOINED.set(pending)
    try:
        yield pending
    finally:
        _JOINED.reset(token)
    if pending:
        raise RuntimeError("joined writes were never run: end the block with run_joined")


def write_joined(sql: str, params: Sequence) -> bool:
    """Hold ``sql`` (an INSERT without RETURNING) back for ``run_joined``; False (nothing held)
    outside a ``joined_writes`` block, where the caller runs it itself."""
    pending = _JOINED.get()
    if pending is None:
        return False
    pending.append((sql, list(params)))
    return True


def insert_joined(objs: Sequence[models.Model]) -> bool:
    """``write_joined`` for new model rows of one model (their pk stays unset); False outside a block."""
    if _JOINED.get() is None or not objs:
        return _JOINED.get() is not None
    meta = objs[0]._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field and not f.generated]
    query = InsertQuery(type(objs[0]))
    query.insert_values(fields, list(objs))
    for sql, params in query.get_compiler(using=DEFAULT_DB_ALIAS).as_sql():
        write_joined(sql, params)
    return True


def run_joined(sql: str, params: Sequence) -> list[tuple]:
    """Run ``sql`` (a SELECT, or a data-modifying statement with RETURNING or a CTE of its own) with
    the held-back writes in front of it as CTEs; returns its rows.  Clears what was held."""
    pending = _JOINED.get()
    head, head_params = "", []
    if pending:
        head = ", ".join(f"w{n} AS ({held})" for n, (held, _) in enumerate(pending))
        head_params = [p for _, held_params in pending for p in held_params]
        pending.clear()
        if sql.lstrip().upper().startswith("WITH "):
            sql = f"WITH {head}, {sql.lstrip()[5:]}"
        else:
            sql = f"WITH {head} {sql}"
    with connection.cursor() as cur:
        cur.execute(sql, [*head_params, *params])
        return cur.fetchall() if cur.description else []


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
