"""Reads for the counter, every one scoped to the clerk's current store.

A store's clerks see the store's own sales, pickups and ship-from-store
tasks.  For returns they also find online orders (any channel but the POS,
wherever they were picked up or shipped from): returns are taken anywhere,
but another store's counter sales stay that store's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Count, Exists, Min, OuterRef, Prefetch, Q, QuerySet, Sum

from members import selectors as member_read
from members.exceptions import InvalidPhone
from members.models import LotStatus, Member
from o2o.money import ZERO, money
from orders.models import Channel, Fulfillment, Order, OrderLine, Return, Shipment, Status
from orders.services import HANDED_OVER, ONLINE_CHANNELS, line_refund_amount
from inventory.selectors import stock_available
from payments.models import ApprovalLog, CashTendered, Payment, PosShift, Refund, Tender
from catalog.models import Sku
from stores.models import Store


def store_orders(store: Store) -> QuerySet[Order]:
    return Order.objects.filter(store=store)


def store_sales(store: Store) -> QuerySet[Order]:
    return Order.objects.filter(store=store, channel=Channel.POS)


def returnable_orders(store: Store) -> QuerySet[Order]:
    """Orders a clerk of ``store`` may take back: its own sales and any online order."""
    return Order.objects.filter(Q(store=store) | Q(channel__in=ONLINE_CHANNELS))


def store_shifts(store: Store) -> QuerySet[PosShift]:
    return PosShift.objects.filter(store=store).select_related("opened_by", "closed_by")


def orders_for_return(store: Store, text: str) -> tuple[list[Order], bool]:
    """Orders matching a scanned receipt (order number) or a customer's phone; (orders, by receipt)."""
    text = (text or "").strip()
    if not text:
        return [], True
    scope = returnable_orders(store).filter(status__in=HANDED_OVER).select_related("store")
    by_number = list(scope.filter(number__iexact=text))
    if by_number:
        return by_number, True
    try:
        phone = member_read.phone_normalize(text)
    except InvalidPhone:
        return [], True
    phones = {text, phone, phone.removeprefix("+86")}
    return list(scope.filter(customer_phone__in=phones).order_by("-created_at")[:20]), False


@dataclass
class ReturnableLine:
    line: OrderLine
    returnable: int


def returnable_lines(order: Order) -> list[ReturnableLine]:
    return [ReturnableLine(ln, ln.qty_shipped - ln.qty_returned) for ln in order.lines.order_by("line_no")]


def exchange_credit(order: Order, lines) -> Decimal:
    """The refund value of the lines picked for an exchange, to the fen, as ``return_create`` will compute it."""
    by_id = {ln.pk: ln for ln in order.lines.all()}
    taken: dict[int, int] = {}
    total = ZERO
    for pick in lines:
        ln = by_id.get(pick.order_line_id)
        if ln is None:
            continue
        done = ln.qty_returned + taken.get(ln.pk, 0)
        qty = max(0, min(pick.qty, ln.qty_shipped - done))
        if qty:
            total += line_refund_amount(ln, done, qty)
            taken[ln.pk] = taken.get(ln.pk, 0) + qty
    return money(total)


def member_for_order(order: Order) -> Member | None:
    if order.member_id:
        return member_read.member_get(order.member_id)
    if not order.customer_phone:
        return None
    try:
        return member_read.member_by_phone(order.customer_phone)
    except InvalidPhone:
        return None


def sale_change(order: Order) -> Decimal:
    record = CashTendered.objects.filter(payment__reference=order.number).first()
    return record.change if record else ZERO


@dataclass
class ReceiptLine:
    line: OrderLine
    gross: Decimal  # unit price × quantity, before the line's share of discounts


