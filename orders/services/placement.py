"""Placement: an online order (reserved stock) or a store sale (stock taken now), created once in its
final state from the one priced sale (``orders.pricing``)."""

from __future__ import annotations

import functools
import secrets
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any, Callable, Sequence

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, transaction
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inventory import services as stock
from o2o.db import insert_joined, joined_writes, late, service
from o2o.errors import InvalidInput
from o2o.ids import number_next, numbers_next
from o2o.outbox import outbox_batch
from o2o.money import ZERO, allocate, money
from orders import allocation, membership
from orders.events import order_born, order_born_audit, order_transition
from orders.exceptions import (
    InvalidFulfillment,
    PaymentMismatch,
    StoreRequired,
)
from orders.pricing import PricedSale, sale_price
from orders.models import (
    PICKUP_CODE_OPEN_ONCE,
    Channel,
    Fulfillment,
    Order,
    OrderLine,
    OrderLinePromotion,
    Status,
)
from payments import micropay
from payments.models import Payment
from payments.tenders import tender_for
from payments import services as pay
from promotions.exceptions import PromotionExhausted
from promotions.services import promotions_consume, promotions_release
from stores.exceptions import NotLaunched
from stores.models import Capability, Store
from stores.selectors import capability_enabled
from orders.services.shared import (
    LineIn,
    ONLINE_CHANNELS,
    PlaceResult,
    TenderIn,
    _check_points_cap,
    _demand,
    _existing,
    _payload_hash,
    _user,
    return_window_end,
)


def _lines_create(order: Order, priced: PricedSale, plan: dict[int, dict[int, int]] | None,
                  warehouse_id: int | None, handed_over: bool = False) -> list[OrderLine]:
    """One OrderLine per SKU and warehouse; a split SKU's discount is re-allocated across its parts.

    What each promotion took off a line is kept beside it (``OrderLinePromotion``), split like the
    discount."""
    lines, line_no, explained = [], 0, []
    for row in priced.lines:
        sku = row.sku
        parts = [(w, q[sku.id]) for w, q in plan.items() if sku.id in q] if plan else [(warehouse_id, row.qty)]
        weights = [Decimal(q) for _, q in parts]
        discounts = allocate(row.discount, weights)
        coupon_parts = allocate(row.coupon, weights)
        promo_parts = [allocate(a.amount, weights) for a in row.promotions]
        for n, ((wid, qty), disc, coupon) in enumerate(zip(parts, discounts, coupon_parts)):
            line_no += 1
            line = OrderLine(order=order, line_no=line_no, sku=sku, sku_code=sku.code, name=sku.name,
                             unit_price=row.unit_price, qty=qty, discount=disc, warehouse_id=wid,
                             coupon_discount=coupon, category_id_snapshot=row.category_id,
                             line_total=money(row.unit_price * qty - disc), qty_shipped=qty if handed_over else 0)
            lines.append(line)
            explained.extend(_line_promotion(line, a, shares[n], n == 0)
                             for a, shares in zip(row.promotions, promo_parts) if shares[n] > 0)
    if not explained and insert_joined(lines):  # a store sale's lines ride on its last statement
        return lines
    made = OrderLine.objects.bulk_create(lines)
    if explained:
        OrderLinePromotion.objects.bulk_create(explained)
    return made


def _line_promotion(line: OrderLine, applied, amount: Decimal, first: bool) -> OrderLinePromotion:
    rule = applied.rule
    gift = applied.gift_qty > 0 and first
    return OrderLinePromotion(line=line, promotion_id=rule.id, code=rule.code, name=rule.name, kind=rule.kind,
                              bearer=rule.bearer, amount=amount, gift_qty=applied.gift_qty if gift else 0,
                              gift_cost=applied.gift_cost if gift else ZERO, buy_qty=rule.buy_qty if gift else 0,
                              earned_by=list(applied.earned_by) if gift else [])


def _promotions_hold(priced: PricedSale, reprice) -> PricedSale:
    """Take the sale's uses of its promotions within their caps; one that ran out since the sale was
    priced is left out and the sale priced again without it (``reprice(exclude)``), a bounded number
    of times."""
    excluded: frozenset[int] = frozenset()
    for _attempt in range(5):
        try:
            promotions_consume(uses=priced.promotion_uses())
            return priced
        except PromotionExhausted as exc:
            excluded = excluded | frozenset(exc.params["promotions"])
            priced = reprice(excluded)
    promotions_consume(uses=priced.promotion_uses())
    return priced


