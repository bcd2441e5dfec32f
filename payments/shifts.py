"""POS shifts (班次) and cash control: open with a float, cash in/out, close with a count, Z report.

A shift belongs to one store register; at most one is open per register (a
partial unique index).  Money taken at the counter is not copied into the
shift: the Z report and the expected cash are aggregated, set-based, from the
store's payments and refunds inside the shift's window [opened_at, closed_at).
Cash sales add to the drawer, cash refunds handed out take from it; change
given back is not a payment, so it never appears.

Locks: a sale or a counter refund holds the open shift row FOR SHARE for its
whole transaction (``shift_hold``); closing takes it FOR UPDATE.  So a close
waits for the sales in flight, and no sale lands in a shift after its count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import CouponRedemption, EntryKind, LotKind, PointsEntry, PointsLot
from o2o.db import service, write_joined
from o2o.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from o2o.money import ZERO, money, money_parse
from payments.models import CashMovement, CashTendered, Payment, PosShift, Refund, ShiftHandover, Tender
from payments.services import amount_check
from stores.models import Store
from stores.selectors import staff_store_ids

DEFAULT_REGISTER = "1"
# CNY notes and coins counted at closing, largest first; a shift counts those of at least its
# cash unit (a store rounding to the jiao never holds fen coins, one without rounding does).
DEFAULT_DENOMINATIONS = ("100", "50", "20", "10", "5", "1", "0.5", "0.1", "0.05", "0.02", "0.01")


class ShiftNotOpen(Conflict):
    code = "shift_not_open"
    default_message = _("No shift is open at this register. Open a shift first.")


class ShiftAlreadyOpen(Conflict):
    code = "shift_already_open"
    default_message = _("A shift is already open at this register.")


class ShiftNotFound(NotFound):
    code = "shift_not_found"
    default_message = _("Shift not found.")


class NotStoreStaff(PermissionDenied):
    code = "not_store_staff"
    default_message = _("You are not staff of this store.")


class InvalidCount(InvalidInput):
    code = "invalid_count"
    default_message = _("Counts must be whole numbers of zero or more, for the listed notes and coins.")


class CashOutExceedsDrawer(Conflict):
    code = "cash_out_exceeds_drawer"
    default_message = _("There is not that much cash in the drawer.")


class CashNotInUnit(InvalidInput):
    code = "cash_not_in_unit"
    default_message = _("This store hands out cash in whole units of its cash rounding: type a multiple of it.")


class InvalidTendered(InvalidInput):
    code = "cash_tendered_too_low"
    default_message = _("The cash handed over must cover the cash part of the sale.")


def denominations(unit: Decimal | None = None) -> tuple[str, ...]:
    """The notes and coins a count offers: those of at least ``unit`` (all of them without one)."""
    every = tuple(getattr(settings, "POS_DENOMINATIONS", DEFAULT_DENOMINATIONS))
    return every if unit is None else tuple(d for d in every if Decimal(d) >= unit)


def cash_unit(store: Store | int) -> Decimal:
    """The unit cash is handed over in at the store now: its open shift's (the policy when the shift
    opened, so one shift never mixes two units), else the store's policy."""
    store_id = getattr(store, "pk", store)
    unit = (PosShift.objects.filter(store_id=store_id, status=PosShift.Status.OPEN)
            .order_by("opened_at").values_list("cash_unit", flat=True).first())
    if unit is not None:
        return unit
    if not isinstance(store, Store):
        store = Store.objects.only("cash_rounding").get(pk=store_id)
    return store.cash_unit


def _in_unit(amount: Decimal, unit: Decimal, *, field: str) -> Decimal:
    if amount % unit:
        raise CashNotInUnit(field=field, params={"unit": str(unit)})
    return amount


def _actor(actor):
    return actor if actor is not None and getattr(actor, "pk", None) else None


def _check_staff(actor, store: Store | int) -> None:
    store_id = getattr(store, "pk", store)
    if actor is not None and store_id not in staff_store_ids(actor):
        raise NotStoreStaff()


def _text(value: object, *, field: str, required: bool = True, max_length: int = 200) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if (required and not text) or len(text) > max_length:
        raise InvalidInput(_("A reason is required (at most %(max)s characters).") % {"max": max_length},
                           code="reason_required", field=field)
    return text


def _money_non_negative(value: object, *, field: str) -> Decimal:
    try:
        return money_parse(value)
    except ValueError:
        raise InvalidInput(_("Type an amount of zero or more with at most two decimals."), code="invalid_amount",
                           field=field, params={"amount": str(value)}) from None