@dataclass
class Receipt:
    order: Order
    lines: list[ReceiptLine]
    payments: list[Payment]
    tendered: CashTendered | None
    returns: list[Return]
    refunds: list[Refund]
    member: Member | None
    voided: bool
    points_earned: int
    # An exchange sale: the return that paid for it with the goods brought back, and the points that
    # return took back from the original order (the new sale earns its own, ``points_earned``).
    exchange_of: Return | None = None
    points_reversed: int = 0
    # earned points stay frozen until the return window ends; None once they are available
    points_frozen_until: datetime | None = None
    # managers who approved something on this sale (discount, price override, void)
    approvals: list[ApprovalLog] = field(default_factory=list)

    @property
    def approvers(self) -> list[str]:
        names = []
        for log in self.approvals:
            name = getattr(getattr(log.manager, "staff", None), "display_name", "") or log.manager.get_username()
            if name not in names:
                names.append(name)
        return names

    @property
    def cash_payment(self) -> Payment | None:
        return next((p for p in self.payments if p.tender == "cash"), None)

    @property
    def promotion_discount(self) -> Decimal:
        """What the promotions took off the sale (each line lists them)."""
        return money(sum((p.amount for ln in self.lines for p in ln.line.promotions.all()), Decimal(0)))


def receipt(order: Order) -> Receipt:
    payments = list(Payment.objects.filter(reference=order.number, status=Payment.Status.CAPTURED).order_by("pk"))
    tendered = CashTendered.objects.filter(payment__in=payments).first()
    returns = list(order.returns.select_related("store").prefetch_related("lines__order_line").order_by("pk"))
    lot = member_read.points_earned_for_order(order.number)
    lines = [ReceiptLine(ln, money(ln.unit_price * ln.qty))
             for ln in order.lines.order_by("line_no").prefetch_related("promotions")]
    return Receipt(order=order, lines=lines, payments=payments, tendered=tendered,
                   returns=returns, refunds=list(Refund.objects.filter(payment__in=payments).order_by("pk")),
                   member=member_for_order(order),
                   voided=ApprovalLog.objects.filter(action=ApprovalLog.Action.VOID, reference=order.number).exists(),
                   points_earned=lot.amount if lot is not None else 0,
                   points_frozen_until=lot.frozen_until if lot is not None and lot.status == LotStatus.FROZEN else None,
                   approvals=list(ApprovalLog.objects.filter(reference__in=_sale_references(order))
                                  .select_related("manager__staff").order_by("pk")),
                   **_exchange_of(order))


def _exchange_of(order: Order) -> dict:
    ret = Return.objects.filter(exchange_order=order).select_related("order").first()
    if ret is None:
        return {}
    return {"exchange_of": ret,
            "points_reversed": member_read.points_reversed_by(order_number=ret.order.number, reference=ret.number)}


def _sale_references(order: Order) -> list[str]:
    """An approval during the sale names the sale by its client id; a void names the order number."""
    return [order.number, *([str(order.client_uuid)] if order.client_uuid else [])]


def pickup_orders_waiting(store: Store) -> QuerySet[Order]:
    return Order.objects.filter(store=store, fulfillment=Fulfillment.PICKUP,
                                status=Status.READY_FOR_PICKUP).order_by("created_at")


def ship_tasks(store: Store) -> QuerySet[Order]:
    """Online orders this store ships: paid or partly shipped, or unpaid with the customer paying the
    courier (cash on delivery), with lines at its stockroom."""
    cod = Payment.objects.filter(tender=Tender.CASH_ON_DELIVERY, status=Payment.Status.PENDING).values("reference")
    shippable = Q(status__in=[Status.PAID, Status.PARTIALLY_SHIPPED]) | Q(status=Status.PENDING_PAYMENT,
                                                                           number__in=cod)
    return (Order.objects.filter(shippable, fulfillment=Fulfillment.SHIP_STORE,
                                 lines__warehouse_id=store.warehouse_id)
            .distinct().order_by("paid_at", "pk")
            .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("line_no")),
                              Prefetch("shipments", queryset=Shipment.objects.order_by("pk")
                                       .prefetch_related("lines"))))


def store_shipments(store: Store) -> QuerySet[Shipment]:
    return Shipment.objects.filter(warehouse_id=store.warehouse_id)


