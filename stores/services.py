"""Writes for stores and staff."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Iterable, Sequence

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from o2o.db import service
from o2o.errors import Conflict, InvalidInput
from stores import locks
from stores.events import rollout_change
from stores.models import (
    Capability,
    CapabilitySwitch,
    City,
    Region,
    Role,
    RolloutChange,
    StaffProfile,
    Store,
    StoreMembership,
)
from stores.roles import roles_sync
from stores.selectors import capabilities_effective

# Roles that work in the head-office admin.  Store staff use the POS pages.
ADMIN_ROLES = {Role.HQ_ADMIN, Role.REGIONAL_MANAGER}
# Roles that belong to stores and so need at least one.
STORE_ROLES = {Role.STORE_MANAGER, Role.CLERK, Role.GUIDE}


def _pk(value) -> int | None:
    return getattr(value, "pk", value)


@service
def staff_create(*, username: str, password: str, display_name: str, role: str, employee_no: str,
                 stores: Iterable[Store | int] = (), region: Region | int | None = None,
                 guide_code: str | None = None) -> StaffProfile:
    """Create a login, its staff profile, its store memberships and its role group.

    HQ admins and regional managers get ``is_staff`` (the admin); nobody becomes
    a superuser here.  Raises InvalidInput (unknown role, weak password, a
    regional manager without region, store staff without a store, an unknown
    store) or Conflict (username, employee number or guide code taken).  No
    side effects beyond the rows written.
    """
    username, employee_no = username.strip(), employee_no.strip()
    guide_code = (guide_code or "").strip() or None
    if role not in Role.values:
        raise InvalidInput(_("Unknown role."), code="unknown_role", field="role")
    role = Role(role)
    if not username:
        raise InvalidInput(_("A username is required."), code="username_required", field="username")
    if not employee_no:
        raise InvalidInput(_("An employee number is required."), code="employee_no_required",
                           field="employee_no")
    store_ids = sorted({_pk(s) for s in stores})
    region_id = _pk(region)
    if role == Role.REGIONAL_MANAGER and region_id is None:
        raise InvalidInput(_("A regional manager needs a region."), code="region_required", field="region")
    if role in STORE_ROLES and not store_ids:
        raise InvalidInput(_("Store staff need at least one store."), code="store_required", field="stores")
    if len(store_ids) != Store.objects.filter(pk__in=store_ids).count():
        raise InvalidInput(_("Unknown store."), code="unknown_store", field="stores")
    if region_id is not None and not Region.objects.filter(pk=region_id).exists():
        raise InvalidInput(_("Unknown region."), code="unknown_region", field="region")

    User = get_user_model()
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict(_("This username is taken."), code="username_taken", field="username")
    if StaffProfile.objects.filter(employee_no=employee_no).exists():
        raise Conflict(_("This employee number is taken."), code="employee_no_taken", field="employee_no")
    if guide_code and StaffProfile.objects.filter(guide_code=guide_code).exists():
        raise Conflict(_("This guide code is taken."), code="guide_code_taken", field="guide_code")

    user = User(username=username, first_name=display_name[:150], is_staff=role in ADMIN_ROLES)
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise InvalidInput(" ".join(str(m) for m in exc.messages), code="invalid_password", field="password")
    user.set_password(password)
    user.save()

    profile = StaffProfile.objects.create(user=user, employee_no=employee_no, display_name=display_name,
                                          role=role, region_id=region_id, guide_code=guide_code)
    StoreMembership.objects.bulk_create([StoreMembership(staff=profile, store_id=s) for s in store_ids])
    user.groups.add(roles_sync(roles=[role])[role.value])
    return profile


# --- roll-out ----------------------------------------------------------------------------------


def _on_off(value: bool | None) -> str:
    return "" if value is None else ("on" if value else "off")


@service
def capability_set(*, capability: str, enabled: bool | None, region: Region | None = None,
                   city: City | None = None, store: Store | None = None, actor=None) -> CapabilitySwitch | None:
    """Switch a capability on or off at one level (no place: the global default); ``enabled=None``
    removes the switch, so the level inherits again.  Writes a roll-out audit row.

    Locks: the switch row (upsert).  Raises InvalidInput (unknown capability, two places).
    """
    if capability not in Capability.values:
        raise InvalidInput(_("Unknown capability."), code="unknown_capability", field="capability")
    if sum(p is not None for p in (region, city, store)) > 1:
        raise InvalidInput(_("Pick one place: a region, a city or a store."), code="one_place_only")
    where = {"capability": capability, "region": region, "city": city, "store": store}
    current = CapabilitySwitch.objects.select_for_update().filter(**where).first()
    before = current.enabled if current else None
    if enabled is None:
        if current is not None:
            current.delete()
        switch = None
    else:
        switch, _created = CapabilitySwitch.objects.update_or_create(
            **where, defaults={"enabled": bool(enabled), "updated_by": _user(actor)})
    if before != enabled:
        rollout_change(batch=uuid.uuid4(), kind=RolloutChange.Kind.SWITCH if enabled is not None
                       else RolloutChange.Kind.CLEAR, actor=actor, capability=capability, region=region,
                       city=city, store=store, before=_on_off(before), after=_on_off(enabled))
    return switch


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


@service
def launch_date_set(*, launched_on: date | None, city: City | None = None, store: Store | None = None,
                    actor=None) -> None:
    """Record (or clear) the O2O launch date of a city or a store, with an audit row."""
    place = city or store
    if place is None or (city is not None and store is not None):
        raise InvalidInput(_("Pick a city or a store."), code="one_place_only")
    before = type(place).objects.select_for_update().values_list("launched_on", flat=True).get(pk=place.pk)
    if before == launched_on:
        return
    type(place).objects.filter(pk=place.pk).update(launched_on=launched_on)
    place.launched_on = launched_on
    rollout_change(batch=uuid.uuid4(), kind=RolloutChange.Kind.LAUNCH, actor=actor, city=city, store=store,
                   before=before.isoformat() if before else "", after=launched_on.isoformat() if launched_on else "")


@dataclass(frozen=True)
class RolloutStep:
    """One change a roll-out copy makes to a target city."""

    city: City
    kind: str  # RolloutChange.Kind.SWITCH or LAUNCH
    capability: str
    before: str  # the city's own switch (on/off) or launch date; empty: none
    after: str
    inherited: str = ""  # without a switch of its own: what the city has now and from where

    @property
    def key(self) -> tuple:
        return (self.city.pk, self.kind, self.capability, self.before, self.after)

    def __str__(self) -> str:
        if self.kind == RolloutChange.Kind.LAUNCH:
            return str(_("%(city)s: launch date %(before)s → %(after)s")) % {
                "city": self.city, "before": self.before or "—", "after": self.after}
        return str(_("%(city)s: %(capability)s %(before)s → %(after)s")) % {
            "city": self.city, "capability": Capability(self.capability).label,
            "before": _label(self.before) if self.before else f"({self.inherited})", "after": _label(self.after)}


def _label(value: str) -> str:
    return str(_("on")) if value == "on" else str(_("off"))


def _copy_plan(source: City, targets: Sequence[City], launch_on: date | None) -> list[RolloutStep]:
    pilot = capabilities_effective(city=source)
    own = {(s.city_id, s.capability): s.enabled for s in CapabilitySwitch.objects.filter(city__in=targets)}
    steps = []
    for city in targets:
        now = {e.capability: e for e in capabilities_effective(city=city)}
        for eff in pilot:
            mine = own.get((city.pk, eff.capability))
            if mine is None or mine != eff.enabled:
                inherited = "" if mine is not None else f"{_label(_on_off(now[eff.capability].enabled))}, " \
                                                         f"{now[eff.capability].source}"
                steps.append(RolloutStep(city, RolloutChange.Kind.SWITCH, eff.capability, _on_off(mine),
                                         _on_off(eff.enabled), inherited))
        if launch_on is not None and city.launched_on != launch_on:
            steps.append(RolloutStep(city, RolloutChange.Kind.LAUNCH, "",
                                     city.launched_on.isoformat() if city.launched_on else "", launch_on.isoformat()))
    return steps


def rollout_digest(steps: Sequence[RolloutStep]) -> str:
    """A fingerprint of a list of changes: what a preview showed, so the apply can check it."""
    return hashlib.sha256(repr([step.key for step in steps]).encode()).hexdigest()[:32]


@service
def rollout_copy(*, source: City, targets: Iterable[City | int], apply: bool, launch_on: date | None = None,
                 actor=None, expect: str | None = None) -> list[RolloutStep]:
    """Copy a pilot city's O2O configuration to other cities (a province: its cities).

    Each target gets a city-level switch equal to the pilot's effective value for every
    capability (store-level switches in the targets stay, they are the stores' own business),
    and ``launch_on`` as its launch date when given.  Returns every change; with
    ``apply=False`` (the dry run) nothing is written, with ``apply=True`` exactly those
    changes are made, in this one transaction, each with an audit row naming the actor and
    the pilot.  Applying twice changes nothing the second time.

    With ``expect`` (the ``rollout_digest`` of the previewed changes), nothing is applied
    unless the changes are still exactly those.

    Locks: the target cities, in id order.  Raises InvalidInput (no target besides the pilot),
    Conflict ``rollout_changed`` (the changes differ from the previewed ones).
    """
    target_ids = sorted({getattr(t, "pk", t) for t in targets} - {source.pk})
    if not target_ids:
        raise InvalidInput(_("Pick at least one city other than the pilot."), code="no_targets", field="targets")
    cities = locks.cities_for_update(target_ids)
    if len(cities) != len(target_ids):
        raise InvalidInput(_("Unknown city."), code="unknown_city", field="targets")
    steps = _copy_plan(source, cities, launch_on)
    if expect is not None and rollout_digest(steps) != expect:
        raise Conflict(_("The configuration changed since the preview; check the new list and apply again."),
                       code="rollout_changed")
    if not apply:
        return steps
    batch, user = uuid.uuid4(), _user(actor)
    for step in steps:
        if step.kind == RolloutChange.Kind.LAUNCH:
            City.objects.filter(pk=step.city.pk).update(launched_on=launch_on)
        else:
            CapabilitySwitch.objects.update_or_create(
                capability=step.capability, region=None, city=step.city, store=None,
                defaults={"enabled": step.after == "on", "updated_by": user})
        rollout_change(batch=batch, kind=step.kind, actor=actor, capability=step.capability, city=step.city,
                       before=step.before, after=step.after, source=f"{source.code} {source.name}")
    return steps