# The constraints that say "this order was already placed" (a retried submit), by name.
_EXTERNAL_ID_ONCE = "order_external_id_once"


_CLIENT_UUID_ONCE = "orders_order_client_uuid_key"  # the column's own UNIQUE (0001_initial)


PICKUP_CODE_ATTEMPTS = 8


def _insert_order(order: Order, *, lookup: dict[str, Any], request_hash: str, key_constraint: str) -> tuple[Order, bool]:
    """Insert the order row; if a concurrent submit with the same key won, return that one instead.

    Only a violation of ``key_constraint`` (the caller's idempotency key: external id or
    client sale id), with that key set, is a duplicate submit.  A pickup code another open
    order holds is drawn again; any other violation is raised as it is, never mistaken
    for the first customer's order.
    """
    for _attempt in range(PICKUP_CODE_ATTEMPTS):
        try:
            with transaction.atomic():
                order.save(force_insert=True)
            return order, True
        except IntegrityError as exc:
            constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
            if constraint == PICKUP_CODE_OPEN_ONCE and order.pickup_code:
                order.pickup_code = _new_pickup_code()
                continue
            if constraint != key_constraint or not all(lookup.values()):
                raise
            existing = _existing(lookup=lookup, request_hash=request_hash)
            if existing is None:
                raise
            return existing, False
    raise IntegrityError(f"no free pickup code after {PICKUP_CODE_ATTEMPTS} draws")


def _new_pickup_code() -> str:
    """Eight random digits; unique among open pickup orders (``order_pickup_code_open_once``),
    drawn again on a collision by ``_insert_order``."""
    return f"{secrets.randbelow(10**8):08d}"


def _member_fields(member, quote, *, chosen_guide_id: int | None) -> dict[str, Any]:
    guide = membership.guide_resolve(member=member, chosen_guide_id=chosen_guide_id) if (
        member is not None or chosen_guide_id) else None
    return {"member": member, "guide": guide, "coupon_code": quote.code if quote else "",
            "coupon_discount": quote.discount if quote else ZERO,
            "coupon_cost_ecommerce": quote.ecommerce_amount if quote else ZERO,
            "coupon_cost_store": quote.store_amount if quote else ZERO}


