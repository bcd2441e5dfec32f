"""Who is calling the API: a partner system with an API key, or store staff with a session.

Partner keys look like ``o2o_<prefix>_<secret>`` and travel as
``Authorization: Bearer <key>``.  Only the SHA-256 of the whole key is stored;
the prefix finds the row and the hash is compared in constant time, so a
database leak does not leak usable keys.  A key carries scopes, a channel
(and partner code) and optionally a set of stores and an expiry.  Rotating a key
(``partner_key_rotate``) gives a partner a second live key; the old one expires
after a grace period, so the changeover needs no downtime.

Staff use their POS session.  They get the read scopes, ``orders:write`` and
``members:write`` (registering members at the counter), always limited to
their stores.  Which users are staff and which stores they see is the stores app's rule; it
registers it here (``staff_scope_register``) when it loads, so the platform imports no app.

Every view reads the caller as a :class:`Principal` (``principal_of``), and
filters its querysets with it, so an object outside the caller's reach is
simply not found.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Callable
from datetime import datetime, timedelta

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from o2o.models import PartnerKey

# (user) -> None when the user is not staff; else the ids of the stores they may see (None: all).
StaffScope = Callable[[object], "tuple[bool, frozenset[int] | None]"]
_staff_scope: list[StaffScope] = []


def staff_scope_register(func: StaffScope) -> StaffScope:
    """Register the rule that says whether a user is staff and which stores they see."""
    _staff_scope[:] = [func]
    return func


# (old key, new key) -> None, run inside the rotation's transaction: apps carry over what they
# hang on a key (webhook subscriptions), so nothing stops when the old key expires.
KeyRotated = Callable[[PartnerKey, PartnerKey], None]
_key_rotated: list[KeyRotated] = []


def key_rotated_register(func: KeyRotated) -> KeyRotated:
    """Register a step to run when a key is rotated (once per function, however often imported)."""
    if func not in _key_rotated:
        _key_rotated.append(func)
    return func


CATALOG_READ = "catalog:read"
STOCK_READ = "stock:read"
ORDERS_READ = "orders:read"
ORDERS_WRITE = "orders:write"
MEMBERS_READ = "members:read"
MEMBERS_WRITE = "members:write"
PAYMENTS_NOTIFY = "payments:notify"
# Unmasked phone, name and identities of members (each read is logged); without it they are masked.
MEMBERS_PII = "members:pii"
SCOPES = (CATALOG_READ, STOCK_READ, ORDERS_READ, ORDERS_WRITE, MEMBERS_READ, MEMBERS_WRITE, MEMBERS_PII,
          PAYMENTS_NOTIFY)
# Staff serve the member in front of them, so they read unmasked data (and each read is logged).
STAFF_SCOPES = frozenset({CATALOG_READ, STOCK_READ, ORDERS_READ, ORDERS_WRITE, MEMBERS_READ, MEMBERS_WRITE,
                          MEMBERS_PII})

PARTNER, STAFF = "partner", "staff"
KEY_PREFIX = "o2o"
# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# How long a rotated key keeps working beside its successor, unless told otherwise.
ROTATION_GRACE = timedelta(days=7)


# --- keys -----------------------------------------------------------------------------------------


def key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_generate() -> tuple[str, str]:
    """A new (prefix, full key).  The prefix is public; the key is shown once and never stored."""
    prefix = secrets.token_hex(6)
    return prefix, f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"


def scopes_clean(scopes) -> list[str]:
    """Validated, de-duplicated scope list.  Raises ValueError naming an unknown scope."""
    result: list[str] = []
    for scope in scopes or []:
        for item in str(scope).replace(",", " ").split():
            if item not in SCOPES:
                raise ValueError(f"unknown scope {item!r}; known: {', '.join(SCOPES)}")
            if item not in result:
                result.append(item)
    return result


@transaction.atomic
def partner_key_create(*, name: str, channel: str, scopes, partner: str = "", stores=(),
                       rate_limit_per_minute: int | None = None,
                       expires_at: datetime | None = None) -> tuple[PartnerKey, str]:
    """Create a key; returns (row, raw key).  The raw key exists only in this return value."""
    prefix, raw = key_generate()
    key = PartnerKey.objects.create(name=name, prefix=prefix, key_hash=key_hash(raw), channel=channel,
                                    partner=partner, scopes=scopes_clean(scopes),
                                    rate_limit_per_minute=rate_limit_per_minute, expires_at=expires_at)
    if stores:
        key.stores.set(stores)
    return key, raw


class KeyNotRotatable(ValueError):
    """The key is revoked, expired or already rotated: there is nothing live to hand over from."""


@transaction.atomic
def partner_key_rotate(*, key: PartnerKey, grace: timedelta = ROTATION_GRACE,
                       expires_at: datetime | None = None) -> tuple[PartnerKey, str]:
    """A new key with the same name, channel, partner, scopes, stores and rate limit; the old one
    stays valid for ``grace`` (or until it was to expire anyway, if sooner) and records its
    successor; what apps hang on the key follows it (``key_rotated_register``: webhook
    subscriptions move to the new key).  Returns (new row, raw key); ``expires_at`` is the new
    key's own expiry.

    Locks the old key's row, so of two rotations of one key at once the second finds it already
    rotated.  Raises KeyNotRotatable for a revoked, expired or already rotated key.
    """
    old = PartnerKey.objects.select_for_update().get(pk=key.pk)
    if not old.is_active:
        raise KeyNotRotatable(f"key {old.prefix} is revoked or expired")
    if old.replaced_by_id is not None:
        raise KeyNotRotatable(f"key {old.prefix} was already rotated; rotate its successor instead")
    new, raw = partner_key_create(name=old.name, channel=old.channel, scopes=old.scopes, partner=old.partner,
                                  stores=list(old.stores.all()),
                                  rate_limit_per_minute=old.rate_limit_per_minute, expires_at=expires_at)
    ends = timezone.now() + grace
    old.expires_at = min(ends, old.expires_at) if old.expires_at else ends
    old.replaced_by = new
    old.save(update_fields=["expires_at", "replaced_by"])
    for step in _key_rotated:
        step(old, new)
    key.expires_at, key.replaced_by = old.expires_at, new
    return new, raw


def partner_key_revoke(*, key: PartnerKey) -> PartnerKey:
    PartnerKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db(fields=["revoked_at"])
    return key


def _parse_key(raw: str) -> str | None:
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


# --- the caller ---------------------------------------------------------------------------------


class PartnerUser:
    """What ``request.user`` is for a partner key: authenticated, but no Django user and no actor."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, key: PartnerKey):
        self.key = key

    def __str__(self) -> str:
        return f"partner:{self.key.prefix}"


