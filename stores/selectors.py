"""Who a staff user is and which stores and warehouses they may see.

HQ admins and superusers see every store; a regional manager the stores (and
warehouses) of their region; everyone else the stores they are members of.
A user without an active staff profile sees nothing.  Admin querysets, POS
pages and the API filter with these, never with object permissions.
"""

from __future__ import annotations

from stores.models import Role, StaffProfile, Store, Warehouse


def staff_profile(user) -> StaffProfile | None:
    """The user's active staff profile, or None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    try:
        profile = user.staff
    except StaffProfile.DoesNotExist:
        return None
    return profile if profile.is_active else None


def user_role(user) -> str | None:
    """The user's role value; superusers count as HQ admins.  None for non-staff."""
    if user is None or not getattr(user, "is_active", False):
        return None
    if user.is_superuser:
        return Role.HQ_ADMIN.value
    profile = staff_profile(user)
    return profile.role if profile else None


def staff_sees_all(user) -> bool:
    """True when the user is not restricted to some stores (HQ admin or superuser)."""
    return user_role(user) == Role.HQ_ADMIN


def staff_store_ids(user) -> set[int]:
    role = user_role(user)
    if role is None:
        return set()
    if role == Role.HQ_ADMIN:
        return set(Store.objects.values_list("id", flat=True))
    profile = staff_profile(user)
    if role == Role.REGIONAL_MANAGER:
        return set(Store.objects.filter(city__region_id=profile.region_id).values_list("id", flat=True))
    return set(profile.memberships.values_list("store_id", flat=True))


def staff_warehouse_ids(user) -> set[int]:
    """Warehouses the user may see: all for HQ; every warehouse in the region (central ones
    included) for a regional manager; their stores' stockrooms for store staff."""
    role = user_role(user)
    if role is None:
        return set()
    if role == Role.HQ_ADMIN:
        return set(Warehouse.objects.values_list("id", flat=True))
    profile = staff_profile(user)
    if role == Role.REGIONAL_MANAGER:
        return set(Warehouse.objects.filter(city__region_id=profile.region_id).values_list("id", flat=True))
    return set(Warehouse.objects.filter(store__memberships__staff=profile).values_list("id", flat=True))


def staff_api_scope(user) -> tuple[bool, frozenset[int] | None]:
    """Whether ``user`` is store staff, and the stores they see (None: every store)."""
    if not user_role(user):
        return False, None
    return True, (None if staff_sees_all(user) else frozenset(staff_store_ids(user)))