@service
def order_place(*, channel: str, lines: Sequence[LineIn], fulfillment: str, external_id: str | None = None,
                partner: str = "", store: Store | None = None, ship_city_id: int | None = None,
                ship_address: str = "", ship_postcode: str = "", customer_name: str = "", customer_phone: str = "",
                discount: Decimal = ZERO, actor=None, member=None, coupon_code: str = "",
                chosen_guide_id: int | None = None, line_discounts: dict[int, Decimal] | None = None,
                stock_late: bool = False) -> PlaceResult:
    """Place an online order and reserve its stock.  Idempotent on (channel, partner, external id).

    With a ``member``, the order is attributed to the member's bound guide and a
    ``coupon_code`` of theirs is redeemed on it (restored if the order is cancelled or expires).
    ``chosen_guide_id`` attributes the order to that guide (a QR scene without a member).
    ``line_discounts``: the part of ``discount`` each SKU takes (a marketplace's own price per line).
    ``stock_late``: the stock is reserved by ``o2o.db.late`` (in a late window, just before the commit;
    nothing of the order may read its reservations before then).
    Locks: stock levels of the chosen warehouse(s), ordered; the coupon row.  Queues: ``order.created``.
    Raises: invalid_quantity, unknown_sku, inactive_sku, insufficient_stock, store_required,
    pickup_not_launched (pickup is not switched on at the store), invalid_fulfillment, invalid_discount, duplicate_different_payload, member_not_found and
    the coupon errors (coupon_expired, coupon_used, coupon_out_of_scope, …).
    """
    if channel not in ONLINE_CHANNELS:
        raise InvalidFulfillment(message="Use the POS sale for store sales.", field="channel")
    if fulfillment not in {Fulfillment.PICKUP, Fulfillment.SHIP_WAREHOUSE, Fulfillment.SHIP_STORE}:
        raise InvalidFulfillment(field="fulfillment")
    if fulfillment == Fulfillment.PICKUP and store is None:
        raise StoreRequired(field="store")
    if ship_postcode and not (len(ship_postcode) == 6 and ship_postcode.isascii() and ship_postcode.isdigit()):
        raise InvalidInput(_("A postcode is six digits."), code="invalid_postcode", field="ship_postcode")
    if fulfillment == Fulfillment.PICKUP and not capability_enabled(Capability.PICKUP, store=store):
        raise NotLaunched(capability=Capability.PICKUP, store=store, field="store")
    demand = _demand(lines)
    member = membership.member_resolve(member)
    request_hash = _payload_hash({"lines": sorted(demand.items()), "fulfillment": fulfillment,
                                  "store": store.pk if store else None, "city": ship_city_id,
                                  **({"postcode": ship_postcode} if ship_postcode else {}),
                                  "discount": str(money(discount)), "member": member.pk if member else None,
                                  "coupon": coupon_code or "", **({"guide": chosen_guide_id} if chosen_guide_id else {})})
    lookup = {"channel": channel, "partner": partner, "external_id": external_id}
    if external_id:
        existing = _existing(lookup=lookup, request_hash=request_hash)
        if existing is not None:
            return PlaceResult(existing, created=False)
    # Where the stock comes from, decided before any promotion is held or anything written: an order
    # no warehouse can serve is refused by the sold-out gate (before pricing, no database) or by a
    # lock-free read (after pricing, which says first whether the SKUs exist and are sold).
    config = allocation.channel_config(channel)
    warehouses = allocation.candidates(channel=channel, fulfillment=fulfillment, store=store,
                                       ship_city_id=ship_city_id, config=config)
    allow_split = config.allow_split and fulfillment != Fulfillment.PICKUP
    allocation.soldout_check(demand=demand, warehouse_ids=warehouses, allow_split=allow_split)

    def reprice(exclude: frozenset[int] = frozenset()) -> PricedSale:
        return sale_price(demand=demand, channel=channel, store_id=store.pk if store else None,
                          city_id=ship_city_id, order_discount=discount, coupon_code=coupon_code, member=member,
                          promotions_exclude=exclude, line_discounts=line_discounts)

    # A promotion that runs out while this order is placed is left out: the order takes the new price.
    priced = reprice()
    plan = allocation.allocate(demand=demand, warehouse_ids=warehouses, allow_split=allow_split)
    priced = _promotions_hold(priced, reprice)
    if fulfillment != Fulfillment.PICKUP:
        kinds = dict(Store.objects.filter(warehouse_id__in=list(plan)).values_list("warehouse_id", "id"))
        fulfillment = Fulfillment.SHIP_STORE if kinds and set(plan) <= set(kinds) else Fulfillment.SHIP_WAREHOUSE
    order = Order(number=number_next("SO"), channel=channel, partner=partner, external_id=external_id,
                  request_hash=request_hash, store=store, fulfillment=fulfillment, status=Status.PENDING_PAYMENT,
                  customer_name=customer_name, customer_phone=customer_phone, ship_city_id=ship_city_id,
                  ship_address=ship_address, ship_postcode=ship_postcode, subtotal=priced.subtotal,
                  discount_total=priced.discount_total,
                  total=priced.total, created_by=_user(actor),
                  expires_at=timezone.now() + timedelta(minutes=settings.O2O_RESERVATION_TTL_MINUTES),
                  needs_transfer=fulfillment == Fulfillment.PICKUP and store.warehouse_id not in plan,
                  pickup_code=_new_pickup_code() if fulfillment == Fulfillment.PICKUP else None,
                  **_member_fields(member, priced.coupon, chosen_guide_id=chosen_guide_id))
    order, created = _insert_order(order, lookup=lookup, request_hash=request_hash, key_constraint=_EXTERNAL_ID_ONCE)
    if not created:
        promotions_release(uses=priced.promotion_uses())
        return PlaceResult(order, created=False)
    _lines_create(order, priced, plan, None)
    membership.coupon_redeem(order, priced, actor=actor, partner=partner)
    order.status = ""
    order_transition(order, Status.PENDING_PAYMENT, actor=actor, store=store, emit="order.created")
    # The stock levels are the hottest rows: locked last, and under a late window (an API request)
    # only after the response is rendered and stored.
    reserve = functools.partial(_stock_hold, plan=plan, reference=order.number, expires_at=order.expires_at,
                                actor=actor)
    if stock_late:
        late(reserve)
    else:
        reserve()
    return PlaceResult(order, created=True)


