"""One priced sale: a basket or an order input priced once, into one object everything else reads.

``sale_price`` reads the catalogue once and returns a :class:`PricedSale`: the lines with their
list prices, what the live promotions take off each line (``promotions.engine``: the same engine
for the POS, online orders and exchanges, so a basket costs the same in every channel; marketplace
orders keep the marketplace's own prices), the order-level discount (a clerk's discount and price
overrides, or a partner's discount) allocated to the lines to the fen, the coupon quoted on what each line costs after that
discount, and the coupon's share of each line.  The POS page shows it, the POS checkout and the
API placement create the order from it, and the coupon redemption records its quote: nothing
downstream prices again, so the order's discount and the redemption's cannot drift apart.

Reads only; takes no locks.  Stock is not priced here: the sale's conditional stock update is the
only authority on availability.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Iterable, Mapping

from catalog.models import Sku
from inventory.exceptions import InactiveSku, UnknownSku
from members import selectors as member_read
from members.models import Member
from members.services.coupons import CouponQuote, coupon_evaluate
from o2o.channels import Channel
from o2o.errors import DomainError
from o2o.money import ZERO, allocate, money
from orders.exceptions import InvalidDiscount
from promotions import engine
from promotions import selectors as promo_read


@dataclass(frozen=True)
class PricedLine:
    sku: Sku
    qty: int
    unit_price: Decimal  # the list price, snapshotted on the order line
    category_id: int | None
    order_discount: Decimal = ZERO  # this line's share of the order-level discount
    coupon: Decimal = ZERO  # this line's share of the coupon
    promotion: Decimal = ZERO  # what the promotions take off this line
    promotions: tuple[engine.Applied, ...] = ()  # and which took how much
    cash_rounding: Decimal = ZERO  # this line's share of the 抹零 (``sale_round_cash``)

    @property
    def gross(self) -> Decimal:
        return money(self.unit_price * self.qty)

    @property
    def promoted(self) -> Decimal:
        """What the line costs after the promotions: the amount the order-level discount is spread on."""
        return money(self.gross - self.promotion)

    @property
    def net(self) -> Decimal:
        """What the line costs before the coupon: the amount the coupon is quoted on."""
        return money(self.gross - self.promotion - self.order_discount)

    @property
    def discount(self) -> Decimal:
        return money(self.promotion + self.order_discount + self.coupon + self.cash_rounding)

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
    # Why a coupon given was left out (it does not stack with the promotions, which save more).
    coupon_skipped: str = ""
    # Problems found while pricing, kept so a page can show the basket and say what is wrong;
    # ``raise_errors`` turns them into the error the sale refuses with.
    errors: tuple[DomainError, ...] = field(default=())
    # 抹零: the fen of the cash due the store's rounding dropped, a discount spread on the lines.
    cash_rounding: Decimal = ZERO

    @property
    def subtotal(self) -> Decimal:
        return money(sum((ln.gross for ln in self.lines), ZERO))

    @property
    def coupon_discount(self) -> Decimal:
        return self.coupon.discount if self.coupon else ZERO

    @property
    def promotion_discount(self) -> Decimal:
        return money(sum((ln.promotion for ln in self.lines), ZERO))

    @property
    def discount_total(self) -> Decimal:
        return money(self.promotion_discount + self.order_discount + self.coupon_discount + self.cash_rounding)

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

    def promotion_uses(self) -> dict[int, Decimal]:
        """{promotion id: what it takes off this sale}: what the sale consumes of each promotion's caps."""
        uses: dict[int, Decimal] = {}
        for ln in self.lines:
            for a in ln.promotions:
                uses[a.rule.id] = money(uses.get(a.rule.id, ZERO) + a.amount)
        return uses

    def raise_errors(self) -> PricedSale:
        if self.errors:
            raise self.errors[0]
        return self


