"""Idempotency-Key for API writes (the Stripe / IETF draft semantics).

Before the view runs, a row (owner, key) is inserted in its own short
transaction with status ``in_progress`` and a fingerprint of the request
(method, path, canonical JSON body).  The unique constraint makes that insert
the lock: of two concurrent requests with one key, one inserts, the other
finds the row.  Then:

* the same key again, still running → 409 ``idempotency_in_progress``;
* the same key with another method, path or body → 422 ``idempotency_key_reused``;
* the same key after completion → the first response (status and body) again,
  with ``Idempotent-Replayed: true``;
* no key → 400 ``idempotency_key_required``.

What is kept: responses that are a decision about the request (2xx, 409 and 422
domain errors).  Rejections before anything could run (400 validation, 401,
403, 404, 412, 429) and server errors release the key, so a corrected retry
with the same key is accepted.  A crashed request leaves its row in progress
until ``IDEMPOTENCY_LOCK_SECONDS`` (120) pass, then a retry takes it over; that
is safe because the handler's writes and the key's completion commit in one
transaction, so a request that crashed wrote nothing.  Writes the handler defers with
``o2o.db.late`` (the stock update that locks hot rows) run after the response is rendered and
stored, just before that commit; if one fails, the whole unit rolls back.
Rows are kept ``IDEMPOTENCY_KEY_TTL_HOURS`` (24) and purged by a beat task.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from o2o.apiauth import principal_of
from o2o.db import atomic_with_retry, late_window
from o2o.models import IdempotencyRecord

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
_KEPT_HEADERS = ("ETag", "Location")


class IdempotencyKeyRequired(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "idempotency_key_required"
    default_detail = _("This request needs an Idempotency-Key header (1–255 visible ASCII characters).")


class IdempotencyInProgress(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_in_progress"
    default_detail = _("A request with this Idempotency-Key is still being processed; retry later.")


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = _("This Idempotency-Key was already used for a different request.")


def ttl_hours() -> int:
    return int(getattr(settings, "IDEMPOTENCY_KEY_TTL_HOURS", 24))


def lock_seconds() -> int:
    return int(getattr(settings, "IDEMPOTENCY_LOCK_SECONDS", 120))


def _kept(status_code: int) -> bool:
    return 200 <= status_code < 300 or status_code in (409, 422)


def request_fingerprint(request) -> str:
    """SHA-256 over method, path and the body (JSON bodies canonicalised, so key order does not matter)."""
    try:
        raw = request._request.body
    except Exception:  # the stream was read already; fall back to the parsed data
        raw = json.dumps(getattr(request, "data", None), sort_keys=True, default=str).encode()
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode() if raw else b""
    except (ValueError, RecursionError):
        body = raw
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _claim(owner: str, key: str, fingerprint: str, request) -> IdempotencyRecord | Response:
    """Insert the in-progress row, or answer from the row that is already there."""
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(owner=owner, key=key, fingerprint=fingerprint,
                                                    method=request.method, path=request.path[:300])
    except IntegrityError:
        pass
    existing = IdempotencyRecord.objects.filter(owner=owner, key=key).first()
    if existing is None:  # purged between the insert and the read: try once more
        with transaction.atomic():
            return IdempotencyRecord.objects.create(owner=owner, key=key, fingerprint=fingerprint,
                                                    method=request.method, path=request.path[:300])
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if existing.status == IdempotencyRecord.Status.COMPLETED:
        headers = {**(existing.response_headers or {}), REPLAYED_HEADER: "true"}
        return Response(existing.response_body, status=existing.response_status, headers=headers)
    stale = timezone.now() - timedelta(seconds=lock_seconds())
    taken = IdempotencyRecord.objects.filter(pk=existing.pk, status=IdempotencyRecord.Status.IN_PROGRESS,
                                             locked_at__lt=stale).update(locked_at=timezone.now())
    if taken:
        return existing
    raise IdempotencyInProgress()


def _complete(record: IdempotencyRecord, response) -> None:
    if not _kept(response.status_code) or not hasattr(response, "data"):
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return
    body = json.loads(JSONRenderer().render(response.data) or b"null")
    headers = {name: response[name] for name in _KEPT_HEADERS if response.has_header(name)}
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status=IdempotencyRecord.Status.COMPLETED, response_status=response.status_code, response_body=body,
        response_headers=headers, completed_at=timezone.now())


def idempotent(handler=None, *, atomic: bool = True):
    """Decorate a DRF view method that creates or changes something.

    With ``atomic`` (the default) the handler runs in one transaction with the
    completion of its key: a write that commits has its response stored with it,
    so no crash, lost connection or database restart between the two can leave
    a committed write behind a key a retry may take over and run again.  A
    deadlock or serialization failure runs the whole block again.  A handler
    that calls the network after its own commit (a payment provider) passes
    ``atomic=False``; its writes must then be idempotent by themselves.
    """
    if handler is None:
        return functools.partial(idempotent, atomic=atomic)

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None or not _KEY_RE.match(key):
            raise IdempotencyKeyRequired()
        principal = principal_of(request)
        owner = principal.owner if principal is not None else "anonymous"
        claimed = _claim(owner, key, request_fingerprint(request), request)
        if isinstance(claimed, Response):
            return claimed

        def handle_and_complete():
            def handle():
                response = handler(view, request, *args, **kwargs)
                _complete(claimed, response)  # stores the response, or releases the key, with the writes
                return response

            # Writes the handler deferred (the stock levels' update) run after the response is stored.
            return late_window(handle)

        try:
            if atomic:
                return atomic_with_retry(handle_and_complete)
            response = handler(view, request, *args, **kwargs)
        except Exception as exc:  # a domain error rolled the handler's writes back
            try:
                response = view.handle_exception(exc)
            except Exception:
                IdempotencyRecord.objects.filter(pk=claimed.pk).delete()
                raise
        _complete(claimed, response)
        return response

    return wrapper


def idempotency_purge(*, now=None, batch_size: int = 5000) -> int:
    """Delete records older than the TTL, in batches.  Returns how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(hours=ttl_hours())
    deleted = 0
    while True:
        ids = list(IdempotencyRecord.objects.filter(created_at__lt=cutoff).order_by("id")
                   .values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += IdempotencyRecord.objects.filter(id__in=ids).delete()[0]


@shared_task(name="o2o.idempotency.purge", ignore_result=True)
def idempotency_purge_task() -> int:
    return idempotency_purge()
