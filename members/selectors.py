"""Reads about members shared by the admin, POS pages, the API and the orders/payments apps.

Nothing here locks or writes.  Lookups of a member follow a merge to the
surviving member, so a caller holding the id of a merged duplicate still
finds the person.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal

import phonenumbers
from django.db.models import F, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from members.exceptions import InvalidAmount, InvalidPhone, InvalidPoints, MemberNotFound
from members.models import (
    EntryKind,
    IssuedCoupon,
    LotKind,
    LotStatus,
    Member,
    MemberIdentity,
    PointsConfig,
    PointsConsumption,
    PointsEntry,
    PointsLot,
    Tier,
    WalletEntryKind,
    WalletSpendAllocation,
)
from o2o.money import FEN, ZERO

DEFAULT_REGION = "CN"


# --- members ---------------------------------------------------------------------------------


def phone_normalize(raw: object) -> str:
    """A mobile number in E.164 ("13800138000" → "+8613800138000"); raises InvalidPhone."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhone(field="phone")
    try:
        number = phonenumbers.parse(raw.strip(), DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(field="phone", params={"phone": raw})
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(field="phone", params={"phone": raw})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def member_id_of(member: Member | int) -> int:
    """The id of a member given as an instance or an id; raises MemberNotFound for anything else."""
    if isinstance(member, Member):
        return member.pk
    if isinstance(member, bool) or not isinstance(member, int):
        raise MemberNotFound(params={"member": str(member)})
    return member


def member_get(member: Member | int) -> Member:
    """The member (or, for a merged duplicate, the member it was merged into)."""
    member_id = member_id_of(member)
    found = Member.objects.select_related("tier").filter(pk=member_id).first()
    if found is None:
        raise MemberNotFound(params={"member_id": member_id})
    return _surviving(found)


def _surviving(found: Member) -> Member:
    """``found``, or for a merged duplicate the member it was merged into."""
    return member_get(found.merged_into_id) if found.merged_into_id is not None else found


def member_by_phone(phone: str) -> Member | None:
    """The member with this mobile number, in any spelling phonenumbers understands."""
    found = Member.objects.select_related("tier").filter(phone=phone_normalize(phone)).first()
    return _surviving(found) if found is not None else None


def member_by_identity(*, kind: str, value: str, namespace: str = "") -> Member | None:
    identity = MemberIdentity.objects.filter(kind=kind, namespace=namespace, value=value).first()
    return member_get(identity.member_id) if identity is not None else None


def member_family_ids(member: Member | int) -> list[int]:
    """The member and every duplicate merged into it (merges keep the chain one level deep)."""
    member_id = member_id_of(member)
    return [member_id, *Member.objects.filter(merged_into_id=member_id).values_list("id", flat=True)]


def tier_for_spend(amount: Decimal) -> Tier | None:
    """The highest active tier whose threshold the rolling 12-month spend reaches."""
    return Tier.objects.filter(is_active=True, min_spend__lte=amount).order_by("-min_spend", "id").first()


# --- points ----------------------------------------------------------------------------------


def points_config() -> PointsConfig:
    """The programme settings: the saved row, or an unsaved one with the defaults."""
    return PointsConfig.objects.filter(pk=1).first() or PointsConfig(pk=1)


def _check_points_count(points: object) -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points < 0:
        raise InvalidPoints(field="points", params={"points": str(points)})
    return points


def points_value(points: int, *, config: PointsConfig | None = None) -> Decimal:
    """What ``points`` pay, in CNY.  Rounded down to the fen, so points never buy a fen too many."""
    points = _check_points_count(points)
    config = config or points_config()
    return (Decimal(points) / Decimal(config.points_per_yuan_redeemed)).quantize(FEN, rounding=ROUND_DOWN)


def points_for_value(amount: Decimal, *, config: PointsConfig | None = None) -> int:
    """The fewest points whose value covers ``amount`` (so ``points_value`` of it is >= amount)."""
    if isinstance(amount, (bool, float)) or not isinstance(amount, (Decimal, int)) or amount < 0:
        raise InvalidAmount(field="amount", params={"amount": str(amount)})
    config = config or points_config()
    return math.ceil(Decimal(amount) * config.points_per_yuan_redeemed)


def points_redeem_cap(*, order_amount: Decimal, config: PointsConfig | None = None) -> int:
    """The most points an order of this amount may be paid with (``redeem_max_share`` of it)."""
    if isinstance(order_amount, (bool, float)) or not isinstance(order_amount, (Decimal, int)) or order_amount < 0:
        raise InvalidAmount(field="order_amount", params={"amount": str(order_amount)})
    config = config or points_config()
    return int((Decimal(order_amount) * config.redeem_max_share * config.points_per_yuan_redeemed)
               .to_integral_value(rounding=ROUND_DOWN))


def points_redeemed_for_order(order_number: str) -> int:
    """Points redeemed for the order, less those restored after returns."""
    total = PointsEntry.objects.filter(order_number=order_number, kind__in=[EntryKind.REDEEM, EntryKind.RESTORE]) \
        .aggregate(total=Coalesce(Sum("available_delta"), 0))["total"]
    return -total


def points_earned_for_order(order_number: str) -> PointsLot | None:
    """The lot the order earned (amount, what is left, what returns reversed), or None."""
    return PointsLot.objects.filter(kind=LotKind.EARN, order_number=order_number).first()


def points_history(member: Member | int) -> QuerySet[PointsEntry]:
    """The member's points entries, newest first (a merged duplicate's id: the member it became)."""
    return PointsEntry.objects.filter(member_id=member_get(member).pk).order_by("-id")


def points_reversed_by(*, order_number: str, reference: str) -> int:
    """The earned points of ``order_number`` a return (``reference``) took back, whether they came
    from the order's lot (frozen or available), the member's other points, debt or an expired part."""
    taken = PointsEntry.objects.filter(kind=EntryKind.REVERSE, order_number=order_number, reference=reference) \
        .aggregate(n=Coalesce(Sum(F("debt_delta") + F("written_off") - F("available_delta") - F("frozen_delta")), 0))
    return taken["n"]


def points_lots(member: Member | int) -> QuerySet[PointsLot]:
    """The member's open lots in the order they are spent (oldest expiry first)."""
    return PointsLot.objects.filter(member_id=member_id_of(member), remaining__gt=0) \
        .exclude(status=LotStatus.EXPIRED).order_by("status", "expires_at", "id")


def points_entries(member: Member | int) -> QuerySet[PointsEntry]:
    return PointsEntry.objects.filter(member_id__in=member_family_ids(member)).order_by("-id")


def points_expired_from_lot(lot_id: int) -> int:
    return PointsConsumption.objects.filter(lot_id=lot_id, entry__kind=EntryKind.EXPIRE) \
        .aggregate(total=Coalesce(Sum("points"), 0))["total"]


# --- wallet ----------------------------------------------------------------------------------


def wallet_spent_for_reference(*, member: Member | int, reference: str) -> tuple[Decimal, Decimal]:
    """(principal, bonus) the member's wallet paid under ``reference``, less what was refunded."""
    totals = WalletSpendAllocation.objects.filter(
        entry__reference=reference, entry__kind__in=[WalletEntryKind.SPEND, WalletEntryKind.REFUND_SPEND],
        recharge__member_id=member_get(member).pk,
    ).aggregate(principal=Coalesce(Sum("principal"), ZERO), bonus=Coalesce(Sum("bonus"), ZERO))
    return totals["principal"], totals["bonus"]


def wallet_cross_store_allocations(*, start, end) -> QuerySet[WalletSpendAllocation]:
    """Wallet money spent (positive) or refunded (negative) in [start, end) at a store other than
    the one that sold the recharge: what settlement owes the selling store."""
    return WalletSpendAllocation.objects.filter(
        created_at__gte=start, created_at__lt=end,
        entry__kind__in=[WalletEntryKind.SPEND, WalletEntryKind.REFUND_SPEND],
        sold_store__isnull=False, spend_store__isnull=False,
    ).exclude(sold_store=F("spend_store")).select_related("entry", "recharge")


def member_coupons_usable(member: Member | int, *, limit: int = 3) -> list[IssuedCoupon]:
    """The member's coupons that can be used now, the soonest to expire first (what the POS offers)."""
    now = timezone.now()
    return list(IssuedCoupon.objects.filter(member_id=member_id_of(member), status=IssuedCoupon.Status.ISSUED,
                                            valid_from__lte=now, valid_until__gt=now)
                .select_related("template").order_by("valid_until", "pk")[:limit])
