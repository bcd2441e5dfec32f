"""Sign-in throttling for the POS and the admin: wrong passwords lock the login out for a while.

Failures are counted in Redis per user name and client address (the atomic counter of
:mod:`o2o.ratelimit`).  After ``LOGIN_MAX_FAILURES`` (5) wrong passwords within
``LOGIN_LOCKOUT_SECONDS`` (900) every further attempt — the right password included — is refused
with a message saying how long to wait, without checking the password.  The window starts at the
first failure; a successful sign-in clears the count.  Counting per user *and* address keeps one
guesser from locking a colleague out at another till.  When Redis is unreachable the limit is not
enforced (logged), so that a Redis outage does not keep every store from signing in.
"""

from __future__ import annotations

import logging
import math

import redis
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import ngettext

from o2o.ratelimit import hit, peek, reset

log = logging.getLogger(__name__)


def max_failures() -> int:
    return int(getattr(settings, "LOGIN_MAX_FAILURES", 5))


def lockout_seconds() -> int:
    return int(getattr(settings, "LOGIN_LOCKOUT_SECONDS", 900))


def _key(username: str, address: str) -> str:
    return f"login-failures:{(username or '').strip().lower()}:{address}"


def client_address(request) -> str:
    return (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"


def locked_for(username: str, address: str) -> int:
    """Seconds this login stays locked out from this address; 0 when it may try."""
    try:
        count, ttl = peek(_key(username, address))
        return max(ttl, 1) if count >= max_failures() else 0
    except redis.RedisError as exc:
        log.warning("login throttling not enforced, Redis unavailable: %s", exc)
        return 0


def failure_record(username: str, address: str) -> int:
    """Count one wrong password; returns the seconds locked out now (0 while attempts remain)."""
    try:
        allowed, _count, ttl = hit(_key(username, address), limit=max_failures() - 1, window=lockout_seconds())
    except redis.RedisError as exc:
        log.warning("login failure not counted, Redis unavailable: %s", exc)
        return 0
    return 0 if allowed else ttl


def failures_clear(username: str, address: str) -> None:
    try:
        reset(_key(username, address))
    except redis.RedisError as exc:
        log.warning("login failures not cleared, Redis unavailable: %s", exc)


def lockout_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext(
        "Too many failed sign-in attempts. Try again in %(minutes)d minute.",
        "Too many failed sign-in attempts. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


class ThrottledLoginMixin:
    """Refuses a locked-out login before the password is checked; counts each wrong password."""

    locked_out = ""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        wait = locked_for(username, address)
        if wait:
            self.locked_out = lockout_message(wait)
            raise forms.ValidationError(self.locked_out, code="locked_out")
        try:
            cleaned = super().clean()
        except forms.ValidationError as error:
            if any(e.code == "invalid_login" for e in error.error_list):
                wait = failure_record(username, address)
                if wait:
                    self.locked_out = lockout_message(wait)
                    raise forms.ValidationError(self.locked_out, code="locked_out") from error
            raise
        failures_clear(username, address)
        return cleaned


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    """The POS sign-in form."""


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin sign-in form (staff only, as Django's)."""

