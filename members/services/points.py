"""Points (积分): earn, unfreeze, redeem, return, expire, adjust, merge.

The ledger
    ``PointsEntry`` rows are append-only; a correction is another entry.  A
    member has three balances, each the sum of one entry column: ``available``,
    ``frozen`` and ``debt``.  Points live in lots (``PointsLot``); every entry
    that takes points out of lots lists them in ``PointsConsumption``, so
    ``lot.remaining == lot.amount − Σ consumption``, the available balance is
    the remaining of the member's available lots and the frozen balance that of
    the frozen lots.

Earning
    ``points_earn`` computes ``floor(Σ paid × rate × tier multiplier)`` over the
    order's lines, where the rate (points per 1 CNY) comes from the most
    specific active ``PointsRule`` (deepest matching category first, then the
    order's channel before "every channel"; ``PointsConfig`` default when none
    matches).  The lot is FROZEN until ``frozen_until`` (the end of the order's
    return window) and becomes available through ``points_unfreeze``.  One earn
    lot per order number: a repeated call returns the first lot.

Spending
    ``points_redeem`` takes points from available lots oldest expiry first
    (FIFO), under a per-order cap.  ``points_value`` turns points into CNY
    (``PointsConfig.points_per_yuan_redeemed``, default 100 points = 1 CNY),
    rounded down to the fen.

Expiry
    A lot expires at the end of the year after the year it was earned (or a
    configured number of months after earning); ``points_expire`` writes off
    what is left of due available lots.  Restored points keep the expiry of the
    lot they were redeemed from.

Returns
    ``points_reverse_earned`` reverses ``ceil(lot.amount × returned value / paid
    value)`` cumulatively, so partial returns add up to exactly the lot on a
    full return and rounding never favours the member.  It takes the points
    back from the order's own lot first.  ``points_restore_redeemed`` gives back
    at most what was redeemed for that order (net of earlier restores), split
    across the lots they came from in proportion, each into a new lot with
    that lot's expiry.

The DEBT rule
    When a return reverses earned points the member has already spent, the
    shortfall is taken from the member's other available points (FIFO); what
    still cannot be recovered is recorded as DEBT: the member's balance
    (available − debt) goes negative by exactly that amount.  Points of the
    order's lot that had *expired* are not clawed back (the member never had
    the use of them): that part is recorded as ``written_off`` on the entry.
    Debt is settled first by any points that later become available (an
    unfreeze, a restore, an adjustment, a merge), before they can be spent, so
    a member with debt never has available points.  Together with the
    per-order restore limit this means buying, redeeming and returning can
    never create points.

Locks and side effects
    Every function locks the member row first (``member_lock``; the beat jobs
    lock batches of members in id order with SKIP LOCKED), reads and changes
    that member's lots only under the lock, writes entries, consumption and
    the member's cached balances in bulk, and queues one
    ``member.points_changed`` outbox message per member changed.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Iterable, Sequence

from django.db import connection
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.models import Category
from members.exceptions import (
    InvalidAmount,
    InvalidChannel,
    InvalidPoints,
    InvalidReference,
    PointsCapExceeded,
    PointsInsufficient,
    PointsOrderConflict,
    PointsRestoreExceeded,
    PointsReturnExceeded,
    ReasonRequired,
)
from members.models import (
    EntryKind,
    ExpiryPolicy,
    LotKind,
    LotStatus,
    Member,
    PointsConfig,
    PointsConsumption,
    PointsEntry,
    PointsLot,
    PointsRule,
)
from members.selectors import (
    member_family_ids,
    points_config,
    points_expired_from_lot,
    points_redeemed_for_order,
)
from members.selectors import points_value as _points_value
from members.services.members import member_lock, merge_hook, store_id_check
from o2o.db import insert_joined, service, write_joined
from o2o.money import FEN, money
from o2o.outbox import outbox_emit

MEMBER_TABLE = Member._meta.db_table


# --- validation --------------------------------------------------------------------------------


def _check_points(points: object, *, field: str = "points") -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise InvalidPoints(field=field, params={"points": str(points)})
    return points


def _check_order_number(order_number: object) -> str:
    if not isinstance(order_number, str) or not order_number.strip() or len(order_number.strip()) > 30:
        raise InvalidReference(field="order_number")
    return order_number.strip()


def _check_money(value: object, *, field: str, allow_zero: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise InvalidAmount(field=field, params={"amount": str(value)})
    value = Decimal(value)
    if not value.is_finite() or value < 0 or (value == 0 and not allow_zero) or value != value.quantize(FEN) \
            or value >= Decimal("1e10"):
        raise InvalidAmount(field=field, params={"amount": str(value)})
    return value.quantize(FEN)


def _check_time(value: object, *, field: str) -> datetime:
    if not isinstance(value, datetime) or timezone.is_naive(value):
        raise InvalidAmount(message="A time zone aware time is required.", code="invalid_time", field=field)
    return value


def points_value(points: int) -> Decimal:
    """What ``points`` pay, in CNY (rounded down to the fen).  Raises invalid_points."""
    return _points_value(points)


# --- the book: one locked member's changes, written together ---------------------------------------


class _Book:
    """Entries, lot consumption and balance deltas of one locked member, written by ``_flush``."""

    def __init__(self, member: Member, *, reference: str = ""):
        self.member = member
        self.reference = reference
        self.available = member.points_available
        self.frozen = member.points_frozen
        self.debt = member.points_debt
        self.entries: list[tuple[PointsEntry, list[tuple[PointsLot, int]]]] = []
        self.lots: dict[int, PointsLot] = {}
        self.dirty: set[int] = set()
        self._fifo: list[PointsLot] | None = None
        self._new_available: list[PointsLot] = []

    def touch(self, lot: PointsLot) -> PointsLot:
        """Keep one instance per lot, so every change to it is saved once."""
        return self.lots.setdefault(lot.pk, lot)

    def mark(self, lot: PointsLot) -> PointsLot:
        """The instance of a lot about to change (saved by ``_flush``)."""
        lot = self.touch(lot)
        self.dirty.add(lot.pk)
        return lot

    def entry(self, kind: str, *, available: int = 0, frozen: int = 0, debt: int = 0,
              taken: Sequence[tuple[PointsLot, int]] = (), **fields) -> PointsEntry:
        entry = PointsEntry(member_id=self.member.pk, kind=kind, available_delta=available, frozen_delta=frozen,
                            debt_delta=debt, reference=fields.pop("reference", self.reference)[:64], **fields)
        self.available += available
        self.frozen += frozen
        self.debt += debt
        self.entries.append((entry, list(taken)))
        return entry

    def available_lots(self) -> list[PointsLot]:
        """The member's available lots with points left, oldest expiry first (loaded when first needed)."""
        if self._fifo is None:
            loaded = [self.touch(lot) for lot in PointsLot.objects.filter(
                member_id=self.member.pk, status=LotStatus.AVAILABLE, remaining__gt=0)]
            known = {lot.pk for lot in loaded}
            self._fifo = loaded + [lot for lot in self._new_available if lot.pk not in known]
            self._fifo.sort(key=lambda x: (x.expires_at, x.pk))
        return self._fifo

    def add_available_lot(self, lot: PointsLot) -> None:
        """A lot that became available in this transaction (not yet saved as such)."""
        lot = self.touch(lot)
        if self._fifo is None:
            self._new_available.append(lot)
        else:
            self._fifo.append(lot)
            self._fifo.sort(key=lambda x: (x.expires_at, x.pk))

    def take_fifo(self, points: int) -> list[tuple[PointsLot, int]]:
        """Take ``points`` from available lots, oldest expiry first (the caller checked there are enough)."""
        taken = []
        for lot in self.available_lots():
            if points == 0:
                break
            n = min(points, lot.remaining)
            if n:
                self.mark(lot).remaining -= n
                points -= n
                taken.append((lot, n))
        if points:
            raise AssertionError("available lots hold less than the available balance")
        return taken

    def settle_debt(self) -> None:
        """Pay recorded debt from available points, before anything else can spend them."""
        settle = min(self.debt, self.available)
        if settle > 0:
            self.entry(EntryKind.DEBT_SETTLE, available=-settle, debt=-settle, taken=self.take_fifo(settle))

    @property
    def changed(self) -> bool:
        return bool(self.entries)


