"""Staff roles as Django groups.

Each ``stores.models.Role`` has exactly one ``auth.Group`` whose name is the role's
value (``hq_admin``, ``regional_manager``, ``store_manager``, ``clerk``, ``guide``).
The value, not the translated label, is used so the name is stable across
languages and matches ``StaffProfile.role``.  ``roles_sync()`` makes each group's
permissions exactly those of ``ROLE_PERMISSIONS``; it is idempotent and is run by
``seed_demo`` and by ``staff_create`` (for the one role it needs).  Run it again
after a migration adds models so the HQ and read-only grants cover them.

Permissions are model permissions only.  Which stores a user may touch is a
separate question, answered by ``stores.selectors``.
"""

from __future__ import annotations

from typing import Iterable

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from o2o.db import service
from stores.models import Role

# The apps whose data staff work with.  ``o2o`` holds the outbox (HQ may look at it).
BUSINESS_APPS = ("catalog", "stores", "inventory", "members", "promotions", "orders", "payments", "settlement",
                 "reporting", "integrations", "o2o")

ALL = ("add", "change", "delete", "view")

# role -> list of (app_label, model_name or "*", actions).
ROLE_PERMISSIONS: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    # Everything in the business apps.  Users and groups are created through
    # ``staff_create`` (or by a superuser): HQ can look at them, not edit them,
    # so nobody can grant themselves superuser through the user admin.
    Role.HQ_ADMIN: [(app, "*", ALL) for app in BUSINESS_APPS]
    + [("auth", "user", ("view",)), ("auth", "group", ("view",))],
    # Sees the whole business; moves stock between locations and runs counts.
    Role.REGIONAL_MANAGER: [(app, "*", ("view",)) for app in BUSINESS_APPS if app != "o2o"]
    + [
        ("inventory", "transfer", ("add", "change")),
        ("inventory", "transferline", ("add", "change")),
        ("inventory", "stockcount", ("add", "change")),
        ("inventory", "stockcountline", ("add", "change")),
        ("inventory", "replenishmentproposal", ("change",)),
    ],
    Role.STORE_MANAGER: [
        ("catalog", "*", ("view",)),
        ("stores", "store", ("view",)),
        ("stores", "warehouse", ("view",)),
        ("stores", "staffprofile", ("view",)),
        ("inventory", "stocklevel", ("view",)),
        ("inventory", "stockmove", ("view",)),
        ("inventory", "transfer", ("view",)),
        ("inventory", "transferline", ("view",)),
        ("inventory", "stockcount", ("add", "view")),
        ("inventory", "stockcountline", ("add", "view")),
    ],
    Role.CLERK: [
        ("catalog", "*", ("view",)),
        ("stores", "store", ("view",)),
        ("inventory", "stocklevel", ("view",)),
        ("inventory", "stockcount", ("add", "view")),
        ("inventory", "stockcountline", ("add", "view")),
    ],
    Role.GUIDE: [
        ("catalog", "*", ("view",)),
    ],
}


def role_group_name(role: str) -> str:
    return Role(role).value


def _permissions_for(role: str) -> list[Permission]:
    query = Q(pk__in=[])
    for app_label, model, actions in ROLE_PERMISSIONS[role]:
        rule = Q(content_type__app_label=app_label)
        if model == "*":
            rule &= Q(codename__regex=r"^(%s)_" % "|".join(actions))
        else:
            rule &= Q(content_type__model=model, codename__in=[f"{a}_{model}" for a in actions])
        query |= rule
    return list(Permission.objects.filter(query).order_by("pk"))


@service
def roles_sync(*, roles: Iterable[str] | None = None) -> dict[str, Group]:
    """Create or update one group per role so it holds exactly that role's permissions.

    Idempotent; takes no locks beyond the rows it writes; no side effects.
    Returns the groups by role value.
    """
    groups = {}
    for role in roles if roles is not None else Role.values:
        group, _ = Group.objects.get_or_create(name=role_group_name(role))
        group.permissions.set(_permissions_for(role))
        groups[Role(role).value] = group
    return groups
