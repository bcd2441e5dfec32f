"""The basket held by the till: the JSON a till sends to price a basket and to complete a sale.

The till page keeps the basket itself (scans resolve from the store's catalogue snapshot,
``pos.offline_catalogue``) and asks the server only to price it (read-only: member, coupon,
promotions, a manual discount) and to complete it.  Both parse the same body into a ``Basket``
value; the complete hands it to ``pos.services.pos_checkout`` as it is, which re-prices it
authoritatively.  No session and no server-side basket row are involved.

Members are given as a mobile number, the static ``o2o:member:<phone>`` QR or the member's dynamic
code (``members.codes``): pricing only reads a dynamic code; the complete takes it (once), which
proves the customer present so points and wallet may pay.
"""

from __future__ import annotations

import uuid as uuid_module
from dataclasses import dataclass, replace
from decimal import Decimal

from django.utils.translation import gettext_lazy as _

from members import selectors as member_read
from members.codes import is_member_code, member_code_read, member_code_take
from members.exceptions import MemberNotFound
from members.models import IssuedCoupon, Member
from members.privacy import phone_mask
from members.services.coupons import coupon_code_normalize
from o2o.errors import DomainError, InvalidInput
from o2o.money import ZERO, money, money_parse
from payments import approvals
from pos.basket import MAX_QTY, Basket, BasketLine, PricedBasket, basket_guide, basket_price, discount_parse
from pos.errors import error_message
from pos.services import PaymentIn
from stores.models import Store

MAX_LINES = 200
PRICE_FIELDS = frozenset({"lines", "member", "coupon", "guide", "discount"})
COMPLETE_FIELDS = PRICE_FIELDS | {"client_uuid", "payment"}
PAYMENT_FIELDS = frozenset({"cash_tendered", "card_amount", "card_reference", "points", "wallet_amount"})
LINE_FIELDS = frozenset({"sku", "qty"})


class TillUnknownField(InvalidInput):
    code = "unknown_field"
    default_message = _("The request has a field the till does not send.")


class TillInvalidField(InvalidInput):
    code = "invalid_field"
    default_message = _("A field of the request is missing or not valid.")


@dataclass(frozen=True)
class TillSale:
    """A till's request, parsed: the basket as a value, the member as typed or scanned, the payment."""

    basket: Basket
    member: str = ""
    payment: PaymentIn | None = None


def _fields(data: object, allowed: frozenset[str], where: str) -> dict:
    if not isinstance(data, dict):
        raise TillInvalidField(field=where)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise TillUnknownField(field=f"{where}.{unknown[0]}" if where != "body" else unknown[0],
                               params={"fields": unknown})
    return data


def _text(data: dict, key: str, *, limit: int = 200) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise TillInvalidField(field=key)
    return value.strip()