# --- reads ------------------------------------------------------------------------------------


def shift_current(store: Store | int, *, register: str = DEFAULT_REGISTER) -> PosShift | None:
    """The open shift of the store register, or None.  No lock."""
    return (PosShift.objects.select_related("store", "opened_by")
            .filter(store_id=getattr(store, "pk", store), register=register, status=PosShift.Status.OPEN).first())


def shift_hold(store: Store | int, *, register: str = DEFAULT_REGISTER) -> PosShift:
    """Lock the store register's open shift FOR SHARE until the caller's transaction ends.

    Call it first in a service that takes or gives back money at the counter:
    sales may run side by side, but ``shift_close`` (FOR UPDATE) waits for
    them, and a sale after the close finds no open shift.  Raises ShiftNotOpen.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("shift_hold must run inside the service's transaction")
    store_id = getattr(store, "pk", store)
    rows = list(PosShift.objects.raw(
        "SELECT * FROM payments_posshift WHERE store_id = %s AND register = %s AND status = %s FOR SHARE",
        [store_id, register, PosShift.Status.OPEN]))
    if not rows:
        raise ShiftNotOpen()
    return rows[0]


def _shift_for_update(shift: PosShift | int) -> PosShift:
    pk = getattr(shift, "pk", shift)
    found = PosShift.objects.select_for_update(of=("self",)).select_related("store").filter(pk=pk).first()
    if found is None:
        raise ShiftNotFound(params={"shift_id": pk})
    return found


def _cash_totals(shift: PosShift, end: datetime) -> tuple[Decimal, Decimal]:
    """(cash sales, cash refunds handed out) at the shift's store in [opened_at, end)."""
    sales = Payment.objects.filter(store_id=shift.store_id, tender=Tender.CASH, status=Payment.Status.CAPTURED,
                                   captured_at__gte=shift.opened_at, captured_at__lt=end
                                   ).aggregate(s=Sum("amount"))["s"]
    refunds = Refund.objects.filter(store_id=shift.store_id, method=Refund.Method.CASH,
                                    status=Refund.Status.SUCCEEDED, completed_at__gte=shift.opened_at,
                                    completed_at__lt=end).aggregate(s=Sum("amount"))["s"]
    return money(sales or ZERO), money(refunds or ZERO)


def _movement_totals(shift: PosShift) -> dict[str, Decimal]:
    rows = shift.movements.values("kind").annotate(total=Sum("amount"))
    totals = {kind: ZERO for kind in CashMovement.Kind.values}
    totals.update({r["kind"]: money(r["total"]) for r in rows})
    return totals


def shift_expected_cash(shift: PosShift, *, end: datetime | None = None) -> Decimal:
    """Float + cash in − cash out + cash sales − cash refunds, up to ``end`` (default now)."""
    if shift.status == PosShift.Status.CLOSED:
        return shift.expected_cash
    moves = _movement_totals(shift)
    sales, refunds = _cash_totals(shift, end or timezone.now())
    return money(shift.opening_float + moves[CashMovement.Kind.IN] - moves[CashMovement.Kind.OUT] + sales - refunds)


def handover_expected_cash(handover: ShiftHandover) -> Decimal:
    """The drawer at a hand-over, from the ledger: float + cash in − cash out recorded before it, +
    the shift's cash sales − cash refunds up to it (what ``audit_ledgers`` compares with the record)."""
    shift = handover.shift
    moves = {r["kind"]: money(r["total"]) for r in shift.movements.filter(
        kind__in=(CashMovement.Kind.IN, CashMovement.Kind.OUT), created_at__lt=handover.at)
        .values("kind").annotate(total=Sum("amount"))}
    sales, refunds = _cash_totals(shift, handover.at)
    return money(shift.opening_float + moves.get(CashMovement.Kind.IN, ZERO) - moves.get(CashMovement.Kind.OUT, ZERO)
                 + sales - refunds)


@dataclass(frozen=True)
class TenderLine:
    tender: str
    label: str
    count: int
    amount: Decimal


