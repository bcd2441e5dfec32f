"""The counter basket: what the clerk has scanned, kept on the server until the sale completes.

The clerk's open basket is a row per clerk and store (``pos.parking``), so a
re-login finds it.  It holds only ids, quantities and the clerk's choices; every amount
shown or charged is computed on the server by ``basket_price``, once per
request, into the priced sale (``orders.pricing``) that the checkout takes as is.
Each basket carries the sale's client id (a UUID made when the sale screen
opens): it goes with every submit, so a repeated submit finds the sale it
already made.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext_lazy as _

from catalog.models import Sku
from inventory.selectors import stock_available
from inventory.services import sku_by_barcode
from members import selectors as member_read
from members.exceptions import CouponNotFound
from members.models import IssuedCoupon
from members.services.coupons import coupon_code_normalize
from members.services.guides import guide_active, guide_by_code
from o2o.errors import Conflict, DomainError, InvalidInput
from o2o.money import ZERO, money
from orders.exceptions import InvalidDiscount
from orders.models import Channel
from orders.pricing import PricedSale, demand_of, sale_price, skus_load
from stores.models import Role, StaffProfile, Store

MAX_QTY = 999


class InvalidDiscountInput(InvalidInput):
    code = "invalid_discount_input"
    default_message = _("Type an amount such as 20 or 20.50, or a percentage such as 10%.")


class OutOfStock(Conflict):
    code = "out_of_stock"
    default_message = _("Not enough stock in this store.")


@dataclass(frozen=True)
class BasketLine:
    sku_id: int
    qty: int
    price: Decimal | None = None  # a manager-approved unit price below the list price
    approval_id: int | None = None


@dataclass(frozen=True)
class Discount:
    kind: str  # "amount" or "percent"
    value: Decimal
    approval_id: int | None = None

    def amount(self, base: Decimal) -> Decimal:
        if self.kind == "percent":
            return money(base * self.value / Decimal(100))
        return money(self.value)

    def label(self) -> str:
        return f"{self.value.normalize():f}%" if self.kind == "percent" else f"¥{money(self.value)}"


@dataclass(frozen=True)
class ExchangeLine:
    order_line_id: int
    qty: int
    condition: str


@dataclass(frozen=True)
class Exchange:
    order_id: int
    lines: tuple[ExchangeLine, ...]
    approval_id: int | None = None
    reason: str = ""
    by_receipt: bool = True


@dataclass(frozen=True)
class Basket:
    uuid: str
    lines: tuple[BasketLine, ...] = ()
    discount: Discount | None = None
    member_id: int | None = None
    coupon: str = ""
    guide_id: int | None = None
    exchange: Exchange | None = None
    # The member showed their dynamic member code (members.codes): points and wallet may pay.
    member_proved: bool = False

    @classmethod
    def new(cls) -> Basket:
        return cls(uuid=str(uuid.uuid4()))

    # --- session form -------------------------------------------------------------------------

    def dump(self) -> dict:
        return {
            "uuid": self.uuid,
            "lines": [{"sku": ln.sku_id, "qty": ln.qty, "price": str(ln.price) if ln.price is not None else None,
                       "approval": ln.approval_id} for ln in self.lines],
            "discount": ({"kind": self.discount.kind, "value": str(self.discount.value),
                          "approval": self.discount.approval_id} if self.discount else None),
            "member": self.member_id, "coupon": self.coupon, "guide": self.guide_id,
            "member_proved": self.member_proved,
            "exchange": ({"order": self.exchange.order_id, "approval": self.exchange.approval_id,
                          "reason": self.exchange.reason, "by_receipt": self.exchange.by_receipt,
                          "lines": [{"line": x.order_line_id, "qty": x.qty, "condition": x.condition}
                                    for x in self.exchange.lines]} if self.exchange else None),
        }

    @classmethod
    def load(cls, data: dict | None) -> Basket:
        if not data or not data.get("uuid"):
            return cls.new()
        discount = data.get("discount")
        exchange = data.get("exchange")
        return cls(
            uuid=data["uuid"],
            lines=tuple(BasketLine(sku_id=int(ln["sku"]), qty=int(ln["qty"]),
                                   price=Decimal(ln["price"]) if ln.get("price") is not None else None,
                                   approval_id=ln.get("approval")) for ln in data.get("lines", [])),
            discount=(Discount(discount["kind"], Decimal(discount["value"]), discount.get("approval"))
                      if discount else None),
            member_id=data.get("member"), coupon=data.get("coupon") or "",
            guide_id=data.get("guide"), member_proved=bool(data.get("member_proved")),
            exchange=(Exchange(order_id=int(exchange["order"]), approval_id=exchange.get("approval"),
                               reason=exchange.get("reason") or "",
                               by_receipt=bool(exchange.get("by_receipt", True)),
                               lines=tuple(ExchangeLine(int(x["line"]), int(x["qty"]), x["condition"])
                                           for x in exchange["lines"])) if exchange else None),
        )

    # --- edits (pure: each returns a new basket) ----------------------------------------------

    def with_added(self, sku_id: int, qty: int = 1) -> Basket:
        lines = list(self.lines)
        for i, ln in enumerate(lines):
            if ln.sku_id == sku_id and ln.price is None:
                lines[i] = replace(ln, qty=min(MAX_QTY, ln.qty + qty))
                return replace(self, lines=tuple(lines))
        return replace(self, lines=tuple(lines) + (BasketLine(sku_id=sku_id, qty=qty),))

    def with_qty(self, index: int, qty: int) -> Basket:
        lines = list(self.lines)
        if 0 <= index < len(lines):
            if qty <= 0:
                del lines[index]
            else:
                lines[index] = replace(lines[index], qty=min(MAX_QTY, qty))
        return replace(self, lines=tuple(lines))

    def with_price(self, index: int, price: Decimal, approval_id: int) -> Basket:
        lines = list(self.lines)
        lines[index] = replace(lines[index], price=money(price), approval_id=approval_id)
        return replace(self, lines=tuple(lines))

    def qty_of(self, sku_id: int) -> int:
        return sum(ln.qty for ln in self.lines if ln.sku_id == sku_id)

    def demand(self) -> dict[int, int]:
        """{SKU id: units} the basket asks of the store's stock."""
        out: dict[int, int] = {}
        for ln in self.lines:
            out[ln.sku_id] = out.get(ln.sku_id, 0) + ln.qty
        return out


