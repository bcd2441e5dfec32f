"""Who a staff user is and which stores and warehouses they may see.

HQ admins and superusers see every store; a regional manager the stores (and
warehouses) of their region; everyone else the stores they are members of.
A user without an active staff profile sees nothing.  Admin querysets, POS
pages and the API filter with these, never with object permissions.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from stores.models import (
    Capability,
    CapabilitySwitch,
    City,
    Role,
    StaffProfile,
    Store,
    TradeArea,
    TradeAreaPostcode,
    Warehouse,
)


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


def staff_stores(user):
    """The stores the user may work in, as a query: all for HQ; the region's for a regional manager;
    their memberships' for store staff; none for anyone else."""
    role = user_role(user)
    if role is None:
        return Store.objects.none()
    if role == Role.HQ_ADMIN:
        return Store.objects.all()
    profile = staff_profile(user)
    if role == Role.REGIONAL_MANAGER:
        return Store.objects.filter(city__region_id=profile.region_id)
    return Store.objects.filter(memberships__staff=profile)


def staff_store_ids(user) -> set[int]:
    return set(staff_stores(user).values_list("id", flat=True))


def staff_member_stores(user) -> list[Store] | None:
    """The rows (warehouse joined) of ``staff_stores`` in one query, for a user whose stores are few
    (store staff); None for HQ and regional managers, whose scope is wide (ask ``staff_store_ids``)."""
    if user_role(user) in (Role.HQ_ADMIN, Role.REGIONAL_MANAGER):
        return None
    return list(staff_stores(user).select_related("warehouse"))


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


# --- roll-out ----------------------------------------------------------------------------------

LEVELS = ("store", "city", "region", "default")


@dataclass(frozen=True)
class Effective:
    """A capability's effective value at a place, and the switch it comes from."""

    capability: str
    enabled: bool
    level: str  # store, city, region, default, or "builtin" (no switch anywhere: on)
    place: object | None  # the Store, City or Region of the deciding switch

    @property
    def label(self) -> str:
        return str(Capability(self.capability).label)

    @property
    def source(self) -> str:
        """Where the value comes from, in the user's language."""
        if self.level == "builtin":
            return str(_("built-in default"))
        if self.level == "default":
            return str(_("global default"))
        names = {"store": _("store"), "city": _("city"), "region": _("region")}
        return f"{names[self.level]} {self.place}"


def _place_ids(*, store=None, city=None, region=None) -> dict[str, int | None]:
    """The ids of the place and of every level above it."""
    if store is not None:
        store_id = getattr(store, "pk", store)
        row = Store.objects.filter(pk=store_id).values("city_id", "city__region_id").first() or {}
        return {"store": store_id, "city": row.get("city_id"), "region": row.get("city__region_id")}
    if city is not None:
        city_id = getattr(city, "pk", city)
        region_id = City.objects.filter(pk=city_id).values_list("region_id", flat=True).first()
        return {"store": None, "city": city_id, "region": region_id}
    return {"store": None, "city": None, "region": getattr(region, "pk", region)}


def _decide(capability: str, switches: dict[tuple[str, str, int | None], CapabilitySwitch],
            ids: dict[str, int | None]) -> Effective:
    for level in LEVELS:
        key = (capability, level, ids.get(level) if level != "default" else None)
        if level != "default" and key[2] is None:
            continue
        switch = switches.get(key)
        if switch is not None:
            return Effective(capability, switch.enabled, level, switch.place)
    return Effective(capability, True, "builtin", None)


def _switches(capabilities, ids: dict[str, int | None]) -> dict:
    near = Q(region__isnull=True, city__isnull=True, store__isnull=True)
    for level in ("store", "city", "region"):
        if ids.get(level) is not None:
            near |= Q(**{f"{level}_id": ids[level]})
    rows = CapabilitySwitch.objects.filter(near, capability__in=list(capabilities)) \
        .select_related("region", "city", "store")
    return {(s.capability, s.level, getattr(s, f"{s.level}_id", None) if s.level != "default" else None): s
            for s in rows}


def capabilities_effective(*, store=None, city=None, region=None) -> list[Effective]:
    """Every capability's effective value at a store, city or region (none: the global default).

    A store's switch overrides its city's, which overrides its region's, which overrides the
    global default; with no switch at all a capability is on.  Two queries."""
    ids = _place_ids(store=store, city=city, region=region)
    switches = _switches(Capability.values, ids)
    return [_decide(c, switches, ids) for c in Capability.values]


def capability_effective(capability: str, *, store=None, city=None, region=None) -> Effective:
    ids = _place_ids(store=store, city=city, region=region)
    return _decide(capability, _switches([capability], ids), ids)


def capability_enabled(capability: str, *, store=None, city=None, region=None) -> bool:
    """Whether ``capability`` is on at the store (or city, or region).  See ``capabilities_effective``."""
    return capability_effective(capability, store=store, city=city, region=region).enabled


def capability_stores_enabled(capability: str, store_ids) -> set[int]:
    """Of ``store_ids``, the stores where ``capability`` is on.  Two queries whatever their number."""
    store_ids = list(store_ids)
    if not store_ids:
        return set()
    rows = Store.objects.filter(pk__in=store_ids).values_list("pk", "city_id", "city__region_id")
    switches = {(s.capability, s.level, getattr(s, f"{s.level}_id", None) if s.level != "default" else None): s
                for s in CapabilitySwitch.objects.filter(capability=capability)}
    return {pk for pk, city_id, region_id in rows
            if _decide(capability, switches, {"store": pk, "city": city_id, "region": region_id}).enabled}


# --- trade areas -------------------------------------------------------------------------------


def trade_area_resolver():
    """A function ``(postcode, city id) -> store id or None``: whose trade area an address is in.

    The store with the longest postcode prefix the postcode starts with decides; two stores with
    equally long prefixes: the one in the city shipped to, then the lowest id (the store opened
    first).  No postcode match: the store whose trade area is the city.  Settlement's SQL
    (``settlement.sql.TERRITORY_JOIN``) applies the same rule.  Two queries, then no more."""
    prefixes = list(TradeAreaPostcode.objects.values_list("prefix", "store_id", "store__city_id"))
    cities = dict(TradeArea.objects.values_list("city_id", "store_id"))

    def resolve(postcode: str | None, city_id: int | None) -> int | None:
        if postcode:
            found = [(len(prefix), store_city == city_id, -store_id) for prefix, store_id, store_city in prefixes
                     if postcode.startswith(prefix)]
            if found:
                return -max(found)[2]
        return cities.get(city_id)

    return resolve
