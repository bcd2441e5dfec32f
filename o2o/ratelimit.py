"""Per-caller request limits with atomic counters in Redis.

One counter per caller and fixed one-minute window: a Lua script INCRements
it and sets its expiry on the first hit, in one round trip, so concurrent
requests on several web processes never lose a count.  Over the limit, the
API answers 429 with ``Retry-After`` (the seconds left in the window).

Settings (read with defaults): ``API_RATE_LIMIT_PER_MINUTE`` (600) for every
caller, overridden per partner key by ``PartnerKey.rate_limit_per_minute``;
``API_RATE_LIMIT_ANONYMOUS_PER_MINUTE`` (120) per client address for
unauthenticated endpoints (provider notifications).  When Redis is down the
limit is not enforced (logged): refusing every partner call would be worse.
"""

from __future__ import annotations

import logging
import threading

import redis
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from o2o.apiauth import principal_of

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""

_client_lock = threading.Lock()
_client: redis.Redis | None = None
_script = None


def redis_client() -> redis.Redis:
    """A shared client on settings.REDIS_URL with short timeouts (a slow Redis must not hang requests)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1,
                                           health_check_interval=30)
        return _client


def key_prefix() -> str:
    return str(getattr(settings, "API_RATE_LIMIT_PREFIX", "o2o:ratelimit"))


def hit(identity: str, *, limit: int, window: int = WINDOW_SECONDS) -> tuple[bool, int, int]:
    """Count one request of ``identity``; returns (allowed, count, seconds left in the window)."""
    global _script
    client = redis_client()
    if _script is None:
        _script = client.register_script(_SCRIPT)
    count, ttl = _script(keys=[f"{key_prefix()}:{identity}"], args=[window], client=client)
    return int(count) <= limit, int(count), max(int(ttl), 1)


def peek(identity: str) -> tuple[int, int]:
    """The count of ``identity`` in its current window and the seconds left, without counting."""
    client = redis_client()
    key = f"{key_prefix()}:{identity}"
    with client.pipeline(transaction=False) as pipe:
        count, ttl = pipe.get(key).ttl(key).execute()
    return int(count or 0), max(int(ttl), 0)


def reset(identity: str) -> None:
    redis_client().delete(f"{key_prefix()}:{identity}")


class RateLimited(exceptions.Throttled):
    default_code = "rate_limited"
    default_detail = _("Too many requests.")
    extra_detail_singular = _("Try again in {wait} second.")
    extra_detail_plural = _("Try again in {wait} seconds.")


class RateLimit(BaseThrottle):
    """DRF throttle backed by :func:`hit`; raises :class:`RateLimited` itself for a stable code."""

    def allow_request(self, request, view):
        principal = principal_of(request)
        if principal is not None:
            identity = principal.owner
            limit = principal.rate_limit or int(getattr(settings, "API_RATE_LIMIT_PER_MINUTE", 600))
        else:
            identity = f"ip:{self.get_ident(request)}"
            limit = int(getattr(settings, "API_RATE_LIMIT_ANONYMOUS_PER_MINUTE", 120))
        try:
            allowed, _count, ttl = hit(identity, limit=limit)
        except redis.RedisError as exc:
            log.warning("rate limit not enforced, Redis unavailable: %s", exc)
            return True
        if not allowed:
            raise RateLimited(wait=ttl)
        return True