def basket_add(basket: Basket, store: Store, code: str) -> tuple[Basket, Sku]:
    """Add one unit of the SKU with this barcode or code, if the store has it in stock.

    Raises InvalidBarcode, UnknownSku, InactiveSku, OutOfStock.
    """
    sku = sku_by_barcode(code)
    _stock_check(store, sku, basket.qty_of(sku.pk) + 1)
    return basket.with_added(sku.pk), sku


def basket_set_qty(basket: Basket, store: Store, index: int, qty: int) -> Basket:
    """Change a line's quantity (0 removes it), within the store's stock."""
    if not 0 <= index < len(basket.lines):
        return basket
    line = basket.lines[index]
    if qty > 0:
        others = basket.qty_of(line.sku_id) - line.qty
        _stock_check(store, Sku.objects.get(pk=line.sku_id), others + qty)
    return basket.with_qty(index, qty)


def _stock_check(store: Store, sku: Sku, qty: int) -> None:
    available = store_available(store, [sku.pk]).get(sku.pk, 0)
    if qty > available:
        raise OutOfStock(field="scan", params={"available": max(available, 0), "sku": sku.code})


def discount_parse(text: str) -> Discount | None:
    """"10%" → 10 percent; "20" or "20.50" → 20.50 off; empty → no discount."""
    text = (text or "").strip().replace("％", "%").replace("¥", "").replace(",", "")
    if not text:
        return None
    kind = "percent" if text.endswith("%") else "amount"
    try:
        value = Decimal(text.rstrip("%").strip())
    except InvalidOperation:
        raise InvalidDiscountInput(field="discount") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")) or (
            kind == "percent" and value >= 100):
        raise InvalidDiscountInput(field="discount")
    return Discount(kind, value)


# --- pricing (reads) ------------------------------------------------------------------------


@dataclass
class PricedLine:
    index: int
    sku: Sku
    qty: int
    list_price: Decimal
    unit_price: Decimal
    amount: Decimal
    available: int
    overridden: bool
    promotions: tuple = ()  # what the promotions take off this SKU (orders.pricing / promotions.engine)


@dataclass
class PricedBasket:
    """The basket as the counter shows it: its lines with the clerk's overrides, and the priced sale
    (``orders.pricing.PricedSale``) the checkout takes as it is."""

    basket: Basket
    lines: list[PricedLine] = field(default_factory=list)
    subtotal: Decimal = ZERO  # at list prices
    override_discount: Decimal = ZERO  # price overrides, as a discount
    manual_discount: Decimal = ZERO  # the basket discount
    exchange_credit: Decimal = ZERO
    sale: PricedSale | None = None
    discount_error: InvalidDiscount | None = None

    @property
    def coupon_discount(self) -> Decimal:
        return self.sale.coupon_discount if self.sale else ZERO

    @property
    def coupon_error(self) -> DomainError | None:
        return self.sale.coupon_error if self.sale else None

    @property
    def promotion_discount(self) -> Decimal:
        return self.sale.promotion_discount if self.sale else ZERO

    @property
    def coupon_skipped(self) -> bool:
        """The coupon does not stack with promotions, and the promotions save more: it is not used."""
        return bool(self.sale and self.sale.coupon_skipped)

    @property
    def discount_total(self) -> Decimal:
        """The clerk's discounts (price overrides and the basket discount), without the coupon."""
        return money(self.override_discount + self.manual_discount)

    @property
    def total(self) -> Decimal:
        return money(self.subtotal - self.promotion_discount - self.discount_total - self.coupon_discount)

    @property
    def due(self) -> Decimal:
        """What the customer pays now: the total less the value of goods brought back in an exchange."""
        return money(max(ZERO, self.total - self.exchange_credit))

    @property
    def refund_due(self) -> Decimal:
        return money(max(ZERO, self.exchange_credit - self.total))

    @property
    def units(self) -> int:
        return sum(ln.qty for ln in self.lines)