def _stock_hold(*, plan: dict[int, dict[int, int]], reference: str, expires_at, actor) -> None:
    for warehouse_id, skus in sorted(plan.items()):
        stock.stock_reserve(warehouse=warehouse_id, lines=list(skus.items()), reference=reference,
                            expires_at=expires_at, actor=actor)


@service
def pos_sale_create(*, store: Store, client_uuid: uuid.UUID | str, tenders: Sequence[TenderIn],
                    lines: Sequence[LineIn] = (), priced: PricedSale | None = None, actor=None,
                    discount: Decimal = ZERO, customer_phone: str = "", member=None, coupon_code: str = "",
                    guide_id: int | None = None, known_new: bool = False, member_locked: bool = False,
                    before_stock: Callable[[Order, list[Payment]], None] | None = None) -> PlaceResult:
    """Ring up a store sale: stock leaves the store's stockroom now, the payments are captured.

    With a ``member``: their coupon is verified (核销) and redeemed, wallet and points
    tenders draw on their ledgers, points are earned (frozen for the return window) and
    the guide chosen here — or else the member's bound guide — accrues commission.
    ``priced``: the sale as the counter priced it (``orders.pricing.sale_price``), taken as it is;
    without it, ``lines``, ``discount``, ``coupon_code`` and ``member`` are priced here, once.
    Idempotent on the client-generated sale UUID: a retried submit returns the first sale
    (``known_new``: the caller has just looked for it, so it is not read again; a racing twin is
    still caught by the insert).  ``member_locked``: the priced sale's member was locked by the
    caller in this transaction (``members.services.members.member_lock``).
    A tender with ``payment_id`` is a payment-code payment captured for this sale before
    its transaction (``payments.micropay``): it is taken over, not charged again.
    ``before_stock(order, payments)``: the caller's own writes for the new sale, run before the stock.

    The order is inserted once in its final state (completed, paid, handed over); lines, payments
    and the outbox messages are one multi-row insert each; the stock is taken last, by one
    conditional UPDATE of all the lines (``inventory.services.stock_sale_prepare``), so the
    level rows stay locked only for the commit.
    Raises: invalid_quantity, unknown_sku, inactive_sku, insufficient_stock, payment_mismatch,
    duplicate_different_payload, member_not_found, not_a_guide, points_cap_exceeded,
    points_insufficient, wallet_insufficient and the coupon errors.
    """
    try:
        client_uuid = uuid.UUID(str(client_uuid))
    except ValueError:
        raise InvalidInput(message="Invalid sale id.", code="invalid_sale_id", field="client_uuid")
    if priced is not None:
        demand, member = priced.demand(), priced.member
        discount, coupon_code = priced.order_discount, priced.coupon_code
    else:
        demand, member = _demand(lines), membership.member_resolve(member)
        member_locked = False
    request_hash = _payload_hash({"store": store.pk, "lines": sorted(demand.items()),
                                  "tenders": [(t.tender, str(money(t.amount))) for t in tenders],
                                  "discount": str(money(discount)), "member": member.pk if member else None,
                                  "coupon": coupon_code or "", "guide": guide_id})
    lookup = {"client_uuid": client_uuid}
    if not known_new:
        existing = _existing(lookup=lookup, request_hash=request_hash)
        if existing is not None:
            return PlaceResult(existing, created=False)
    if priced is None:
        priced = sale_price(demand=demand, channel=Channel.POS, store_id=store.pk, order_discount=discount,
                            coupon_code=coupon_code, member=member)
    total = priced.total
    if money(sum((t.amount for t in tenders), ZERO)) != total:
        raise PaymentMismatch(params={"due": str(total)})
    _check_points_cap(total, tenders)
    # Tenders taken at the counter in one insert; a payment code's captured payment is taken over,
    # a provider tender (never captured at the counter) is made alone and refused below.
    at_once = [t for t in tenders if t.payment_id is None and not tender_for(t.tender).provider_backed]
    numbers = numbers_next("PS", *["PY"] * len(at_once))
    now = timezone.now()
    order = Order(number=numbers[0], channel=Channel.POS, client_uuid=client_uuid, request_hash=request_hash,
                  store=store, fulfillment=Fulfillment.IN_STORE, subtotal=priced.subtotal,
                  discount_total=priced.discount_total, total=total, paid_total=total, paid_at=now,
                  handed_over_at=now, cash_rounding=priced.cash_rounding, created_by=_user(actor),
                  customer_phone=customer_phone, **_member_fields(member, priced.coupon, chosen_guide_id=guide_id))
    order_born(order, Status.COMPLETED)
    if not _sale_insert(order):
        existing = _existing(lookup=lookup, request_hash=request_hash)
        if existing is None:
            raise IntegrityError("the sale's insert conflicted, yet no sale has its client id")
        return PlaceResult(existing, created=False)
    with joined_writes():
        with outbox_batch():
            # The counter priced the sale and the customer pays that: a promotion that ran out since
            # is refused.
            promotions_consume(uses=priced.promotion_uses())
            lines_made = _lines_create(order, priced, None, store.warehouse_id, handed_over=True)
            take = stock.stock_sale_prepare(warehouse_id=store.warehouse_id, reference=order.number,
                                            actor=actor, lines=[(ln.sku_id, ln.qty) for ln in lines_made],
                                            codes={ln.sku_id: ln.sku_code for ln in lines_made})
            membership.coupon_redeem(order, priced, actor=actor)
            payments = _sale_payments(order, tenders, at_once, numbers[1:], store=store, actor=actor,
                                      member=member, client_uuid=client_uuid)
            captured = money(sum((p.amount for p in payments if p.status == Payment.Status.CAPTURED), ZERO))
            if captured != total:
                raise PaymentMismatch(message="POS tenders must be captured at the counter.",
                                      params={"due": str(total)})
            order_born_audit(order, actor=actor, store=store, emit="order.paid")
            paid = membership.money_paid(payments)  # the payments just taken: no need to read them back
            # Points paid with are redeemed through a fresh read of the member: the locked copy's
            # balances are stale after that, so the earn then locks and reads it again.
            locked = member if member_locked and not any(t.tender == "points" for t in tenders) else None
            membership.on_paid(order, paid=paid, locked_member=locked)
            membership.on_handed_over(order, lines_made, frozen_until=return_window_end(order), paid=paid,
                                      locked_member=locked, store=store, new_order=True)
            if before_stock is not None:
                before_stock(order, payments)
        # The outbox messages and the audit rows nobody reads back ride on the stock statement, last.
        take.take()
    return PlaceResult(order, created=True, payments=payments)