def _flush(books: Iterable[_Book], *, joined: bool = False) -> list[PointsEntry]:
    """Write the books: entries, consumption, lots, balances (one query each), one outbox message per member.

    ``joined``: the entries and balances nobody reads back in this transaction are held for its
    last statement (``o2o.db.joined_writes``; written now outside such a block)."""
    books = [b for b in books if b.changed or b.dirty]
    entries = [entry for book in books for entry, _ in book.entries]
    if not (joined and insert_joined(entries)):
        PointsEntry.objects.bulk_create(entries)
    PointsConsumption.objects.bulk_create([
        PointsConsumption(entry=entry, lot=lot, points=n)
        for book in books for entry, taken in book.entries for lot, n in taken
    ])
    lots = [book.lots[lot_id] for book in books for lot_id in sorted(book.dirty)]
    if lots:
        PointsLot.objects.bulk_update(lots, ["remaining", "status", "returned_amount", "reversed_points"])
    changed = [b for b in books if b.changed]
    if changed:
        values = ", ".join(["(%s, %s, %s, %s)"] * len(changed))
        params = [p for b in changed for p in (b.member.pk, b.available - b.member.points_available,
                                               b.frozen - b.member.points_frozen, b.debt - b.member.points_debt)]
        sql = (f"UPDATE {MEMBER_TABLE} m SET points_available = m.points_available + v.a, "
               "points_frozen = m.points_frozen + v.f, points_debt = m.points_debt + v.d, updated_at = now() "
               f"FROM (VALUES {values}) AS v(id, a, f, d) WHERE m.id = v.id")
        if not (joined and write_joined(sql, params)):
            with connection.cursor() as cur:
                cur.execute(sql, params)
    for book in changed:
        book.member.points_available, book.member.points_frozen, book.member.points_debt = (
            book.available, book.frozen, book.debt)
        outbox_emit(topic="member.points_changed", key=f"member:{book.member.pk}",
                    payload={"member_id": book.member.pk, "available": book.available, "frozen": book.frozen,
                             "debt": book.debt, "balance": book.available - book.debt})
    return entries