def store_available(store: Store, sku_ids) -> dict[int, int]:
    """{sku id: units the store can sell now} (``inventory.selectors.stock_available``)."""
    return {s: n for (_w, s), n in stock_available(sku_ids=sku_ids, warehouse_ids=[store.warehouse_id]).items()}


def basket_price(basket: Basket, store: Store, *, member=None, stock: bool = True) -> PricedBasket:
    """Price the basket once: list prices, approved overrides, the basket discount and the coupon.

    A discount larger than what is left after overrides (lines were removed since) is kept and
    flagged in ``discount_error``; the sale refuses it, as it refuses the problems kept in
    ``sale.errors`` (a SKU no longer sold, a coupon that no longer applies).  ``member``: the
    basket's member when the caller has loaded it.  ``stock=False``: the stock on hand is not read
    (each line's ``available`` is 0), for the sale, whose own conditional update decides.
    """
    skus = skus_load(ln.sku_id for ln in basket.lines)
    available = store_available(store, skus) if stock else {}
    priced = PricedBasket(basket=basket)
    for index, ln in enumerate(basket.lines):
        sku = skus.get(ln.sku_id)
        if sku is None:
            continue
        list_price = money(sku.list_price)
        unit = money(ln.price) if ln.price is not None else list_price
        priced.lines.append(PricedLine(index=index, sku=sku, qty=ln.qty, list_price=list_price, unit_price=unit,
                                       amount=money(unit * ln.qty), available=available.get(sku.pk, 0),
                                       overridden=ln.price is not None))
        priced.subtotal += money(list_price * ln.qty)
        priced.override_discount += money((list_price - unit) * ln.qty)
    after_overrides = money(priced.subtotal - priced.override_discount)
    if basket.discount is not None:
        priced.manual_discount = basket.discount.amount(after_overrides)
        if priced.manual_discount > after_overrides:
            priced.discount_error = InvalidDiscount(field="discount", params={
                "discount": str(priced.manual_discount), "subtotal": str(after_overrides)})
    if priced.lines and priced.discount_error is None:
        priced.sale = sale_price(demand=demand_of(basket.lines), channel=Channel.POS, store_id=store.pk,
                                 order_discount=priced.discount_total, coupon_code=basket.coupon,
                                 member=member if member is not None else basket.member_id, strict=False,
                                 skus=skus, promotions_skip_skus=frozenset(
                                     ln.sku_id for ln in basket.lines if ln.price is not None))
        shown: dict[int, tuple] = {ln.sku.pk: ln.promotions for ln in priced.sale.lines}
        for line in priced.lines:  # a SKU on two basket lines shows its promotions once
            line.promotions = shown.pop(line.sku.pk, ())
    return priced


def basket_coupon(basket: Basket, store: Store, text: str) -> Basket:
    """Put a scanned or typed coupon on the basket; with no member yet, the coupon's owner is the member.

    Raises the coupon errors (not found, expired, used, another member's, out of scope, threshold).
    """
    code = coupon_code_normalize(text)
    owner = IssuedCoupon.objects.filter(code=code).values_list("member_id", flat=True).first() if code else None
    if owner is None:
        raise CouponNotFound(field="coupon", params={"code": code})
    candidate = replace(basket, coupon=code, member_id=basket.member_id or member_read.member_get(owner).pk,
                        member_proved=basket.member_proved and basket.member_id is not None)
    priced = basket_price(candidate, store)
    if priced.coupon_error is not None:
        raise priced.coupon_error
    return candidate


def store_guides(store: Store):
    """The store's active shop assistants, for the guide picker."""
    return (StaffProfile.objects.filter(role=Role.GUIDE, is_active=True, user__is_active=True,
                                        guide_code__isnull=False, memberships__store=store)
            .order_by("display_name"))


def basket_guide(basket: Basket, store: Store, value: str) -> Basket:
    """Choose the guide who served: a scanned guide QR / typed guide code, or one of the store's guides."""
    value = (value or "").strip()
    if not value:
        return replace(basket, guide_id=None)
    if value.isdigit() and store_guides(store).filter(pk=int(value)).exists():
        guide = guide_active(int(value))
    else:
        guide = guide_by_code(value)
    return replace(basket, guide_id=guide.pk)