def _sale_payments(order: Order, tenders: Sequence[TenderIn], at_once: list[TenderIn], numbers: list[str], *,
                   store: Store, actor, member, client_uuid: uuid.UUID) -> list[Payment]:
    """The sale's payments in the order of its tenders: those taken at the counter in one insert."""
    made = iter(pay.payments_record(reference=order.number, numbers=numbers, store=store, actor=actor,
                                    member=member,
                                    tenders=[(t.tender, t.amount, t.card_reference) for t in at_once]))
    payments = []
    for t in tenders:
        if t.payment_id is not None:
            payments.append(micropay.micropay_attach(payment=t.payment_id, client_uuid=client_uuid,
                                                     reference=order.number, tender=t.tender,
                                                     amount=money(t.amount), store=store))
        elif any(t is x for x in at_once):
            payments.append(next(made))
        else:
            payments.append(pay.payment_create(reference=order.number, tender=t.tender, amount=t.amount,
                                               store=store, actor=actor, card_reference=t.card_reference,
                                               member=member))
    return payments


def _sale_insert(order: Order) -> bool:
    """Insert a store sale, or nothing when a sale with its client id exists (a retried or twin
    submit): one statement, ``ON CONFLICT (client_uuid) DO NOTHING``, no savepoint.  Any other
    unique violation is raised as it is."""
    meta = Order._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field and not f.generated]
    query = InsertQuery(Order, on_conflict=OnConflict.IGNORE)
    query.insert_values(fields, [order])
    compiler = query.get_compiler(using=DEFAULT_DB_ALIAS)
    compiler.returning_fields = [meta.pk]
    ((sql, params),) = compiler.as_sql()
    sql = sql.replace("ON CONFLICT DO NOTHING", 'ON CONFLICT ("client_uuid") DO NOTHING', 1)
    with connection.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    if row is None:
        return False
    order.pk = row[0]
    order._state.adding, order._state.db = False, DEFAULT_DB_ALIAS
    return True
