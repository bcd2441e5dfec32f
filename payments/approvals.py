"""Manager approval at the POS: a manager's PIN or login, rate limited, every approval audited.

Discounts beyond the clerk's limit, price overrides, refunds without a
receipt, returns after the return window and voids need a manager of the
store (a store manager who belongs to it, its regional manager, or HQ).  The
manager types a PIN (stored hashed, like a password) or logs in in the same
dialog.  Attempts are counted in Redis per asking user: after
``POS_APPROVAL_MAX_ATTEMPTS`` (5) failures within ``POS_APPROVAL_WINDOW_SECONDS``
(300) further attempts are refused until the window passes.  When Redis is
unreachable approvals are refused rather than left unlimited.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from o2o.db import service
from o2o.errors import DomainError, InvalidInput, PermissionDenied
from o2o.money import money
from payments.models import ApprovalLog, ManagerPin
from stores.models import Role, StaffProfile, Store
from stores.selectors import staff_profile, staff_store_ids, user_role

MANAGER_ROLES = {Role.STORE_MANAGER.value, Role.REGIONAL_MANAGER.value, Role.HQ_ADMIN.value}
PIN_PATTERN = re.compile(r"^[0-9]{4,8}$")


class ApprovalDenied(PermissionDenied):
    code = "approval_denied"
    default_message = _("Wrong PIN or not a manager of this store.")


class ApprovalRateLimited(DomainError):
    status = 429
    code = "approval_rate_limited"
    default_message = _("Too many wrong attempts. Wait a few minutes, then try again.")


class ApprovalRequired(PermissionDenied):
    code = "approval_required"
    default_message = _("A manager must approve this.")


class InvalidPin(InvalidInput):
    code = "invalid_pin"
    default_message = _("A PIN is 4 to 8 digits.")


class PinTaken(InvalidInput):
    code = "pin_taken"
    default_message = _("Another manager of your stores uses this PIN; choose another.")


def max_attempts() -> int:
    return int(getattr(settings, "POS_APPROVAL_MAX_ATTEMPTS", 5))


def window_seconds() -> int:
    return int(getattr(settings, "POS_APPROVAL_WINDOW_SECONDS", 300))


def clerk_discount_limit_percent() -> Decimal:
    return Decimal(str(getattr(settings, "POS_CLERK_DISCOUNT_LIMIT_PERCENT", 10)))


def is_store_manager(user, store: Store | int) -> bool:
    """True when the user may approve at ``store``: a manager role and the store among theirs."""
    return user_role(user) in MANAGER_ROLES and getattr(store, "pk", store) in staff_store_ids(user)


def discount_needs_approval(*, user, store: Store | int, subtotal: Decimal, discount: Decimal) -> bool:
    """A clerk may give up to the configured percentage of the subtotal; managers need no approval."""
    if discount <= 0 or is_store_manager(user, store):
        return False
    return money(discount) > money(subtotal * clerk_discount_limit_percent() / Decimal(100))


# --- PINs -------------------------------------------------------------------------------------


def _approvers_sharing_stores(profile: StaffProfile) -> list[ManagerPin]:
    pins: dict[int, ManagerPin] = {}
    for store in Store.objects.filter(pk__in=staff_store_ids(profile.user)).order_by("pk")[:50]:
        pins.update({p.pk: p for p in _pins_for_store(store) if p.staff_id != profile.pk})
    return list(pins.values())


@service
def manager_pin_set(*, user, pin: str) -> ManagerPin:
    """Set the user's own approval PIN.  Only managers have one.

    Raises ApprovalDenied (not a manager), InvalidPin (not 4–8 digits), PinTaken
    (a manager sharing a store uses it: a PIN alone must name one manager).
    """
    profile = staff_profile(user)
    if profile is None or profile.role not in MANAGER_ROLES:
        raise ApprovalDenied(_("Only managers have an approval PIN."))
    pin = (pin or "").strip()
    if not PIN_PATTERN.match(pin):
        raise InvalidPin(field="pin")
    if any(check_password(pin, other.pin_hash) for other in _approvers_sharing_stores(profile)):
        raise PinTaken(field="pin")
    record, _created = ManagerPin.objects.update_or_create(staff=profile, defaults={"pin_hash": make_password(pin)})
    return record


# --- rate limit -------------------------------------------------------------------------------


def _attempt_key(user) -> str:
    return f"pos:approval-attempts:{user.pk}"


def _attempt_take(user) -> None:
    """Count one attempt before checking it, atomically, so parallel guesses cannot slip past the limit."""
    key = _attempt_key(user)
    try:
        cache.add(key, 0, timeout=window_seconds())
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 0, timeout=window_seconds())
            count = cache.incr(key)
    except Exception as exc:  # Redis down: refuse rather than allow unlimited guessing
        raise ApprovalRateLimited(_("Approvals are unavailable right now. Try again shortly.")) from exc
    if count > max_attempts():
        raise ApprovalRateLimited(params={"seconds": window_seconds()})


def _attempt_give_back(user) -> None:
    try:
        cache.decr(_attempt_key(user))
    except Exception:  # noqa: BLE001 - the key expired; nothing to give back
        pass


def attempts_reset(user) -> None:
    cache.delete(_attempt_key(user))


# --- approval ---------------------------------------------------------------------------------


def _pins_for_store(store: Store):
    """PINs of the managers who may approve at ``store`` (few: each check is a slow hash)."""
    scope = (Q(staff__role=Role.STORE_MANAGER, staff__memberships__store=store)
             | Q(staff__role=Role.REGIONAL_MANAGER, staff__region__cities__stores=store)
             | Q(staff__role=Role.HQ_ADMIN) | Q(staff__user__is_superuser=True))
    return (ManagerPin.objects.select_related("staff__user").filter(scope, staff__is_active=True,
                                                                    staff__user__is_active=True)
            .distinct().order_by("pk"))


def _manager_by_pin(store: Store, pin: str):
    for record in _pins_for_store(store):
        if check_password(pin, record.pin_hash) and is_store_manager(record.staff.user, store):
            return record.staff.user
    return None


def approval_verify(*, store: Store, clerk, pin: str = "", username: str = "", password: str = ""):
    """Check a manager's PIN, or username and password; returns (manager user, method).

    Every attempt counts against the asking user's limit; a successful one is
    given back.  Raises ApprovalRateLimited, ApprovalDenied.  Writes nothing
    to the database (the caller records the approval with the action).
    """
    pin, username = (pin or "").strip(), (username or "").strip()
    if not pin and not (username and password):
        raise ApprovalDenied(_("Enter a manager PIN, or a manager's username and password."), field="pin")
    _attempt_take(clerk)
    if pin:
        manager, method = _manager_by_pin(store, pin), ApprovalLog.Method.PIN
    else:
        manager, method = authenticate(username=username, password=password), ApprovalLog.Method.LOGIN
    if manager is None or not is_store_manager(manager, store):
        raise ApprovalDenied(field="pin")
    _attempt_give_back(clerk)
    return manager, method


@service
def approval_record(*, action: str, store: Store, clerk, manager, method: str, reason: str = "",
                    reference: str = "", amount: Decimal | None = None, data: dict | None = None) -> ApprovalLog:
    """Audit an approval with both staff ids.  Call it in the transaction of the approved action."""
    if action not in ApprovalLog.Action.values:
        raise InvalidInput(code="invalid_action", field="action", params={"action": str(action)})
    return ApprovalLog.objects.create(action=action, store=store, clerk=clerk, manager=manager, method=method,
                                      reason=(reason or "").strip()[:200], reference=(reference or "")[:64],
                                      amount=money(amount) if amount is not None else None, data=data or {})


@service
def approval_grant(*, action: str, store: Store, clerk, pin: str = "", username: str = "", password: str = "",
                   reason: str = "", reference: str = "", amount: Decimal | None = None,
                   data: dict | None = None) -> ApprovalLog:
    """Verify a manager and record the approval in one step (for approvals ahead of the action,
    such as a basket discount: the sale later checks the log by ``reference``)."""
    manager, method = approval_verify(store=store, clerk=clerk, pin=pin, username=username, password=password)
    return approval_record(action=action, store=store, clerk=clerk, manager=manager, method=method, reason=reason,
                           reference=reference, amount=amount, data=data)


def approval_covers(*, approval_id: int | None, action: str, store: Store, clerk, reference: str,
                    amount: Decimal | None = None) -> ApprovalLog | None:
    """The recorded approval when it is for this action, store, clerk and reference and covers ``amount``."""
    if not approval_id:
        return None
    log = ApprovalLog.objects.filter(pk=approval_id, action=action, store=store, clerk=clerk,
                                     reference=reference).first()
    if log is None or (amount is not None and (log.amount is None or log.amount < money(amount))):
        return None
    return log