def _lines(raw: object) -> tuple[BasketLine, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_LINES:
        raise TillInvalidField(field="lines")
    lines = []
    for line in raw:
        _fields(line, LINE_FIELDS, "lines")
        sku, qty = line.get("sku"), line.get("qty")
        for value in (sku, qty):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TillInvalidField(field="lines")
        if qty > MAX_QTY or sku > 2**31 - 1:
            raise TillInvalidField(field="lines")
        lines.append(BasketLine(sku_id=sku, qty=qty))
    return tuple(lines)


def _money(data: dict, key: str) -> Decimal:
    value = data.get(key)
    if value is None or value == "":
        return ZERO
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TillInvalidField(field=f"payment.{key}")
    try:
        amount = money_parse(str(value))
    except ValueError:
        raise TillInvalidField(field=f"payment.{key}") from None
    if amount < 0:
        raise TillInvalidField(field=f"payment.{key}")
    return amount


def _payment(raw: object) -> PaymentIn:
    data = _fields(raw, PAYMENT_FIELDS, "payment")
    points = data.get("points") or 0
    if isinstance(points, bool) or not isinstance(points, int) or points < 0:
        raise TillInvalidField(field="payment.points")
    reference = data.get("card_reference") or ""
    if not isinstance(reference, str) or len(reference) > 64:
        raise TillInvalidField(field="payment.card_reference")
    return PaymentIn(cash_tendered=_money(data, "cash_tendered"), card_amount=_money(data, "card_amount"),
                     card_reference=reference.strip(), wallet_amount=_money(data, "wallet_amount"), points=points)


def till_parse(data: object, *, store: Store, complete: bool) -> TillSale:
    """The till's body as a basket (and, to complete, its client UUID and payment).

    Reads the guide (a store guide's id or code).  Raises TillUnknownField, TillInvalidField,
    invalid_discount_input and the guide errors (all 400/422, nothing written).
    """
    data = _fields(data, COMPLETE_FIELDS if complete else PRICE_FIELDS, "body")
    key = ""
    if complete:
        try:
            key = str(uuid_module.UUID(str(data.get("client_uuid"))))
        except ValueError:
            raise TillInvalidField(field="client_uuid") from None
    discount_text = data.get("discount")
    if isinstance(discount_text, bool) or (discount_text is not None and not isinstance(discount_text, (str, int))):
        raise TillInvalidField(field="discount")
    basket = Basket(uuid=key or str(uuid_module.uuid4()), lines=_lines(data.get("lines")),
                    coupon=coupon_code_normalize(_text(data, "coupon")),
                    discount=discount_parse(str(discount_text)) if discount_text not in (None, "") else None)
    guide = data.get("guide")
    if guide not in (None, ""):
        if isinstance(guide, bool) or not isinstance(guide, (int, str)) or len(str(guide)) > 64:
            raise TillInvalidField(field="guide")
        basket = basket_guide(basket, store, str(guide))
    payment = _payment(data.get("payment") if "payment" in data else {}) if complete else None
    return TillSale(basket=basket, member=_text(data, "member"), payment=payment)


def till_member(sale: TillSale, *, take: bool) -> tuple[Basket, Member | None]:
    """The basket with its member: the one typed or scanned, else the coupon's owner.

    ``take``: a dynamic member code is taken (spent, proving the customer present); otherwise only
    read.  Raises MemberNotFound (field "member"), invalid_phone, the member code errors.
    """
    basket, text = sale.basket, sale.member
    proved = False
    if not text:
        if not basket.coupon:
            return basket, None
        owner = IssuedCoupon.objects.filter(code=basket.coupon).values_list("member_id", flat=True).first()
        if owner is None:
            return basket, None
        member = member_read.member_get(owner)
        return replace(basket, member_id=member.pk), member
    if is_member_code(text):
        member = member_code_take(text) if take else member_code_read(text)
        proved = take
    else:
        phone = text.split(":", 2)[2] if text.lower().startswith("o2o:member:") else text
        member = member_read.member_by_phone(phone)
        if member is None:
            raise MemberNotFound(field="member", params={"phone": phone_mask(phone)})
    return replace(basket, member_id=member.pk, member_proved=proved), member


def _points_cap(total: Decimal, member: Member | None, config) -> int:
    if member is None:
        return 0
    return max(0, min(member.points_available,
                      member_read.points_redeem_cap(order_amount=max(total, ZERO), config=config)))


def _error(exc: DomainError | None) -> dict | None:
    return None if exc is None else {"code": exc.code, "message": error_message(exc)}


def till_price(basket: Basket, *, store: Store, actor, member: Member | None = None) -> dict:
    """The basket priced as the sale will price it (``basket_price``), as the till shows it.  Reads only.
    ``member``: the basket's member when the caller has loaded it."""
    if member is None and basket.member_id:
        member = member_read.member_get(basket.member_id)
    priced: PricedBasket = basket_price(basket, store, member=member)
    sale = priced.sale
    if sale is not None:
        names = {ln.sku.pk: ln for ln in priced.lines}
        lines = [{"sku": ln.sku.pk, "code": ln.sku.code, "name": ln.sku.name, "qty": ln.qty,
                  "unit_price": str(money(ln.unit_price)), "gross": str(ln.gross),
                  "promotion": str(money(ln.promotion)), "discount": str(ln.discount), "amount": str(ln.line_total),
                  "available": names[ln.sku.pk].available if ln.sku.pk in names else 0,
                  "promotions": [{"name": a.rule.name, "amount": str(money(a.amount))} for a in ln.promotions]}
                 for ln in sale.lines]
        errors = [_error(e) for e in sale.errors if e is not sale.coupon_error]
    else:
        lines = [{"sku": ln.sku.pk, "code": ln.sku.code, "name": ln.sku.name, "qty": ln.qty,
                  "unit_price": str(ln.unit_price), "gross": str(ln.amount), "promotion": "0.00",
                  "discount": "0.00", "amount": str(ln.amount), "available": ln.available, "promotions": []}
                 for ln in priced.lines]
        errors = []
    known = {ln.sku.pk for ln in priced.lines}
    if any(ln.sku_id not in known for ln in basket.lines) and not any(e["code"] == "unknown_sku" for e in errors):
        errors.append({"code": "unknown_sku", "message": str(_("Unknown barcode or SKU code."))})
    needs_approval = bool(basket.discount) and priced.discount_error is None and approvals.discount_needs_approval(
        user=actor, store=store, subtotal=money(priced.subtotal - priced.override_discount),
        discount=priced.manual_discount)
    total = priced.total
    config = member_read.points_config() if member is not None else None  # read once for the cap and the rate
    return {
        "currency": "CNY", "lines": lines, "subtotal": str(money(priced.subtotal)),
        "promotion_discount": str(money(priced.promotion_discount)),
        "manual_discount": str(money(priced.manual_discount)), "coupon_discount": str(money(priced.coupon_discount)),
        "total": str(total),
        "member": ({"id": member.pk, "name": member.name, "phone": phone_mask(member.phone),
                    "points_available": member.points_available,
                    "points_cap": _points_cap(total, member, config),
                    "points_per_yuan": config.points_per_yuan_redeemed,
                    "proved": basket.member_proved} if member is not None else None),
        "coupon": ({"code": basket.coupon, "discount": str(money(priced.coupon_discount)),
                    "skipped": priced.coupon_skipped} if basket.coupon else None),
        "coupon_error": _error(priced.coupon_error),
        "discount_error": _error(priced.discount_error),
        "discount_needs_approval": needs_approval,
        "guide": basket.guide_id,
        "errors": errors,
    }