# --- earn --------------------------------------------------------------------------------------


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    for day in range(moment.day, 0, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def points_expiry(earned_at: datetime, *, config: PointsConfig | None = None) -> datetime:
    """When points earned at ``earned_at`` expire (local time; the lot is due at that instant)."""
    config = config or points_config()
    local = timezone.localtime(earned_at)
    if config.expiry_policy == ExpiryPolicy.MONTHS:
        start_of_day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return _add_months(start_of_day, config.expiry_months) + timedelta(days=1)
    # End of the following year: the first instant of the year after it.
    return local.replace(year=local.year + 2, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def _parse_lines(lines: object) -> list[tuple[int | None, int | None, Decimal]]:
    if isinstance(lines, (str, bytes)) or not isinstance(lines, Iterable):
        raise InvalidAmount(message="Order lines are required.", code="invalid_lines", field="lines")
    parsed = []
    for line in lines:
        try:
            category_id, sku_id, paid = line
        except (TypeError, ValueError):
            raise InvalidAmount(message="Each line is (category id, SKU id, paid amount).", code="invalid_lines",
                                field="lines")
        for ident in (category_id, sku_id):
            if ident is not None and (isinstance(ident, bool) or not isinstance(ident, int)):
                raise InvalidAmount(message="Each line is (category id, SKU id, paid amount).",
                                    code="invalid_lines", field="lines")
        parsed.append((category_id, sku_id, _check_money(paid, field="lines", allow_zero=True)))
    if not parsed:
        raise InvalidAmount(message="Order lines are required.", code="invalid_lines", field="lines")
    return parsed


def _rates(channel: str, category_ids: set[int], *, config: PointsConfig | None = None
           ) -> tuple[dict[int | None, tuple[Decimal, int | None]], Decimal]:
    """Points per yuan for each category id (and None): (rate, rule id) of the most specific rule."""
    paths = dict(Category.objects.filter(id__in=category_ids).values_list("id", "path"))
    rules = list(PointsRule.objects.filter(is_active=True, channel__in=["", channel])
                 .select_related("category").order_by("id"))
    default = (config or points_config()).default_points_per_yuan

    def best(path: str | None) -> tuple[Decimal, int | None]:
        ranked = []
        for rule in rules:
            if rule.category_id is None:
                depth = 0
            elif path and (path == rule.category.path or path.startswith(rule.category.path + "/")):
                depth = rule.category.path.count("/") + 1
            else:
                continue
            ranked.append(((depth, rule.channel != ""), rule))
        if not ranked:
            return default, None
        rule = max(ranked, key=lambda r: r[0])[1]
        return rule.points_per_yuan, rule.pk

    rates = {cid: best(paths.get(cid)) for cid in category_ids}
    rates[None] = best(None)
    return rates, default


@service
def points_earn(*, member: Member | int, order_number: str, channel: str,
                lines: Sequence[tuple[int | None, int | None, Decimal]], store_id: int | None = None,
                frozen_until: datetime | None, locked: bool = False, first: bool = False) -> PointsLot:
    """Earn points on a paid order into a lot, frozen until ``frozen_until`` (None or past: available now).

    Idempotent per order number: a repeated call returns the first lot.  Locks
    the member.  Queues ``member.points_changed`` when points were earned.
    Raises invalid_reference, invalid_channel, invalid_lines, invalid_amount,
    invalid_time, store_not_found, member_not_found, points_order_conflict (the
    order earned for another member).  ``store_id`` may be the loaded Store.  ``locked``:
    ``member`` is the Member row the caller locked in this transaction; ``first``: the caller
    created the order in this transaction, so it cannot have earned yet.
    """
    order_number = _check_order_number(order_number)
    if not isinstance(channel, str) or not channel.strip() or len(channel.strip()) > 20:
        raise InvalidChannel(field="channel", params={"channel": str(channel)})
    channel = channel.strip()
    parsed = _parse_lines(lines)
    if frozen_until is not None:
        _check_time(frozen_until, field="frozen_until")
    store_id = store_id_check(store_id)
    member = member if locked and isinstance(member, Member) else member_lock(member)
    existing = None if first else PointsLot.objects.filter(kind=LotKind.EARN, order_number=order_number).first()
    if existing is not None:
        if existing.member_id != member.pk:
            raise PointsOrderConflict(params={"order_number": order_number})
        return existing

    config = points_config()  # read once: the rates and the expiry both need it
    rates, _ = _rates(channel, {cid for cid, _, _ in parsed if cid is not None}, config=config)
    multiplier = member.tier.points_multiplier if member.tier_id else Decimal("1")
    raw, detail = Decimal(0), []
    for category_id, sku_id, paid in parsed:
        rate, rule_id = rates[category_id] if category_id in rates else rates[None]
        raw += paid * rate * multiplier
        detail.append({"category_id": category_id, "sku_id": sku_id, "paid": str(paid), "rate": str(rate),
                       "rule_id": rule_id, "multiplier": str(multiplier)})
    points = int(raw.to_integral_value(rounding=ROUND_FLOOR))
    now = timezone.now()
    frozen = frozen_until is not None and frozen_until > now
    lot = PointsLot.objects.create(
        member=member, kind=LotKind.EARN, status=LotStatus.FROZEN if frozen else LotStatus.AVAILABLE,
        order_number=order_number, channel=channel, store_id=store_id, amount=points, remaining=points,
        frozen_until=frozen_until, expires_at=points_expiry(now, config=config), paid_amount=sum((p for _, _, p in parsed), Decimal(0)),
        detail=detail,
    )
    if points:
        book = _Book(member, reference=order_number)
        if frozen:
            book.entry(EntryKind.EARN, frozen=points, lot=lot, order_number=order_number)
        else:
            book.add_available_lot(lot)
            book.entry(EntryKind.EARN, available=points, lot=lot, order_number=order_number)
            book.settle_debt()
        # Frozen points of a new sale for the member the sale locked: nothing in the sale reads the
        # entry or the balance back, so both ride on the sale's last statement.
        _flush([book], joined=frozen and locked and first)
    return lot


# --- redeem and restore ------------------------------------------------------------------------


@service
def points_redeem(*, member: Member | int, points: int, order_number: str, cap_points: int | None = None
                  ) -> PointsEntry:
    """Spend ``points`` as a tender on an order, oldest-expiring lots first.  Returns the entry.

    ``cap_points`` caps the points redeemed for the order in total (earlier
    redemptions for the same order count, net of restores).  Locks the member;
    queues ``member.points_changed``.  Raises invalid_points, invalid_reference,
    member_not_found, points_order_conflict (the order redeemed points of
    another member), points_cap_exceeded, points_insufficient.
    """
    points = _check_points(points)
    order_number = _check_order_number(order_number)
    if cap_points is not None and (isinstance(cap_points, bool) or not isinstance(cap_points, int)
                                   or cap_points < 0):
        raise InvalidPoints(field="cap_points", params={"points": str(cap_points)})
    member = member_lock(member)
    if PointsEntry.objects.filter(order_number=order_number, kind=EntryKind.REDEEM) \
            .exclude(member_id__in=member_family_ids(member)).exists():
        raise PointsOrderConflict(params={"order_number": order_number})
    if cap_points is not None:
        already = points_redeemed_for_order(order_number)
        if already + points > cap_points:
            raise PointsCapExceeded(field="points", params={"cap": cap_points, "already": already,
                                                            "points": points})
    if member.points_available < points:
        raise PointsInsufficient(field="points", params={"available": member.points_available, "points": points})
    book = _Book(member, reference=order_number)
    entry = book.entry(EntryKind.REDEEM, available=-points, taken=book.take_fifo(points), order_number=order_number)
    _flush([book])
    return entry


def _largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` whole points across ``weights``; parts add up to ``total`` (earlier win ties)."""
    weight_sum = sum(weights)
    raw = [total * w / weight_sum for w in weights]
    parts = [math.floor(r) for r in raw]
    order = sorted(range(len(weights)), key=lambda i: (-(raw[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


@service
def points_restore_redeemed(*, member: Member | int, order_number: str, points: int) -> PointsEntry:
    """Give back ``points`` redeemed for the order (after a return), at most what is still redeemed.

    The points go back in proportion to the lots they were taken from, each
    part into a new lot keeping that lot's expiry (already expired: it lapses
    at the next ``points_expire``).  Recorded debt is settled from them first.
    Locks the member; queues ``member.points_changed``.  Raises invalid_points,
    invalid_reference, member_not_found, points_restore_exceeded.
    """
    points = _check_points(points)
    order_number = _check_order_number(order_number)
    member = member_lock(member)
    taken = dict(PointsConsumption.objects.filter(
        entry__kind=EntryKind.REDEEM, entry__order_number=order_number, lot__member_id=member.pk,
    ).values("lot_id").annotate(n=Sum("points")).values_list("lot_id", "n"))
    restored = dict(PointsLot.objects.filter(kind=LotKind.RESTORE, order_number=order_number,
                                             member_id=member.pk).values("origin_lot_id")
                    .annotate(n=Sum("amount")).values_list("origin_lot_id", "n"))
    open_parts = {lot_id: n - restored.get(lot_id, 0) for lot_id, n in taken.items()}
    open_parts = {lot_id: n for lot_id, n in sorted(open_parts.items()) if n > 0}
    redeemed = sum(open_parts.values())
    if points > redeemed:
        raise PointsRestoreExceeded(field="points", params={"redeemed": redeemed, "points": points})
    origins = PointsLot.objects.in_bulk(open_parts)
    book = _Book(member, reference=order_number)
    first = None
    for lot_id, part in zip(open_parts, _largest_remainder(points, list(open_parts.values()))):
        if part == 0:
            continue
        origin = origins[lot_id]
        lot = PointsLot.objects.create(
            member=member, kind=LotKind.RESTORE, status=LotStatus.AVAILABLE, order_number=order_number,
            channel=origin.channel, amount=part, remaining=part, expires_at=origin.expires_at, origin_lot=origin,
        )
        book.add_available_lot(lot)
        first = first or lot
    entry = book.entry(EntryKind.RESTORE, available=points, order_number=order_number, lot=first)
    book.settle_debt()
    _flush([book])
    return entry


# --- reverse earned ----------------------------------------------------------------------------


@service
def points_reverse_earned(*, member: Member | int, order_number: str, fraction: Decimal | None = None,
                          amount: Decimal | None = None, reference: str = "", reason: str = "") -> PointsEntry | None:
    """Reverse points the order earned, in proportion to the value returned (give exactly one of
    ``fraction`` of the paid amount, or the returned ``amount`` in CNY).

    Cumulative over partial returns: after returns worth R of the paid P the
    order has reversed ``ceil(amount × R / P)`` points in total.  Points are
    taken from the order's lot first, then (if already spent) from the
    member's other available points, and the rest becomes debt — see the DEBT
    rule above.  Returns the entry, or None when nothing is to be reversed (an
    order that earned nothing).  Locks the member; queues ``member.points_changed``.
    ``reference`` (the return) and ``reason`` are recorded on the entry, so the member's history
    says which return (or exchange) took the points back.
    Raises invalid_amount, invalid_reference, member_not_found,
    points_order_conflict, points_return_exceeded.
    """
    order_number = _check_order_number(order_number)
    if (fraction is None) == (amount is None):
        raise InvalidAmount(message="Give either the returned fraction or the returned amount.", field="amount")
    if fraction is not None:
        if isinstance(fraction, bool) or not isinstance(fraction, (Decimal, int)) or not Decimal(fraction).is_finite() \
                or not 0 < fraction <= 1:
            raise InvalidAmount(message="The fraction must be above 0 and at most 1.", field="fraction",
                                params={"fraction": str(fraction)})
    else:
        amount = _check_money(amount, field="amount")
    member = member_lock(member)
    lot = PointsLot.objects.filter(kind=LotKind.EARN, order_number=order_number).first()
    if lot is None:
        return None
    if lot.member_id != member.pk:
        raise PointsOrderConflict(params={"order_number": order_number})
    if lot.amount == 0:
        return None
    returned = money(lot.paid_amount * Decimal(fraction)) if fraction is not None else amount
    total_returned = lot.returned_amount + returned
    if total_returned > lot.paid_amount:
        raise PointsReturnExceeded(field="amount", params={"paid": lot.paid_amount, "returned": lot.returned_amount})
    target = lot.amount if total_returned == lot.paid_amount else math.ceil(
        Decimal(lot.amount) * total_returned / lot.paid_amount)
    book = _Book(member, reference=order_number)
    lot = book.mark(lot)
    reverse = target - lot.reversed_points
    lot.returned_amount, lot.reversed_points = total_returned, target
    if reverse <= 0:
        _flush([book])
        return None
    return _reverse(book, lot, reverse, order_number, reference=reference or order_number, reason=reason)


def _reverse(book: _Book, lot: PointsLot, reverse: int, order_number: str, *, reference: str,
             reason: str) -> PointsEntry:
    from_lot = min(reverse, lot.remaining)
    lot.remaining -= from_lot
    taken = [(lot, from_lot)] if from_lot else []
    frozen_part = from_lot if lot.status == LotStatus.FROZEN else 0
    short = reverse - from_lot
    written_off = 0
    if short:
        # The part of the lot that expired is gone already: record it, take nothing for it.
        off_so_far = PointsEntry.objects.filter(kind=EntryKind.REVERSE, lot=lot) \
            .aggregate(n=Coalesce(Sum("written_off"), 0))["n"]
        written_off = min(short, points_expired_from_lot(lot.pk) - off_so_far)
        short -= written_off
    # What was spent comes from the member's other available points, the rest is debt.
    claw = min(short, book.available - (from_lot - frozen_part))
    if claw:
        taken += book.take_fifo(claw)
    debt = short - claw
    entry = book.entry(EntryKind.REVERSE, available=-(from_lot - frozen_part) - claw, frozen=-frozen_part,
                       debt=debt, taken=taken, written_off=written_off, lot=lot, order_number=order_number,
                       reference=reference, reason=reason[:300])
    _flush([book])
    return entry


# --- adjust ------------------------------------------------------------------------------------


@service
def points_adjust(*, member: Member | int, points: int, reason: str, actor=None) -> PointsEntry:
    """Correct a member's points by hand (signed), with a reason and the acting user.

    A positive adjustment is a new available lot (normal expiry) that settles
    any debt first; a negative one takes available points oldest expiry first
    and never creates debt.  Locks the member; queues ``member.points_changed``.
    Raises invalid_points, reason_required, member_not_found, points_insufficient.
    """
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise InvalidPoints(field="points", params={"points": str(points)})
    if not isinstance(reason, str) or not reason.strip():
        raise ReasonRequired(field="reason")
    reason = reason.strip()[:300]
    actor = actor if actor is not None and getattr(actor, "pk", None) else None
    member = member_lock(member)
    book = _Book(member)
    if points > 0:
        lot = PointsLot.objects.create(member=member, kind=LotKind.ADJUST, status=LotStatus.AVAILABLE,
                                       amount=points, remaining=points, expires_at=points_expiry(timezone.now()))
        book.add_available_lot(lot)
        entry = book.entry(EntryKind.ADJUST, available=points, lot=lot, reason=reason, actor=actor)
        book.settle_debt()
    else:
        if member.points_available < -points:
            raise PointsInsufficient(field="points", params={"available": member.points_available,
                                                             "points": -points})
        entry = book.entry(EntryKind.ADJUST, available=points, taken=book.take_fifo(-points), reason=reason,
                           actor=actor)
    _flush([book])
    return entry


# --- beat jobs: unfreeze and expire --------------------------------------------------------------


def _due_batch(lot_filter: dict, batch_size: int) -> tuple[list[_Book], list[PointsLot]]:
    """Lock (SKIP LOCKED, id order) up to ``batch_size`` members with due lots; return their books and lots.

    A member busy in another transaction is skipped and picked up by the next run.
    """
    member_ids = list(PointsLot.objects.filter(**lot_filter).order_by("member_id")
                      .values_list("member_id", flat=True).distinct()[:batch_size])
    if not member_ids:
        return [], []
    members = list(Member.objects.select_for_update(of=("self",), skip_locked=True)
                   .filter(pk__in=member_ids).order_by("pk"))
    books = {m.pk: _Book(m) for m in members}
    lots = list(PointsLot.objects.filter(member_id__in=books, **lot_filter).order_by("member_id", "expires_at", "id"))
    for lot in lots:
        books[lot.member_id].touch(lot)
    return list(books.values()), lots


@service
def _unfreeze_batch(now: datetime, batch_size: int) -> int:
    books, lots = _due_batch({"status": LotStatus.FROZEN, "frozen_until__lte": now}, batch_size)
    by_member = {book.member.pk: book for book in books}
    for lot in lots:
        book = by_member[lot.member_id]
        lot = book.mark(lot)
        lot.status = LotStatus.AVAILABLE
        if lot.remaining:
            book.entry(EntryKind.UNFREEZE, available=lot.remaining, frozen=-lot.remaining, lot=lot,
                       order_number=lot.order_number, reference=lot.order_number)
            book.add_available_lot(lot)
    for book in books:
        book.settle_debt()
    _flush(books)
    return len(lots)


def points_unfreeze(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Make frozen lots whose return window has passed available (debt is settled from them first).

    Idempotent: only lots still frozen and due are touched.  Each batch is one
    transaction.  Returns how many lots were unfrozen.
    """
    now = now or timezone.now()
    done = 0
    while True:
        n = _unfreeze_batch(now, batch_size)
        done += n
        if n == 0:
            return done


@service
def _expire_batch(now: datetime, batch_size: int) -> int:
    books, lots = _due_batch({"status": LotStatus.AVAILABLE, "expires_at__lte": now}, batch_size)
    by_member = {book.member.pk: book for book in books}
    for lot in lots:
        book = by_member[lot.member_id]
        lot = book.mark(lot)
        lot.status = LotStatus.EXPIRED
        if lot.remaining:
            left, lot.remaining = lot.remaining, 0
            book.entry(EntryKind.EXPIRE, available=-left, taken=[(lot, left)], lot=lot,
                       order_number=lot.order_number, reference=lot.order_number)
    _flush(books)
    return len(lots)


def points_expire(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Expire what is left of available lots past their expiry.  Idempotent; returns lots expired.

    A lot still frozen when it falls due expires at the first run after it is unfrozen.
    """
    now = now or timezone.now()
    done = 0
    while True:
        n = _expire_batch(now, batch_size)
        done += n
        if n == 0:
            return done


# --- merge -------------------------------------------------------------------------------------


@merge_hook("points")
def points_merge(source: Member, target: Member) -> dict:
    """Move the duplicate's lots and balances to the surviving member (both rows are locked)."""
    lots = PointsLot.objects.filter(member=source).update(member=target)
    available, frozen, debt = source.points_available, source.points_frozen, source.points_debt
    if not (available or frozen or debt):
        return {"lots": lots, "available": 0, "frozen": 0, "debt": 0}
    reference = f"merge:{source.pk}"
    out_book, in_book = _Book(source, reference=reference), _Book(target, reference=reference)
    out_book.entry(EntryKind.MERGE_OUT, available=-available, frozen=-frozen, debt=-debt)
    in_book.entry(EntryKind.MERGE_IN, available=available, frozen=frozen, debt=debt)
    in_book.settle_debt()
    _flush([out_book, in_book])
    return {"lots": lots, "available": available, "frozen": frozen, "debt": debt}