@dataclass
class ZReport:
    shift: PosShift
    start: datetime
    end: datetime
    payments: list[TenderLine]
    refunds: list[TenderLine]
    opening_float: Decimal
    cash_in: Decimal
    cash_out: Decimal
    cash_sales: Decimal
    cash_refunds: Decimal
    expected_cash: Decimal
    counted_cash: Decimal | None
    over_short: Decimal | None
    points_earned: int
    points_redeemed: int
    coupons_redeemed: int
    coupon_discount: Decimal
    movements: list[CashMovement] = field(default_factory=list)
    handovers: list[ShiftHandover] = field(default_factory=list)
    # Value of goods taken back in exchanges that paid for the new goods: no money moved, so it is
    # neither a taking nor a refund (it used to be listed as a cash refund).
    exchange_credit: Decimal = ZERO
    exchanges: int = 0

    @property
    def over_short_amount(self) -> Decimal | None:
        """How much over or short, without the sign: the label (over / short) says which."""
        return None if self.over_short is None else abs(self.over_short)

    @property
    def payments_total(self) -> Decimal:
        return money(sum((t.amount for t in self.payments), ZERO))

    @property
    def refunds_total(self) -> Decimal:
        return money(sum((t.amount for t in self.refunds), ZERO))

    @property
    def net_total(self) -> Decimal:
        return money(self.payments_total - self.refunds_total)


def _tender_label(tender: str) -> str:
    return str(dict(Tender.choices).get(tender, tender))


def shift_z_report(shift: PosShift | int) -> ZReport:
    """The shift's totals: takings and refunds by tender, cash reconciliation, points and coupons.

    Everything is aggregated in the database from the store's payments,
    refunds, points and coupon redemptions in the shift window; an open shift
    is reported up to now (an X report).  Reads only.
    """
    if not isinstance(shift, PosShift):
        shift = PosShift.objects.select_related("store", "opened_by", "closed_by").filter(pk=shift).first()
        if shift is None:
            raise ShiftNotFound()
    end = shift.closed_at or timezone.now()
    captured = Payment.objects.filter(store_id=shift.store_id, status=Payment.Status.CAPTURED,
                                      captured_at__gte=shift.opened_at, captured_at__lt=end)
    payments = [TenderLine(r["tender"], _tender_label(r["tender"]), r["n"], money(r["total"]))
                for r in captured.exclude(tender=Tender.EXCHANGE_CREDIT).values("tender")
                .annotate(n=Count("id"), total=Sum("amount")).order_by("tender")]
    credit = captured.filter(tender=Tender.EXCHANGE_CREDIT).aggregate(n=Count("id"), s=Sum("amount"))
    refunded = Refund.objects.filter(store_id=shift.store_id, created_at__gte=shift.opened_at, created_at__lt=end
                                     ).exclude(status=Refund.Status.FAILED).exclude(method=Refund.Method.EXCHANGE)
    refunds = [TenderLine(r["payment__tender"], _tender_label(r["payment__tender"]), r["n"], money(r["total"]))
               for r in refunded.values("payment__tender").annotate(n=Count("id"), total=Sum("amount"))
               .order_by("payment__tender")]
    moves = _movement_totals(shift)
    if shift.status == PosShift.Status.CLOSED:
        cash_sales, cash_refunds = moves[CashMovement.Kind.SALE], moves[CashMovement.Kind.REFUND]
    else:
        cash_sales, cash_refunds = _cash_totals(shift, end)
    expected = money(shift.opening_float + moves[CashMovement.Kind.IN] - moves[CashMovement.Kind.OUT]
                     + cash_sales - cash_refunds)
    references = captured.values("reference")
    earned = PointsLot.objects.filter(kind=LotKind.EARN, store_id=shift.store_id, created_at__gte=shift.opened_at,
                                      created_at__lt=end).aggregate(s=Sum("amount"))["s"] or 0
    redeemed = PointsEntry.objects.filter(kind=EntryKind.REDEEM, order_number__in=references
                                          ).aggregate(s=Sum("available_delta"))["s"] or 0
    coupons = CouponRedemption.objects.filter(store_id=shift.store_id, redeemed_at__gte=shift.opened_at,
                                              redeemed_at__lt=end).aggregate(n=Count("id"), s=Sum("discount"))
    return ZReport(shift=shift, start=shift.opened_at, end=end, payments=payments, refunds=refunds,
                   opening_float=shift.opening_float, cash_in=moves[CashMovement.Kind.IN],
                   cash_out=moves[CashMovement.Kind.OUT], cash_sales=cash_sales, cash_refunds=cash_refunds,
                   expected_cash=expected, counted_cash=shift.counted_cash, over_short=shift.over_short,
                   points_earned=int(earned), points_redeemed=-int(redeemed), coupons_redeemed=coupons["n"] or 0,
                   coupon_discount=money(coupons["s"] or ZERO),
                   movements=list(shift.movements.select_related("actor").order_by("id")),
                   handovers=list(shift.handovers.select_related("from_user__staff", "to_user__staff")
                                  .order_by("at", "id")),
                   exchange_credit=money(credit["s"] or ZERO), exchanges=credit["n"] or 0)


