"""One priced sale: a basket or an order input priced once, into one object everything else reads.

``sale_price`` reads the catalogue once and returns a :class:`PricedSale`: the lines with their
list prices, the order-level discount (a clerk's discount and price overrides, or a partner's
discount) allocated to the lines to the fen, the coupon quoted on what each line costs after that
discount, and the coupon's share of each line.  The POS page shows it, the POS checkout and the
API placement create the order from it, and the coupon redemption records its quote: nothing
downstream prices again, so the order's discount and the redemption's cannot drift apart.

Reads only; takes no locks.  Stock is not priced here: the sale's conditional stock update is the
only authority on availability.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable

from catalog.models import Sku
from inventory.exceptions import InactiveSku, UnknownSku
from members import selectors as member_read
from members.models import Member
from members.services.coupons import CouponQuote, coupon_evaluate
from o2o.errors import DomainError
from o2o.money import ZERO, allocate, money
from orders.exceptions import InvalidDiscount


@dataclass(frozen=True)
class PricedLine:
    sku: Sku
    qty: int
    unit_price: Decimal  # the list price, snapshotted on the order line
    category_id: int | None
    order_discount: Decimal = ZERO  # this line's share of the order-level discount
    coupon: Decimal = ZERO  # this line's share of the coupon

    @property
    def gross(self) -> Decimal:
        return money(self.unit_price * self.qty)

    @property
    def net(self) -> Decimal:
        """What the line costs before the coupon: the amount the coupon is quoted on."""
        return money(self.gross - self.order_discount)

    @property
    def discount(self) -> Decimal:
        return money(self.order_discount + self.coupon)

    @property
    def line_total(self) -> Decimal:
        return money(self.gross - self.discount)


@dataclass(frozen=True)
class PricedSale:
    channel: str
    store_id: int | None
    member: Member | None
    lines: tuple[PricedLine, ...]
    order_discount: Decimal = ZERO
    coupon: CouponQuote | None = None
    # Problems found while pricing, kept so a page can show the basket and say what is wrong;
    # ``raise_errors`` turns them into the error the sale refuses with.
    errors: tuple[DomainError, ...] = field(default=())

    @property
    def subtotal(self) -> Decimal:
        return money(sum((ln.gross for ln in self.lines), ZERO))

    @property
    def coupon_discount(self) -> Decimal:
        return self.coupon.discount if self.coupon else ZERO

    @property
    def discount_total(self) -> Decimal:
        return money(self.order_discount + self.coupon_discount)

    @property
    def total(self) -> Decimal:
        return money(self.subtotal - self.discount_total)

    @property
    def coupon_code(self) -> str:
        return self.coupon.code if self.coupon else ""

    @property
    def coupon_error(self) -> DomainError | None:
        return next((e for e in self.errors if e.code.startswith("coupon_") or e.code == "member_not_found"), None)

    def coupon_lines(self) -> list[tuple[int, int | None, Decimal]]:
        """The lines as the coupon was quoted on them: (sku id, category id, amount after the order discount)."""
        return [(ln.sku.pk, ln.category_id, ln.net) for ln in self.lines]

    def demand(self) -> dict[int, int]:
        return {ln.sku.pk: ln.qty for ln in self.lines}

    def raise_errors(self) -> PricedSale:
        if self.errors:
            raise self.errors[0]
        return self


def sale_price(*, demand: dict[int, int], channel: str, store_id: int | None = None,
               order_discount: Decimal = ZERO, coupon_code: str = "", member=None,
               strict: bool = True, skus: dict[int, Sku] | None = None) -> PricedSale:
    """Price ``demand`` ({sku id: qty}) for ``channel`` at ``store_id``.

    With ``strict`` the first problem is raised (unknown_sku, inactive_sku, invalid_discount, the
    coupon errors); otherwise the sale is priced as far as it can be and the problems are kept in
    ``errors`` (a page showing a basket).  ``skus``: the SKUs as ``skus_load`` read them, when the
    caller has them already.  One query for the SKUs, one for a member given by id, and the coupon's.
    """
    errors: list[DomainError] = []
    skus = skus if skus is not None else skus_load(demand)
    member = member_read.member_get(member) if member is not None and not isinstance(member, Member) else member
    missing = sorted(set(demand) - skus.keys())
    inactive = sorted(s.code for s in skus.values() if not s.is_active)
    if missing:  # the same errors, in the same order, as the stock services give
        errors.append(UnknownSku(params={"sku_ids": missing}))
    elif inactive:
        errors.append(InactiveSku(params={"skus": inactive}))
    lines = [PricedLine(sku=skus[sku_id], qty=qty, unit_price=money(skus[sku_id].list_price),
                        category_id=skus[sku_id].product.category_id)
             for sku_id, qty in demand.items() if sku_id in skus]
    gross = money(sum((ln.gross for ln in lines), ZERO))
    order_discount = money(order_discount)
    if order_discount < 0 or order_discount > gross:
        errors.append(InvalidDiscount(field="discount", params={"discount": str(order_discount),
                                                                "subtotal": str(gross)}))
        order_discount = ZERO
    lines = [_with(ln, order_discount=share)
             for ln, share in zip(lines, allocate(order_discount, [ln.gross for ln in lines]))]
    quote = None
    if coupon_code and lines:
        try:
            quote = coupon_evaluate(code=coupon_code, member=member, channel=channel, store_id=store_id,
                                    lines=[(ln.sku.pk, ln.category_id, ln.net) for ln in lines])
        except DomainError as exc:
            errors.append(exc)
        else:
            lines = [_with(ln, coupon=share) for ln, share in zip(lines, quote.line_discounts)]
    priced = PricedSale(channel=channel, store_id=store_id, member=member, lines=tuple(lines),
                        order_discount=order_discount, coupon=quote, errors=tuple(errors))
    return priced.raise_errors() if strict else priced


def skus_load(sku_ids) -> dict[int, Sku]:
    """The SKUs with what pricing reads of them (list price, category), in one query."""
    return {s.pk: s for s in Sku.objects.filter(id__in=list(sku_ids)).select_related("product")
            .only("id", "code", "name", "list_price", "is_active", "product__category_id")}


def demand_of(lines: Iterable) -> dict[int, int]:
    """{sku id: qty} of lines with ``sku_id`` and ``qty``, a SKU listed twice counted once."""
    demand: dict[int, int] = {}
    for line in lines:
        demand[line.sku_id] = demand.get(line.sku_id, 0) + line.qty
    return demand


def _with(line: PricedLine, **changes) -> PricedLine:
    return PricedLine(**{**line.__dict__, **changes})
