"""Writes for stores and staff."""

from __future__ import annotations

from typing import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from o2o.db import service
from o2o.errors import Conflict, InvalidInput
from stores.models import Region, Role, StaffProfile, Store, StoreMembership
from stores.roles import roles_sync

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