# --- writes -----------------------------------------------------------------------------------


@service
def shift_open(*, store: Store, actor, opening_float: Decimal | int | str,
               register: str = DEFAULT_REGISTER) -> PosShift:
    """Open a shift at the store register with the counted float.

    Raises NotStoreStaff, InvalidInput (float), ShiftAlreadyOpen (also when a
    colleague opened one a moment earlier: the partial unique index decides).
    """
    _check_staff(actor, store)
    unit = store.cash_unit
    opening_float = _in_unit(_money_non_negative(opening_float, field="opening_float"), unit, field="opening_float")
    shift = PosShift(store=store, register=register, opened_by=actor, opened_at=timezone.now(),
                     opening_float=opening_float, cash_unit=unit)
    try:
        with transaction.atomic():
            shift.save(force_insert=True)
    except IntegrityError:
        raise ShiftAlreadyOpen(field="opening_float") from None
    return shift


@service
def shift_cash_move(*, shift: PosShift | int, kind: str, amount: Decimal | int | str, reason: str,
                    actor, reference: str = "") -> CashMovement:
    """Put cash into the drawer or take it out, with a reason.

    Locks the shift row (so a cash-out and the close see the same drawer).
    Raises ShiftNotFound, ShiftNotOpen, NotStoreStaff, InvalidInput,
    CashOutExceedsDrawer (more out than the drawer should hold).
    """
    if kind not in (CashMovement.Kind.IN, CashMovement.Kind.OUT):
        raise InvalidInput(code="invalid_kind", field="kind", params={"kind": str(kind)})
    amount = amount_check(amount)
    reason = _text(reason, field="reason")
    shift = _shift_for_update(shift)
    if shift.status != PosShift.Status.OPEN:
        raise ShiftNotOpen()
    _check_staff(actor, shift.store_id)
    _in_unit(amount, shift.cash_unit, field="amount")
    if kind == CashMovement.Kind.OUT and amount > shift_expected_cash(shift):
        raise CashOutExceedsDrawer(field="amount", params={"drawer": str(shift_expected_cash(shift))})
    return CashMovement.objects.create(shift=shift, kind=kind, amount=amount, reason=reason, actor=_actor(actor),
                                       reference=(reference or "")[:64])


def denominations_total(counts: Mapping[str, Any], *, unit: Decimal | None = None
                        ) -> tuple[dict[str, int], Decimal]:
    """Validate a count by denomination (those of at least ``unit``); returns (clean counts, total).
    Raises InvalidCount."""
    allowed = denominations(unit)
    clean: dict[str, int] = {}
    for key, value in (counts or {}).items():
        if key not in allowed:
            raise InvalidCount(field="denominations", params={"denomination": str(key)})
        if isinstance(value, str):
            value = value.strip() or "0"
            if not value.isdigit():
                raise InvalidCount(field=f"count_{key}", params={"denomination": key})
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 100000:
            raise InvalidCount(field=f"count_{key}", params={"denomination": key})
        clean[key] = value
    total = money(sum((Decimal(k) * n for k, n in clean.items()), ZERO))
    return {k: clean.get(k, 0) for k in allowed}, total