@dataclass
class ShiftSales:
    sales: int
    sales_total: Decimal
    subtotal: Decimal
    discounts: Decimal
    returns: int
    returns_total: Decimal
    voids: int
    voids_total: Decimal


def shift_sales(shift: PosShift, end) -> ShiftSales:
    """The order side of the Z report: counter sales, discounts given, returns taken, voids."""
    sales = store_sales(shift.store).filter(created_at__gte=shift.opened_at, created_at__lt=end).aggregate(
        n=Count("id"), total=Sum("total"), subtotal=Sum("subtotal"), discounts=Sum("discount_total"))
    returns = Return.objects.filter(store_id=shift.store_id, created_at__gte=shift.opened_at,
                                    created_at__lt=end).aggregate(n=Count("id"), total=Sum("refund_total"))
    voids = ApprovalLog.objects.filter(store_id=shift.store_id, action=ApprovalLog.Action.VOID,
                                       created_at__gte=shift.opened_at, created_at__lt=end).aggregate(
        n=Count("id"), total=Sum("amount"))
    return ShiftSales(sales=sales["n"] or 0, sales_total=money(sales["total"] or ZERO),
                      subtotal=money(sales["subtotal"] or ZERO), discounts=money(sales["discounts"] or ZERO),
                      returns=returns["n"] or 0, returns_total=money(returns["total"] or ZERO),
                      voids=voids["n"] or 0, voids_total=money(voids["total"] or ZERO))


def shift_sales_by_clerk(shift: PosShift, end) -> list[dict]:
    """The shift's counter sales per clerk who rang them up (after a hand-over, the incoming clerk's
    are theirs): [{"clerk": name, "sales": n, "total": amount}], in the order they first sold."""
    rows = (store_sales(shift.store).filter(created_at__gte=shift.opened_at, created_at__lt=end)
            .values("created_by", "created_by__username", "created_by__staff__display_name")
            .annotate(n=Count("id"), total=Sum("total"), first=Min("created_at")).order_by("first"))
    return [{"clerk": r["created_by__staff__display_name"] or r["created_by__username"] or "—", "sales": r["n"],
             "total": money(r["total"] or ZERO)} for r in rows]


def _with_voided(qs: QuerySet[Order]) -> QuerySet[Order]:
    return qs.annotate(voided=Exists(ApprovalLog.objects.filter(action=ApprovalLog.Action.VOID,
                                                                reference=OuterRef("number"))))


def recent_sales(store: Store, shift: PosShift | None, limit: int = 20) -> QuerySet[Order]:
    qs = _with_voided(store_sales(store)).order_by("-created_at")
    if shift is not None:
        qs = qs.filter(created_at__gte=shift.opened_at)
    return qs[:limit]


def sales_on_day(store: Store, day: date, limit: int = 500) -> QuerySet[Order]:
    """The store's counter sales of one business day (the project's time zone), voids marked."""
    return _with_voided(store_sales(store)).filter(created_at__date=day).order_by("created_at")[:limit]


@dataclass
class SkuHit:
    sku: Sku
    available: int


def sku_search(store: Store, text: str, limit: int = 8) -> list[SkuHit]:
    """Active SKUs whose name or code contains every word of ``text``, those in stock here first."""
    words = [w for w in (text or "").split() if w][:5]
    if not words:
        return []
    qs = Sku.objects.filter(is_active=True)
    for word in words:
        qs = qs.filter(Q(name__icontains=word) | Q(code__icontains=word))
    skus = list(qs.order_by("code")[:50])
    stock = {s: n for (_w, s), n in stock_available(sku_ids=[s.pk for s in skus],
                                                   warehouse_ids=[store.warehouse_id]).items()}
    hits = [SkuHit(s, max(stock.get(s.pk, 0), 0)) for s in skus]
    hits.sort(key=lambda h: (h.available <= 0, h.sku.code))
    return hits[:limit]