@dataclass(frozen=True)
class Principal:
    kind: str
    owner: str  # idempotency and rate-limit scope: "key:<id>" or "user:<id>"
    scopes: frozenset[str]
    key: PartnerKey | None = None
    user: object | None = None
    channel: str = ""
    partner: str = ""
    store_ids: frozenset[int] | None = None  # None: every store

    @property
    def actor(self):
        """The user services record as actor: the staff user; None for a partner system."""
        return self.user if self.kind == STAFF else None

    @property
    def is_partner(self) -> bool:
        return self.kind == PARTNER

    def may_use_store(self, store_id: int | None) -> bool:
        return self.store_ids is None or store_id in self.store_ids

    @property
    def rate_limit(self) -> int | None:
        return self.key.rate_limit_per_minute if self.key is not None else None


_NOT_READ = object()


def principal_of(request) -> Principal | None:
    """The caller of an authenticated API request (cached on the request), or None."""
    cached = getattr(request, "_o2o_principal", None)
    if cached is not None:
        return cached
    auth, user = getattr(request, "auth", None), getattr(request, "user", None)
    principal = None
    if isinstance(auth, PartnerKey):
        read = getattr(auth, "store_id_list", _NOT_READ)  # read with the key (PartnerKeyAuthentication)
        store_ids = frozenset(auth.stores.values_list("id", flat=True) if read is _NOT_READ else read or ())
        principal = Principal(kind=PARTNER, owner=f"key:{auth.pk}", scopes=frozenset(auth.scopes or []),
                              key=auth, channel=auth.channel, partner=auth.partner,
                              store_ids=store_ids or None)
    elif user is not None and getattr(user, "is_authenticated", False) and _staff_scope:
        is_staff, store_ids = _staff_scope[0](user)
        if is_staff:
            principal = Principal(kind=STAFF, owner=f"user:{user.pk}", scopes=STAFF_SCOPES, user=user,
                                  store_ids=store_ids)
    request._o2o_principal = principal
    return principal