@service
def shift_close(*, shift: PosShift | int, actor, counts: Mapping[str, Any], note: str = "") -> PosShift:
    """Close the shift with the drawer counted by denomination; records expected, counted and over/short.

    Locks the shift row FOR UPDATE, so sales in flight (holding it FOR SHARE)
    finish first.  The window's cash sales and refunds are written as
    movements so the closed drawer adds up on its own.  Raises ShiftNotFound,
    ShiftNotOpen, NotStoreStaff, InvalidCount.
    """
    shift = _shift_for_update(shift)
    if shift.status != PosShift.Status.OPEN:
        raise ShiftNotOpen()
    clean, counted = denominations_total(counts, unit=shift.cash_unit)
    _check_staff(actor, shift.store_id)
    closed_at = timezone.now()
    sales, refunds = _cash_totals(shift, closed_at)
    for kind, amount, reason in ((CashMovement.Kind.SALE, sales, "cash sales of the shift"),
                                 (CashMovement.Kind.REFUND, refunds, "cash refunds of the shift")):
        if amount > 0:
            CashMovement.objects.create(shift=shift, kind=kind, amount=amount, reason=reason, actor=_actor(actor),
                                        reference="close")
    moves = _movement_totals(shift)
    expected = money(shift.opening_float + moves[CashMovement.Kind.IN] - moves[CashMovement.Kind.OUT]
                     + sales - refunds)
    shift.status, shift.closed_at, shift.closed_by = PosShift.Status.CLOSED, closed_at, actor
    shift.expected_cash, shift.counted_cash = expected, counted
    shift.over_short = money(counted - expected)
    shift.denominations, shift.note = clean, (note or "").strip()[:300]
    shift.save(update_fields=["status", "closed_at", "closed_by", "expected_cash", "counted_cash", "over_short",
                              "denominations", "note"])
    return shift


class IncomingNotStoreStaff(PermissionDenied):
    code = "incoming_not_store_staff"
    default_message = _("This clerk is not staff of this store.")


class HandoverToSelf(InvalidInput):
    code = "handover_to_self"
    default_message = _("Hand the shift over to another clerk of this store.")


@service
def shift_handover(*, shift: PosShift | int, actor, incoming, counted_cash: Decimal | int | str | None = None
                   ) -> ShiftHandover:
    """交班: the outgoing clerk (``actor``) hands the open shift to ``incoming``; the drawer goes on.

    The caller has checked the incoming clerk's sign-in.  Locks the shift row
    FOR UPDATE, so the expected cash is taken with no sale in flight (sales
    hold it FOR SHARE).  ``counted_cash``: the drawer as counted at the
    hand-over, optional; the difference against the expected cash is kept.
    Sales after it are the incoming clerk's (they are signed in).  Raises
    ShiftNotFound, ShiftNotOpen, NotStoreStaff, IncomingNotStoreStaff, HandoverToSelf,
    InvalidInput (counted cash).
    """
    if counted_cash is not None and counted_cash != "":
        counted = _money_non_negative(counted_cash, field="counted_cash")
    else:
        counted = None
    shift = _shift_for_update(shift)
    if shift.status != PosShift.Status.OPEN:
        raise ShiftNotOpen()
    _check_staff(actor, shift.store_id)
    if incoming is None or getattr(incoming, "pk", None) is None or incoming.pk == getattr(actor, "pk", None):
        raise HandoverToSelf(field="username")
    if shift.store_id not in staff_store_ids(incoming):
        raise IncomingNotStoreStaff(field="username")
    now = timezone.now()
    expected = shift_expected_cash(shift, end=now)
    return ShiftHandover.objects.create(
        shift=shift, from_user=actor, to_user=incoming, at=now, expected_cash=expected, counted_cash=counted,
        difference=money(counted - expected) if counted is not None else None)


@service
def cash_tendered_record(*, payment: Payment, tendered: Decimal) -> CashTendered:
    """Record the cash handed over for a cash payment; the change is the difference.

    Raises InvalidTendered when the cash handed over does not cover the payment.
    """
    tendered = money(tendered)
    if payment.tender != Tender.CASH or tendered < payment.amount:
        raise InvalidTendered(field="cash_tendered", params={"due": str(payment.amount)})
    change = money(tendered - payment.amount)
    joined = write_joined(f'INSERT INTO "{CashTendered._meta.db_table}" ("payment_id", "tendered", "change") '
                          'VALUES (%s, %s, %s) ON CONFLICT ("payment_id") DO NOTHING',
                          [payment.pk, tendered, change])
    if joined:  # a new sale's payment: held for the sale's last statement (``o2o.db.joined_writes``)
        return CashTendered(payment=payment, tendered=tendered, change=change)
    # One statement for a new payment (get_or_create costs a read and a savepoint around the
    # insert); a repeat for the same payment keeps and returns the first record.
    with connection.cursor() as cur:
        cur.execute(f'INSERT INTO "{CashTendered._meta.db_table}" ("payment_id", "tendered", "change") '
                    'VALUES (%s, %s, %s) ON CONFLICT ("payment_id") DO NOTHING RETURNING "id"',
                    [payment.pk, tendered, change])
        row = cur.fetchone()
    if row is None:
        return CashTendered.objects.get(payment=payment)
    return CashTendered(pk=row[0], payment=payment, tendered=tendered, change=change)
