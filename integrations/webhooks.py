"""Webhooks: partners' subscriptions, signed deliveries with retries, dead letters.

Events come from the outbox: a consumer per webhook topic turns each message
into one ``WebhookDelivery`` per matching subscription (unique per
subscription and event id, so a redelivered message adds nothing).  Sending
is a Celery task that runs outside any transaction:

1. claim the delivery with one conditional UPDATE (a lease, so two workers
   never send it at once);
2. POST the stored body with httpx and a short timeout, signed
   ``X-O2O-Signature: t=<unix ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>``;
3. record a ``WebhookAttempt`` and the outcome in a short transaction: 2xx is
   delivered; anything else is retried with exponential backoff until
   ``give_up_at`` (``WEBHOOK_RETRY_HOURS``, 24 after creation), then the
   delivery is a dead letter, visible and replayable in the admin.

Every event body is ``{"id", "type", "created_at", "data"}``; ``id`` is stable
across retries and replays, so receivers drop duplicates by it, and order
events carry the order ``version`` so receivers can drop stale ones.

Settings (read with defaults): WEBHOOK_TIMEOUT_SECONDS (5), WEBHOOK_RETRY_HOURS
(24), WEBHOOK_RETRY_BASE_SECONDS (30), WEBHOOK_RETRY_MAX_SECONDS (3600),
WEBHOOK_ALLOW_PRIVATE_ADDRESSES (False: no deliveries to loopback or private
networks, so a subscription cannot make the server call internal services),
WEBHOOK_ALLOWED_PRIVATE_RECEIVERS (from the environment: host names and
addresses or networks in CIDR form that may be receivers even though private,
for an operator's intranet receiver; everything else private stays refused).

Partners test a subscription with a ``webhook.ping`` sent at once through the same
claim / sign / record path, and ask for deliveries again (one, or a time range).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import time
import uuid
from datetime import timedelta
from typing import Any, Iterable
from urllib.parse import urlsplit

import httpx
from celery import shared_task
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from o2o.apiauth import MEMBERS_READ, ORDERS_READ, STOCK_READ, key_rotated_register
from o2o.db import service
from o2o.errors import Conflict, InvalidInput
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from o2o.models import OutboxMessage, PartnerKey
from o2o.outbox import consumer

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-O2O-Signature"
EVENT_HEADER = "X-O2O-Event"
EVENT_ID_HEADER = "X-O2O-Event-Id"
DELIVERY_HEADER = "X-O2O-Delivery"
SIGNATURE_TOLERANCE_SECONDS = 300
QUEUED_SEND_EXPIRES_SECONDS = 600

ORDER_EVENTS = ("order.created", "order.paid", "order.ready_for_pickup", "order.shipped", "order.picked_up",
                "order.cancelled", "order.returned", "order.refunded", "order.updated")
STOCK_EVENTS = ("stock.availability_changed",)
MEMBER_EVENTS = ("member.points_changed",)
EVENT_SCOPES = {**{t: ORDERS_READ for t in ORDER_EVENTS}, **{t: STOCK_READ for t in STOCK_EVENTS},
                **{t: MEMBERS_READ for t in MEMBER_EVENTS}}
EVENTS = tuple(EVENT_SCOPES)
# Sent only on request (POST .../ping/), to any subscription whatever its events.
PING_EVENT = "webhook.ping"
# The most deliveries one ranged redelivery request may queue.
REDELIVER_MAX = 1000


def _setting(name: str, default):
    return getattr(settings, name, default)


# --- signing --------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={sign(secret, ts, body)}"


def signature_verify(secret: str, header: str, body: bytes, *, tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
                     now: float | None = None) -> bool:
    """What a receiver does: recompute the HMAC for the header's timestamp and refuse old timestamps."""
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        name, _sep, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        ts = int(parts.get("t", [""])[0])
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    expected = sign(secret, ts, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", []))


# --- subscriptions --------------------------------------------------------------------------------


def private_receivers() -> tuple[frozenset[str], tuple]:
    """The operator's allowlist (WEBHOOK_ALLOWED_PRIVATE_RECEIVERS): (host names, networks).

    An entry that parses as an address or CIDR network is a network (an address is a /32 or
    /128); anything else is a host name, compared case-insensitively and without a final dot.
    """
    hosts, networks = set(), []
    for entry in _setting("WEBHOOK_ALLOWED_PRIVATE_RECEIVERS", ()) or ():
        entry = str(entry).strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            if "/" in entry:
                log.warning("WEBHOOK_ALLOWED_PRIVATE_RECEIVERS: %r is neither a host nor a network", entry)
                continue
            hosts.add(entry.lower().rstrip("."))
    return frozenset(hosts), tuple(networks)


def _is_public(ip) -> bool:
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
                or ip.is_unspecified)