def sale_price(*, demand: dict[int, int], channel: str, store_id: int | None = None,
               order_discount: Decimal = ZERO, coupon_code: str = "", member=None,
               strict: bool = True, skus: dict[int, Sku] | None = None, city_id: int | None = None,
               promotions_exclude: frozenset[int] = frozenset(),
               promotions_skip_skus: frozenset[int] = frozenset(),
               line_discounts: Mapping[int, Decimal] | None = None) -> PricedSale:
    """Price ``demand`` ({sku id: qty}) for ``channel`` at ``store_id`` (else for delivery to ``city_id``).

    The promotions run first, on the list prices; the order-level discount is spread on what the
    lines cost after them (and may not exceed it); the coupon is quoted last.  A coupon that does
    not stack with promotions is weighed against them: the sale takes whichever saves more (the
    promotions on a tie, so the coupon stays for another day), and says why in ``coupon_skipped``.
    ``promotions_exclude``: promotion ids to leave out (ones that ran out while the sale was made).
    ``promotions_skip_skus``: SKUs whose price a manager set at the counter: that price is the price,
    they take no promotion (nor count towards one).
    ``line_discounts``: {sku id: amount} of the order-level discount that belongs to each SKU (a
    marketplace that charged its own price per line); used as given when it adds up to
    ``order_discount`` and no SKU gets more than it costs, else the discount is spread by value.

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
    listed = [PricedLine(sku=skus[sku_id], qty=qty, unit_price=money(skus[sku_id].list_price),
                         category_id=skus[sku_id].product.category_id)
              for sku_id, qty in demand.items() if sku_id in skus]
    promoted = _promotions(listed, channel=channel, store_id=store_id, city_id=city_id, member=member,
                           exclude=promotions_exclude, skip_skus=promotions_skip_skus)
    order_discount = money(order_discount)
    lines, discount_error = _order_discount(promoted, order_discount, line_discounts)
    if discount_error is not None:
        errors.append(discount_error)
        order_discount = ZERO
    quote, skipped = None, ""
    if coupon_code and lines:
        try:
            quote = _coupon(lines, code=coupon_code, member=member, channel=channel, store_id=store_id)
        except DomainError as exc:
            errors.append(exc)
        else:
            if not quote.stacks_with_promotions and any(ln.promotion for ln in lines):
                # Either the promotions or the coupon: whichever saves the customer more.
                bare = _order_discount(listed, order_discount, line_discounts)[0]
                try:
                    alone = _coupon(bare, code=coupon_code, member=member, channel=channel, store_id=store_id)
                except DomainError:
                    alone = None
                if alone is not None and alone.discount > money(sum((ln.promotion for ln in lines), ZERO)):
                    lines, quote = bare, alone
                else:
                    quote, skipped = None, "coupon_not_stackable"
            if quote is not None:
                lines = [_with(ln, coupon=share) for ln, share in zip(lines, quote.line_discounts)]
    priced = PricedSale(channel=channel, store_id=store_id, member=member, lines=tuple(lines),
                        order_discount=order_discount, coupon=quote, coupon_skipped=skipped, errors=tuple(errors))
    return priced.raise_errors() if strict else priced


def sale_round_cash(priced: PricedSale, amount: Decimal) -> PricedSale:
    """The sale with ``amount`` (抹零, the fen the store's cash rounding drops from the cash due) taken
    off as a discount, allocated to the lines on what they cost, so the order's lines still add up
    to its total to the fen and a return of any line refunds exactly what it cost.  Pure."""
    amount = money(amount)
    if amount <= 0:
        return priced
    shares = allocate(amount, [ln.line_total for ln in priced.lines])
    lines = tuple(_with(ln, cash_rounding=money(ln.cash_rounding + share)) for ln, share in zip(priced.lines, shares))
    return replace(priced, lines=lines, cash_rounding=money(priced.cash_rounding + amount))


def _coupon(lines: list[PricedLine], *, code: str, member, channel: str, store_id: int | None) -> CouponQuote:
    return coupon_evaluate(code=code, member=member, channel=channel, store_id=store_id,
                           lines=[(ln.sku.pk, ln.category_id, ln.net) for ln in lines])


def _order_discount(lines: list[PricedLine], amount: Decimal,
                    per_sku: Mapping[int, Decimal] | None = None) -> tuple[list[PricedLine], DomainError | None]:
    """Spread the order-level discount on what the lines cost after the promotions (or take each
    SKU's share as given in ``per_sku``, when it adds up and fits every line)."""
    left = money(sum((ln.promoted for ln in lines), ZERO))
    if amount < 0 or amount > left:
        return lines, InvalidDiscount(field="discount", params={"discount": str(amount), "subtotal": str(left)})
    if per_sku is not None:
        shares = [money(per_sku.get(ln.sku.pk, ZERO)) for ln in lines]
        if money(sum(shares, ZERO)) == amount and all(ZERO <= s <= ln.promoted for s, ln in zip(shares, lines)):
            return [_with(ln, order_discount=share) for ln, share in zip(lines, shares)], None
    return [_with(ln, order_discount=share)
            for ln, share in zip(lines, allocate(amount, [ln.promoted for ln in lines]))], None


def _promotions(lines: list[PricedLine], *, channel: str, store_id: int | None, city_id: int | None, member,
                exclude: frozenset[int], skip_skus: frozenset[int]) -> list[PricedLine]:
    """The lines with what the live promotions take off them.  Marketplaces keep their own prices."""
    taking = [i for i, ln in enumerate(lines) if ln.sku.pk not in skip_skus]
    if channel == Channel.MARKETPLACE or not taking:
        return lines
    result = promo_read.promotions_price(
        items=[engine.Item(sku_id=ln.sku.pk, qty=ln.qty, amount=ln.gross, product_id=ln.sku.product_id,
                           category_id=ln.category_id, cost_price=ln.sku.cost_price)
               for ln in (lines[i] for i in taking)],
        channel=channel, store_id=store_id, city_id=city_id, exclude=exclude,
        tier_code=lambda: member.tier.code if member is not None and member.tier_id else "")
    if not result.applied:
        return lines
    out = list(lines)
    for n, i in enumerate(taking):
        out[i] = _with(lines[i], promotion=result.line_discounts[n],
                       promotions=tuple(replace(a, line=i) for a in result.applied if a.line == n))
    return out


def skus_load(sku_ids) -> dict[int, Sku]:
    """The SKUs with what pricing reads of them (list price, category, cost for a gift) and the barcode the
    counter shows beside each line, in one query."""
    return {s.pk: s for s in Sku.objects.filter(id__in=list(sku_ids)).select_related("product")
            .only("id", "code", "barcode", "name", "list_price", "cost_price", "is_active",
                  "product__category_id")}


def demand_of(lines: Iterable) -> dict[int, int]:
    """{sku id: qty} of lines with ``sku_id`` and ``qty``, a SKU listed twice counted once."""
    demand: dict[int, int] = {}
    for line in lines:
        demand[line.sku_id] = demand.get(line.sku_id, 0) + line.qty
    return demand


def _with(line: PricedLine, **changes) -> PricedLine:
    return PricedLine(**{**line.__dict__, **changes})