# --- DRF authentication and permission ---------------------------------------------------------


def _key_with_stores(prefix: str) -> PartnerKey | None:
    """The key with this prefix and the ids of its stores (``store_id_list``, None for none): one statement."""
    return (PartnerKey.objects.filter(prefix=prefix)
            .annotate(store_id_list=ArrayAgg("stores__id", filter=Q(stores__id__isnull=False))).first())


class PartnerKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Send the API key as: Authorization: Bearer <key>."))
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid API key.")) from None
        prefix = _parse_key(raw)
        key = _key_with_stores(prefix) if prefix else None
        if key is None or not hmac.compare_digest(key.key_hash, key_hash(raw)):
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("This API key has been revoked."), code="api_key_revoked")
        if key.is_expired:
            raise exceptions.AuthenticationFailed(_("This API key has expired."), code="api_key_expired")
        now = timezone.now()
        if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
            PartnerKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return PartnerUser(key), key

    def authenticate_header(self, request):
        return 'Bearer realm="o2o"'


class InsufficientScope(exceptions.PermissionDenied):
    default_detail = _("This API key does not have the scope needed here.")
    default_code = "insufficient_scope"


class WrongPrincipal(exceptions.PermissionDenied):
    default_detail = _("This operation is not available to this kind of caller.")
    default_code = "caller_not_allowed"


class HasScope(BasePermission):
    """The caller is a partner key or store staff, and holds the scope the view names for the method.

    Views declare ``required_scopes = {"GET": "orders:read", "POST": "orders:write"}``
    and optionally ``principal_kinds = {"partner"}`` (or per method:
    ``{"POST": {"partner"}}``).  ``required_scopes = None`` opens a view to
    anyone, e.g. provider notifications (which check their own signature).
    """

    def has_permission(self, request, view):
        scopes = getattr(view, "required_scopes", {})
        if scopes is None:
            return True
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        principal = principal_of(request)
        if principal is None:
            raise exceptions.PermissionDenied(_("Only partner systems and store staff may use the API."),
                                              code="not_staff")
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        kinds = getattr(view, "principal_kinds", None)
        if isinstance(kinds, dict):
            kinds = kinds.get(method)
        kinds = kinds or {PARTNER, STAFF}
        if principal.kind not in kinds:
            raise WrongPrincipal(_("Only a partner API key may do this.") if kinds == {PARTNER}
                                 else _("Only store staff may do this."))
        needed = scopes.get(method) or scopes.get("*")
        if needed and needed not in principal.scopes:
            raise InsufficientScope(scope_message(needed))
        return True


def scope_message(scope: str) -> str:
    return str(_("This API key lacks the scope %(scope)s.") % {"scope": scope})


class PartnerKeyScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of partner keys (bearerAuth)."""

    target_class = PartnerKeyAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "o2o_<prefix>_<secret>",
                "description": f"Partner API key: Authorization: Bearer <key>. Scopes: {', '.join(SCOPES)}."}