def _address_allowed(host: str) -> bool:
    """Every address the host resolves to is public, or the operator allowed it (by name or network)."""
    if _setting("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False):
        return True
    allowed_hosts, allowed_networks = private_receivers()
    if host.lower().rstrip(".") in allowed_hosts:
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError, ValueError):
        return False
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if _is_public(ip):
            continue
        if not any(ip.version == net.version and ip in net for net in allowed_networks):
            return False
    return True


def url_check(url: str) -> str:
    """A subscription URL: http(s), a host, and (unless allowed) not a private or loopback address."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(_("The URL must be an http(s) URL."), code="invalid_url", field="url")
    if parts.scheme == "http" and not _setting("WEBHOOK_ALLOW_HTTP", _setting("DEBUG", False)) \
            and not _setting("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False):
        raise InvalidInput(_("The URL must use https."), code="invalid_url", field="url")
    if not _address_allowed(parts.hostname):
        raise InvalidInput(_("The URL must point to a public address."), code="invalid_url", field="url")
    return url


def events_allowed(key: PartnerKey) -> list[str]:
    return [topic for topic, scope in EVENT_SCOPES.items() if scope in (key.scopes or [])]


def events_check(key: PartnerKey, events: Iterable[str]) -> list[str]:
    allowed = events_allowed(key)
    chosen: list[str] = []
    for event in events:
        if event == "*":
            chosen = ["*"]
            break
        if event not in EVENTS:
            raise InvalidInput(_("Unknown event %(event)s.") % {"event": event}, code="unknown_event",
                               field="events")
        if event not in allowed:
            raise InvalidInput(_("This API key lacks the scope for event %(event)s.") % {"event": event},
                               code="event_not_allowed", field="events")
        if event not in chosen:
            chosen.append(event)
    if not chosen:
        raise InvalidInput(_("Choose at least one event."), code="no_events", field="events")
    return chosen


@transaction.atomic
def subscription_create(*, key: PartnerKey, url: str, events: Iterable[str]) -> WebhookSubscription:
    """A new subscription with a fresh signing secret (shown to the partner once, in the create answer)."""
    return WebhookSubscription.objects.create(partner_key=key, url=url_check(url),
                                              events=events_check(key, events),
                                              secret=f"whsec_{secrets.token_urlsafe(32)}")


@key_rotated_register
def subscriptions_follow_rotation(old: PartnerKey, new: PartnerKey) -> None:
    """A rotated key's subscriptions move to its successor, with their URL, events and secret, so
    events keep coming once the old key expires; the partner manages them with the new key."""
    WebhookSubscription.objects.filter(partner_key=old).update(partner_key=new)


def _subscribed(subscription: WebhookSubscription, topic: str) -> bool:
    events = subscription.events or []
    if "*" in events:
        return topic in events_allowed(subscription.partner_key)
    return topic in events and EVENT_SCOPES.get(topic) in (subscription.partner_key.scopes or [])


def subscriptions_for(topic: str, *, channel: str | None = None, partner: str | None = None,
                      store_id: int | None = None) -> list[WebhookSubscription]:
    """Active subscriptions of active keys that want ``topic`` and may see an object of channel/partner/store.

    ``channel`` (order events) limits to keys of that channel and partner code, and then
    a store-restricted key only gets the events of its stores.
    """
    live_key = Q(partner_key__expires_at__isnull=True) | Q(partner_key__expires_at__gt=timezone.now())
    qs = (WebhookSubscription.objects.filter(is_active=True, partner_key__revoked_at__isnull=True)
          .filter(live_key)
          .filter(Q(events__contains=[topic]) | Q(events__contains=["*"]))
          .select_related("partner_key").prefetch_related("partner_key__stores").order_by("id"))
    if channel is not None:
        qs = qs.filter(partner_key__channel=channel, partner_key__partner=partner or "")
    found = []
    for sub in qs:
        if not _subscribed(sub, topic):
            continue
        store_ids = {s.pk for s in sub.partner_key.stores.all()}
        if channel is not None and store_ids and store_id not in store_ids:
            continue
        found.append(sub)
    return found


# --- creating deliveries ------------------------------------------------------------------------


def event_body(*, event_id: str, topic: str, data: dict[str, Any], created_at=None) -> str:
    return json.dumps({"id": event_id, "type": topic,
                       "created_at": (created_at or timezone.now()).isoformat(),
                       "data": data}, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True)


def deliveries_create(*, event_id: str, topic: str, data: dict[str, Any],
                      subscriptions: Iterable[WebhookSubscription], created_at=None) -> int:
    """One pending delivery per subscription (none twice for an event id); sent after commit."""
    now = timezone.now()
    give_up = now + timedelta(hours=float(_setting("WEBHOOK_RETRY_HOURS", 24)))
    body = event_body(event_id=event_id, topic=topic, data=data, created_at=created_at)
    rows = [WebhookDelivery(subscription=sub, event_id=event_id, topic=topic, body=body, give_up_at=give_up)
            for sub in subscriptions]
    if not rows:
        return 0
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    ids = list(WebhookDelivery.objects.filter(event_id=event_id,
                                              subscription__in=[r.subscription for r in rows],
                                              status=WebhookDelivery.Status.PENDING, attempts=0)
               .values_list("id", flat=True))
    transaction.on_commit(lambda: _enqueue(ids))
    return len(ids)


def _enqueue(ids: Iterable[int], countdown: float = 0) -> None:
    # A queued send that waited too long (broker backlog, no worker) is dropped by the worker;
    # the beat sweep queues the delivery again, so nothing stale piles up in the broker.
    expires = countdown + QUEUED_SEND_EXPIRES_SECONDS
    for delivery_id in ids:
        try:
            webhook_deliver.apply_async(args=[delivery_id], countdown=countdown, expires=expires, retry=False)
        except Exception as exc:  # broker down: the beat sweep sends it later
            log.warning("webhook delivery %s not queued: %s", delivery_id, exc)
            return


def _fanout(message: OutboxMessage) -> None:
    payload = message.payload or {}
    if message.topic in ORDER_EVENTS:
        subs = subscriptions_for(message.topic, channel=str(payload.get("channel", "")),
                                 partner=str(payload.get("partner", "")), store_id=payload.get("store_id"))
    else:
        subs = subscriptions_for(message.topic)
    deliveries_create(event_id=f"evt_{message.pk}", topic=message.topic, data=payload, subscriptions=subs,
                      created_at=message.created_at)


for _topic in ORDER_EVENTS + MEMBER_EVENTS:
    consumer(_topic, name="o2o.webhooks.fanout")(_fanout)


def stock_event_publish(data: dict[str, Any]) -> int:
    """A stock.availability_changed event to every subscriber (called by the stock sync drain)."""
    topic = STOCK_EVENTS[0]
    return deliveries_create(event_id=f"evt_{uuid.uuid4().hex}", topic=topic, data=data,
                             subscriptions=subscriptions_for(topic))


# --- sending ----------------------------------------------------------------------------------------


def backoff_seconds(attempts: int) -> float:
    base = float(_setting("WEBHOOK_RETRY_BASE_SECONDS", 30))
    cap = float(_setting("WEBHOOK_RETRY_MAX_SECONDS", 3600))
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay * random.uniform(0.9, 1.1)


def _claim(delivery_id: int, now) -> WebhookDelivery | None:
    lease = now + timedelta(seconds=float(_setting("WEBHOOK_TIMEOUT_SECONDS", 5)) + 30)
    claimed = (WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING,
                                              next_attempt_at__lte=now)
               .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now)).update(locked_until=lease))
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("subscription__partner_key").get(pk=delivery_id)


def _post(delivery: WebhookDelivery) -> tuple[int | None, str, str, int]:
    """POST the delivery; returns (status code or None, error, response excerpt, duration ms)."""
    sub = delivery.subscription
    body = delivery.body.encode()
    headers = {"Content-Type": "application/json", "User-Agent": "o2o-webhooks/1",
               EVENT_HEADER: delivery.topic, EVENT_ID_HEADER: delivery.event_id,
               DELIVERY_HEADER: str(delivery.pk), SIGNATURE_HEADER: signature_header(sub.secret, body)}
    started = time.monotonic()
    host = urlsplit(sub.url).hostname or ""
    if not _address_allowed(host):
        return None, "address not allowed", "", 0
    try:
        with httpx.Client(timeout=float(_setting("WEBHOOK_TIMEOUT_SECONDS", 5)), follow_redirects=False,
                          trust_env=False) as client:
            response = client.post(sub.url, content=body, headers=headers)
        excerpt = response.text[:500]
        return response.status_code, "", excerpt, int((time.monotonic() - started) * 1000)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500], "", int((time.monotonic() - started) * 1000)


def _record(delivery: WebhookDelivery, *, status_code: int | None, error: str, excerpt: str, duration: int,
            now) -> WebhookDelivery:
    ok = status_code is not None and 200 <= status_code < 300
    if status_code is not None and not ok and not error:
        error = f"HTTP {status_code}"
    with transaction.atomic():
        row = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        WebhookAttempt.objects.create(delivery=row, status_code=status_code, duration_ms=duration,
                                      error=error, response_excerpt=excerpt, succeeded=ok)
        row.attempts += 1
        row.last_status_code, row.last_error, row.locked_until = status_code, error[:500], None
        if ok:
            row.status, row.delivered_at = WebhookDelivery.Status.SUCCEEDED, now
        elif now >= row.give_up_at:
            row.status = WebhookDelivery.Status.DEAD
        else:
            delay = backoff_seconds(row.attempts)
            row.next_attempt_at = now + timedelta(seconds=delay)
            transaction.on_commit(lambda: _enqueue([row.pk], countdown=delay))
        row.save(update_fields=["attempts", "last_status_code", "last_error", "locked_until", "status",
                                "delivered_at", "next_attempt_at"])
    return row


def webhook_send(*, delivery_id: int) -> WebhookDelivery | None:
    """Send one due delivery once.  Returns the delivery after the attempt, or None if not due / taken.

    Calls the network, so never inside a transaction (RuntimeError otherwise).
    """
    if connection.in_atomic_block:
        raise RuntimeError("webhook_send calls the network; call it outside any transaction")
    now = timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    sub = delivery.subscription
    if not sub.is_active or not sub.partner_key.is_active:
        return _record(delivery, status_code=None, error="subscription disabled", excerpt="", duration=0,
                       now=max(now, delivery.give_up_at))
    status_code, error, excerpt, duration = _post(delivery)
    return _record(delivery, status_code=status_code, error=error, excerpt=excerpt, duration=duration,
                   now=timezone.now())


def deliveries_due_ids(*, limit: int = 500) -> list[int]:
    now = timezone.now()
    return list(WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING,
                                               next_attempt_at__lte=now)
                .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
                .order_by("next_attempt_at", "id").values_list("id", flat=True)[:limit])


@service
def ping_create(*, subscription: WebhookSubscription) -> WebhookDelivery:
    """A ``webhook.ping`` delivery for the subscription, due now, with no retry window.

    The caller sends it right after commit (``webhook_send``); a failed ping is a dead letter
    at once rather than retried for a day.  Raises Conflict (``subscription_inactive``) when
    the subscription or its key is disabled.
    """
    if not subscription.is_active or not subscription.partner_key.is_active:
        raise Conflict(_("This subscription is not active."), code="subscription_inactive")
    now = timezone.now()
    event_id = f"evt_ping_{uuid.uuid4().hex}"
    body = event_body(event_id=event_id, topic=PING_EVENT, created_at=now,
                      data={"subscription": subscription.pk, "url": subscription.url})
    return WebhookDelivery.objects.create(subscription=subscription, event_id=event_id, topic=PING_EVENT,
                                          body=body, next_attempt_at=now, give_up_at=now)


def ping_send(*, subscription: WebhookSubscription) -> WebhookDelivery:
    """Create a ping and send it now; the delivery after its attempt.

    Called inside someone else's transaction (a caller that groups writes, a test), it cannot
    call the network: the ping is then queued after that commit, for a worker, and returned pending.
    """
    delivery = ping_create(subscription=subscription)
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _enqueue([delivery.pk]))
        return delivery
    sent = webhook_send(delivery_id=delivery.pk)
    if sent is None:  # the beat sweep claimed it first; it is sent there, once
        delivery.refresh_from_db()
        return delivery
    return sent


@service
def deliveries_redeliver(*, ids: Iterable[int]) -> list[int]:
    """Send these deliveries again now (the partner API's redeliver), same event id and body.

    Delivered and dead ones become pending with a new retry window; pending ones that no worker
    holds right now are brought forward (one being sent is left to finish).  Queues the sends
    after commit.  Returns the ids that will be sent.
    """
    now = timezone.now()
    give_up = now + timedelta(hours=float(_setting("WEBHOOK_RETRY_HOURS", 24)))
    ids = list(ids)
    rows = (WebhookDelivery.objects.filter(pk__in=ids)
            .filter(~Q(status=WebhookDelivery.Status.PENDING) | Q(locked_until__isnull=True)
                    | Q(locked_until__lt=now)))
    chosen = list(rows.order_by("id").values_list("id", flat=True))
    WebhookDelivery.objects.filter(pk__in=chosen).update(status=WebhookDelivery.Status.PENDING,
                                                         next_attempt_at=now, locked_until=None,
                                                         give_up_at=give_up)
    transaction.on_commit(lambda: _enqueue(chosen))
    return chosen


def deliveries_in_range(*, key: PartnerKey, since, until, statuses: Iterable[str],
                        subscription_id: int | None = None) -> list[int]:
    """Ids of the key's deliveries created in [since, until) with these statuses (pings left out).

    Raises InvalidInput (``too_many_deliveries``) past REDELIVER_MAX: narrow the range.
    """
    qs = (WebhookDelivery.objects.filter(subscription__partner_key=key, created_at__gte=since,
                                         created_at__lt=until, status__in=list(statuses))
          .exclude(topic=PING_EVENT))
    if subscription_id is not None:
        qs = qs.filter(subscription_id=subscription_id)
    ids = list(qs.order_by("id").values_list("id", flat=True)[:REDELIVER_MAX + 1])
    if len(ids) > REDELIVER_MAX:
        raise InvalidInput(_("More than %(max)s deliveries match; choose a shorter time range.")
                           % {"max": REDELIVER_MAX}, code="too_many_deliveries",
                           params={"max": REDELIVER_MAX})
    return ids


@transaction.atomic
def deliveries_replay(*, ids: Iterable[int]) -> int:
    """Send again (admin action "replay"): pending now, with a new retry window; same event id and body."""
    now = timezone.now()
    ids = list(ids)
    count = WebhookDelivery.objects.filter(pk__in=ids).exclude(status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.PENDING, next_attempt_at=now, locked_until=None,
        give_up_at=now + timedelta(hours=float(_setting("WEBHOOK_RETRY_HOURS", 24))))
    transaction.on_commit(lambda: _enqueue(ids))
    return count


@shared_task(name="o2o.webhooks.deliver", ignore_result=True)
def webhook_deliver(delivery_id: int) -> None:
    webhook_send(delivery_id=delivery_id)


@shared_task(name="o2o.webhooks.deliveries_due", ignore_result=True)
def webhook_deliveries_due() -> int:
    """Beat: queue every due delivery (retries whose countdown task was lost, broker outages)."""
    ids = deliveries_due_ids()
    _enqueue(ids)
    return len(ids)
