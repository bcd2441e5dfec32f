"""Per-caller request limits with atomic counters in Redis.

One counter per caller and fixed one-minute window: a Lua script INCRements
it and sets its expiry on the first hit, in one round trip, so concurrent
requests on several web processes never lose a count.  Over the limit, the
API answers 429 with ``Retry-After`` (the seconds left in the window).

Settings (environment variables of the same names): ``API_RATE_LIMIT_PER_MINUTE``
(600) for every caller, overridden per partner key by
``PartnerKey.rate_limit_per_minute``; ``API_RATE_LIMIT_ANONYMOUS_PER_MINUTE`` (120)
per client address for unauthenticated calls.  A view whose callers prove who they
are another way (a payment provider's signed notification) says so with
``anonymous_exempt`` and is not counted as anonymous.  When Redis is down the limit
is not enforced (logged): refusing every partner call would be worse.

Authenticated callers see where they stand in ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset``
headers (:class:`RateLimitHeadersMiddleware`).
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

    def anonymous_exempt(self, request, view) -> bool:
        """Whether a request without a key or login is nonetheless authenticated (not anonymous traffic)."""
        return False

    def allow_request(self, request, view):
        principal = principal_of(request)
        if principal is not None:
            identity = principal.owner
            limit = principal.rate_limit or int(getattr(settings, "API_RATE_LIMIT_PER_MINUTE", 600))
        elif self.anonymous_exempt(request, view):
            return True
        else:
            identity = f"ip:{self.get_ident(request)}"
            limit = int(getattr(settings, "API_RATE_LIMIT_ANONYMOUS_PER_MINUTE", 120))
        try:
            allowed, count, ttl = hit(identity, limit=limit)
        except redis.RedisError as exc:
            log.warning("rate limit not enforced, Redis unavailable: %s", exc)
            return True
        if principal is not None:
            # Read by RateLimitHeadersMiddleware on the way out (the Django request, not DRF's wrapper).
            request._request.o2o_rate_limit = (limit, max(limit - count, 0), ttl)
        if not allowed:
            raise RateLimited(wait=ttl)
        return True


class RateLimitHeadersMiddleware:
    """``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` on API answers.

    The names of the IETF httpapi draft: the caller's limit per window, the requests left in the
    current window, and the seconds until it resets.  Set for partner keys and staff sessions
    whenever the limiter counted the request (so not on a 401, which is refused before counting),
    including the 429 itself.  Nothing is sent when Redis was unavailable: no count, no promise.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        counted = getattr(request, "o2o_rate_limit", None)
        if counted is not None:
            limit, remaining, reset = counted
            response["RateLimit-Limit"] = str(limit)
            response["RateLimit-Remaining"] = str(remaining)
            response["RateLimit-Reset"] = str(reset)
        return response
