"""Minimum necessary access to members (PIPL): which members a partner may read, masking, access log.

A partner key reads only members related to its channel (and partner code): registered through it,
holding one of its customer ids, or — through relations other apps register here, such as orders —
having ordered through it.  Phone, name and outside identifiers are masked unless the key holds
``members:pii``; every read of unmasked data writes a ``PersonalDataAccess`` row head office sees.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from members.models import (
    IdentityKind,
    IssuedCoupon,
    Member,
    MemberIdentity,
    PersonalDataAccess,
    PointsEntry,
    RegistrationChannel,
    WalletEntry,
)
from o2o.db import service

# channel, partner → a filter on members related to that channel through another app's records.
_RELATIONS: list[Callable[[str, str], Q]] = []
# Other apps' part of a member's data: an exporter returns {section: rows}; an eraser pseudonymises.
_EXPORTERS: list[Callable[[Member], dict[str, Any]]] = []
_ERASERS: list[Callable[[Member], None]] = []
REGISTRATION_CHANNEL = {"web": RegistrationChannel.WEB, "mini_program": RegistrationChannel.MINI_PROGRAM,
                        "marketplace": RegistrationChannel.PARTNER}


def member_relation_register(func: Callable[[str, str], Q]) -> Callable[[str, str], Q]:
    """Register another way a member relates to a channel (called from an AppConfig.ready())."""
    if func not in _RELATIONS:
        _RELATIONS.append(func)
    return func


def members_related(*, channel: str, partner: str = "") -> QuerySet[Member]:
    """The members a partner of ``channel`` / ``partner`` may read."""
    own_ids = MemberIdentity.objects.filter(member=OuterRef("pk"), kind=IdentityKind.PARTNER,
                                            namespace=partner or channel)
    rule = Q(registration_channel=REGISTRATION_CHANNEL.get(channel, RegistrationChannel.PARTNER),
             registration_partner=partner or "") | Exists(own_ids)
    for relation in _RELATIONS:
        rule |= relation(channel, partner or "")
    return Member.objects.filter(rule)


def phone_mask(phone: str) -> str:
    """+8613812345678 → +86138****5678: enough to recognise, not to call."""
    if len(phone) <= 7:
        return "*" * len(phone)
    return f"{phone[:-8]}****{phone[-4:]}" if len(phone) >= 11 else f"{phone[:3]}****{phone[-2:]}"


def name_mask(name: str) -> str:
    """李雷雷 → 李**; Li Lei → L*****."""
    return f"{name[0]}{'*' * (len(name) - 1)}" if name else ""


def value_mask(value: str) -> str:
    return f"{value[:3]}***" if len(value) > 3 else "***"


@service
def personal_data_access_log(*, member_ids: Iterable[int], reader: str, user=None, path: str,
                             fields: str = "phone,name,identities") -> int:
    """Record that ``reader`` was shown the unmasked personal data of these members.  No locks."""
    rows = [PersonalDataAccess(member_id=pk, reader=reader[:100], user=user if getattr(user, "pk", None) else None,
                               fields=fields[:200], path=path[:300]) for pk in dict.fromkeys(member_ids)]
    PersonalDataAccess.objects.bulk_create(rows)
    return len(rows)


def member_data_hooks_register(*, exporter: Callable[[Member], dict[str, Any]] | None = None,
                               eraser: Callable[[Member], None] | None = None) -> None:
    """Let another app add its records of a member to the export and to the erasure."""
    if exporter is not None and exporter not in _EXPORTERS:
        _EXPORTERS.append(exporter)
    if eraser is not None and eraser not in _ERASERS:
        _ERASERS.append(eraser)


def _rows(queryset, *fields: str) -> list[dict[str, Any]]:
    return [{k: (str(v) if v is not None and not isinstance(v, (int, bool, str)) else v) for k, v in row.items()}
            for row in queryset.values(*fields)]


@service
def member_data_export(*, member: Member | int, actor=None) -> dict[str, Any]:
    """Everything we hold about a member (PIPL access request), as JSON-ready data; logged as a read.

    No locks; writes one ``PersonalDataAccess`` row naming ``actor``.
    """
    member = Member.objects.select_related("tier", "registration_store").get(pk=getattr(member, "pk", member))
    data: dict[str, Any] = {
        "member": {"id": member.pk, "phone": member.phone, "name": member.name,
                   "tier": member.tier.code if member.tier else None,
                   "registration_channel": member.registration_channel,
                   "registration_store": member.registration_store.code if member.registration_store else None,
                   "points_available": member.points_available, "points_frozen": member.points_frozen,
                   "wallet_principal": str(member.wallet_principal), "wallet_bonus": str(member.wallet_bonus),
                   "created_at": member.created_at.isoformat(),
                   "erased_at": member.erased_at.isoformat() if member.erased_at else None},
        "identities": _rows(member.identities.order_by("pk"), "kind", "namespace", "value", "created_at"),
        "points": _rows(PointsEntry.objects.filter(member=member).order_by("pk"), "kind", "available_delta",
                        "frozen_delta", "order_number", "reason", "created_at"),
        "wallet": _rows(WalletEntry.objects.filter(member=member).order_by("pk"), "kind", "principal_delta",
                        "bonus_delta", "reference", "created_at"),
        "coupons": _rows(IssuedCoupon.objects.filter(member=member).order_by("pk"), "code", "template__code",
                         "status", "issued_at"),
    }
    for exporter in _EXPORTERS:
        data.update(exporter(member))
    PersonalDataAccess.objects.create(member=member, reader=f"user {getattr(actor, 'username', '')}"[:100],
                                      user=actor if getattr(actor, "pk", None) else None, fields="export",
                                      path="admin: personal data export")
    return data


def erased_phone(member_id: int) -> str:
    """A pseudonym in the phone column: unique, never a callable number (no E.164 starts with 0)."""
    return f"+0{member_id:012d}"[:20]


@service
def member_erase(*, member: Member | int, actor=None) -> Member:
    """Erase a member's personal data on request (PIPL) by pseudonymising it; the ledgers stay.

    Phone and name are replaced, outside identities removed, and the apps registered here blank their
    copies (an order's customer name, phone and address).  Points, wallet, coupons, orders and their
    amounts are untouched, so every balance still equals its entries.  Locks the member row.
    Idempotent: an erased member is returned as is.
    """
    member = Member.objects.select_for_update(of=("self",)).get(pk=getattr(member, "pk", member))
    if member.erased_at is not None:
        return member
    member.phone, member.name, member.erased_at = erased_phone(member.pk), "", timezone.now()
    member.save(update_fields=["phone", "name", "erased_at", "updated_at"])
    MemberIdentity.objects.filter(member=member).delete()
    for eraser in _ERASERS:
        eraser(member)
    PersonalDataAccess.objects.create(member=member, reader=f"user {getattr(actor, 'username', '')}"[:100],
                                      user=actor if getattr(actor, "pk", None) else None, fields="erasure",
                                      path="admin: personal data erasure")
    return member
