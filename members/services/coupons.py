"""Coupons: issue (HQ, campaign, guide, online claim), share, evaluate, redeem, restore, expire.

Rules the code keeps (and the tests prove):

* Limits.  ``total_limit`` caps how many coupons of a template are ever issued;
  ``per_member_limit`` caps how many one member ever receives, whether issued,
  claimed or shared to them (a restored coupon counts once, it is the same
  coupon).  Both are moved by conditional single-statement updates, so two
  claims at once cannot both pass a limit.  Every issue takes the template's
  row lock first (the ``issued_count`` update), then the member's quota row.
* Redemption is one conditional ``UPDATE … WHERE status = 'issued'`` checked by
  row count, backed by a partial unique index (one active redemption per
  coupon): the same code scanned in two stores at once succeeds once.  A retry
  of the same order returns the first redemption.
* Cost bearer.  ``ecommerce``: the e-commerce department bears the whole
  discount; ``store``: the store does; ``split``: the e-commerce department bears
  ``ecommerce_share_percent`` of it, rounded half up to the fen, and the store
  the rest, so the two parts always add up to the discount.
* Returns.  A *full* return calls :func:`coupon_restore`: the redemption is
  closed, and the coupon is issued again if it is still within its validity
  (expired otherwise: it could not be used anyway).  A *partial* return leaves
  the coupon redeemed: the refund of the returned lines is net of the coupon
  discount orders allocated to them, so the member gets back what they paid
  and the discount stays with the goods they keep.  This holds even when the
  goods kept no longer reach the threshold: restoring the coupon then would
  hand back a discount the member already enjoyed on the kept goods (return
  the cheap item, keep the rest at the discounted price, reuse the coupon), and
  clawing the discount back from the refund instead would make the refund
  depend on the order the goods come back in.  Keeping the allocation fixed
  makes every refund exact and final.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable, Sequence

import segno
from django.core.exceptions import FieldError, ValidationError
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from catalog.models import Category
from members.exceptions import (
    CampaignNotRunnable,
    CouponExpired,
    CouponLimitReached,
    CouponNotFound,
    CouponNotIssuable,
    CouponNotOwned,
    CouponNotShareable,
    CouponNotYetValid,
    CouponOutOfScope,
    CouponThresholdNotMet,
    CouponUsed,
    InvalidCouponLines,
    InvalidSegment,
    InvalidReference,
)
from members.models import (
    CostBearer,
    CouponCampaign,
    CouponEvent,
    CouponKind,
    CouponQuota,
    CouponRedemption,
    CouponTemplate,
    CouponValidity,
    IssuedCoupon,
    Member,
)
from members.selectors import member_get
from members.services.guides import basket_lines_clean, guide_active
from members.services.members import member_register, merge_hook
from o2o.db import service
from o2o.errors import InvalidInput
from o2o.money import CURRENCY, ZERO, allocate, money
from o2o.outbox import outbox_emit
from stores.exceptions import NotLaunched
from stores.models import Capability, StaffProfile, Store
from stores.selectors import capability_enabled


# 31 symbols: no 0/O, 1/I/L, so a code read aloud or typed from print cannot be mistaken.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12  # 31**12 ≈ 2**59: guessing a live code is hopeless
QR_PREFIX = "o2o:coupon:"

TOPIC_REDEEMED = "members.coupon_redeemed"
TOPIC_RESTORED = "members.coupon_restored"
TOPIC_SHARED = "members.coupon_shared"
TOPIC_CAMPAIGN_STARTED = "members.coupon_campaign_started"

QUOTA_TABLE = CouponQuota._meta.db_table
TEMPLATE_TABLE = CouponTemplate._meta.db_table

CouponLine = tuple[int, "int | None", Decimal]


@dataclass(frozen=True)
class CouponQuote:
    """What a coupon takes off a basket, and who bears it.

    ``line_discounts`` follows the input lines (0.00 for lines out of scope);
    orders may store it as the per-line allocation.
    """

    code: str
    discount: Decimal
    eligible_amount: Decimal
    ecommerce_amount: Decimal
    store_amount: Decimal
    line_discounts: tuple[Decimal, ...]
    currency: str = CURRENCY
    stacks_with_promotions: bool = True


# --- codes and QR ----------------------------------------------------------------------------


def coupon_code_generate() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def coupon_code_normalize(text: str) -> str:
    """Accept what a scanner or a person sends: the QR payload, dashes, spaces, lower case."""
    code = text.strip() if isinstance(text, str) else ""
    if code.lower().startswith(QR_PREFIX):
        code = code[len(QR_PREFIX):]
    return "".join(ch for ch in code.upper() if ch not in " -")


def coupon_qr_payload(coupon: IssuedCoupon) -> str:
    return f"{QR_PREFIX}{coupon.code}"


def coupon_qr_svg(coupon: IssuedCoupon) -> str:
    """An inline SVG QR code of the coupon, for pages and e-mails."""
    return segno.make_qr(coupon_qr_payload(coupon), error="m").svg_inline(scale=4, border=2)


def coupon_qr_png(coupon: IssuedCoupon, *, scale: int = 6) -> bytes:
    buffer = io.BytesIO()
    segno.make_qr(coupon_qr_payload(coupon), error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


def _codes_new(count: int) -> list[str]:
    """``count`` fresh codes, none already in use (one query; a clash is astronomically rare)."""
    codes: set[str] = set()
    while len(codes) < count:
        wanted = {coupon_code_generate() for _ in range(count - len(codes))}
        taken = set(IssuedCoupon.objects.filter(code__in=wanted).values_list("code", flat=True))
        codes |= wanted - taken
    return list(codes)


# --- shared checks ---------------------------------------------------------------------------


def _template_resolve(template: CouponTemplate | int) -> CouponTemplate:
    pk = template.pk if isinstance(template, CouponTemplate) else template
    found = CouponTemplate.objects.filter(pk=pk).first()
    if found is None:
        raise CouponNotFound(message="No such coupon template.", code="coupon_template_not_found")
    return found


def _check_lines(lines: Sequence[CouponLine]) -> list[tuple[int, int | None, Decimal]]:
    return basket_lines_clean(lines, error=InvalidCouponLines)


def _check_reference(order_number: str, channel: str) -> None:
    if not isinstance(order_number, str) or not order_number.strip():
        raise InvalidReference(field="order_number")
    if not isinstance(channel, str) or not channel.strip():
        raise InvalidInput(message="A channel is required.", code="invalid_channel", field="channel")


def _coupon_by_code(code: str, *, lock: bool = False) -> IssuedCoupon:
    qs = IssuedCoupon.objects.select_related("template")
    if lock:
        qs = qs.select_for_update(of=("self",))
    normalized = coupon_code_normalize(code)
    coupon = qs.filter(code=normalized).first() if normalized else None
    if coupon is None:
        raise CouponNotFound(field="code")
    return coupon


def _check_usable(coupon: IssuedCoupon, member: Member | None, at: datetime) -> None:
    """Ownership first (a foreign code reveals nothing more), then status and validity."""
    if member is None or coupon.member_id != member.pk:
        raise CouponNotOwned(field="code")
    if coupon.status == IssuedCoupon.Status.REDEEMED:
        raise CouponUsed(field="code")
    if coupon.status == IssuedCoupon.Status.EXPIRED or at >= coupon.valid_until:
        raise CouponExpired(field="code", params={"valid_until": coupon.valid_until.isoformat()})
    if at < coupon.valid_from:
        raise CouponNotYetValid(field="code", params={"valid_from": coupon.valid_from.isoformat()})


def _validity_window(template: CouponTemplate, at: datetime) -> tuple[datetime, datetime]:
    if template.validity == CouponValidity.DAYS_AFTER_ISSUE:
        return at, at + timedelta(days=template.valid_days)
    return template.valid_from, template.valid_until


def _check_issuable(template: CouponTemplate, at: datetime) -> tuple[datetime, datetime]:
    if not template.is_active:
        raise CouponNotIssuable(message="This coupon template is not active.")
    valid_from, valid_until = _validity_window(template, at)
    if at >= valid_until:
        raise CouponExpired()
    return valid_from, valid_until


# --- limits ----------------------------------------------------------------------------------


def _template_take(template: CouponTemplate, count: int) -> None:
    """Count ``count`` more coupons against the total limit (row-locks the template) or raise."""
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {TEMPLATE_TABLE} SET issued_count = issued_count + %s "
            "WHERE id = %s AND (total_limit IS NULL OR issued_count + %s <= total_limit)",
            [count, template.pk, count],
        )
        if cur.rowcount != 1:
            raise CouponLimitReached(message="All coupons of this template have been issued.",
                                     params={"template": template.code, "limit": "total"})


def _quota_take(template: CouponTemplate, member_ids: Iterable[int]) -> list[int]:
    """Count one more coupon for each member within the per-member limit; returns who got one."""
    ids = sorted(set(member_ids))
    if not ids:
        return []
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {QUOTA_TABLE} AS q (template_id, member_id, received) "
            "SELECT %s, m, 1 FROM unnest(%s::bigint[]) AS m "
            "ON CONFLICT (template_id, member_id) DO UPDATE SET received = q.received + 1 "
            "WHERE %s::integer IS NULL OR q.received < %s::integer "
            "RETURNING q.member_id",
            [template.pk, ids, template.per_member_limit, template.per_member_limit],
        )
        return sorted(row[0] for row in cur.fetchall())


def _quota_take_one(template: CouponTemplate, member: Member) -> None:
    if not _quota_take(template, [member.pk]):
        raise CouponLimitReached(message="This member already has as many of these coupons as allowed.",
                                 params={"template": template.code, "limit": "per_member"})


# --- issue -----------------------------------------------------------------------------------


def _issue_one(template: CouponTemplate, member: Member, *, source: str, at: datetime, guide=None,
               actor=None, channel: str = "", store_id: int | None = None, partner: str = "",
               note: str = "") -> IssuedCoupon:
    valid_from, valid_until = _check_issuable(template, at)
    _template_take(template, 1)  # template row lock first, then the quota row: one order everywhere
    _quota_take_one(template, member)
    coupon = IssuedCoupon.objects.create(
        template=template, code=_codes_new(1)[0], member=member, issued_to=member, source=source,
        guide=guide, valid_from=valid_from, valid_until=valid_until, issued_at=at)
    CouponEvent.objects.create(coupon=coupon, kind=CouponEvent.Kind.ISSUED, at=at, channel=channel,
                               store_id=store_id, actor=_user(actor), partner=partner[:60], note=note)
    return coupon


def _user(actor):
    return actor if actor is not None and getattr(actor, "pk", None) else None


@service
def coupon_issue(*, template: CouponTemplate | int, member: Member | int, actor=None, note: str = "",
                 at: datetime | None = None) -> IssuedCoupon:
    """Head office issues one coupon to a member.

    Locks the template row (total limit) and the member's quota row.  Raises
    coupon_template_not_found, member_not_found, coupon_not_issuable (inactive
    template), coupon_expired (fixed dates already past), coupon_limit_reached.
    """
    at = at or timezone.now()
    member = member_get(member)
    template = _template_resolve(template)
    return _issue_one(template, member, source=IssuedCoupon.Source.HQ, at=at, actor=actor, note=note[:300])


@service
def coupon_claim(*, template: CouponTemplate | int, member: Member | int, channel: str,
                 partner: str = "", at: datetime | None = None) -> IssuedCoupon:
    """A member claims a coupon online (web shop, mini-program).  Same locks and errors as
    :func:`coupon_issue`; also coupon_not_issuable when the template is not claimable online."""
    at = at or timezone.now()
    member = member_get(member)
    template = _template_resolve(template)
    if not template.claimable_online:
        raise CouponNotIssuable(message="This coupon cannot be claimed online.")
    return _issue_one(template, member, source=IssuedCoupon.Source.CLAIM, at=at, channel=channel, partner=partner)


@service
def coupon_guide_issue(*, template: CouponTemplate | int, member: Member | int, guide: StaffProfile | int,
                       store_id: int | None = None, at: datetime | None = None) -> IssuedCoupon:
    """A guide hands a coupon to a member (in store or through their own channel).

    Raises not_a_guide for anyone but an active guide, coupon_not_issuable when
    the template is not for guides, and the errors of :func:`coupon_issue`.
    """
    at = at or timezone.now()
    member = member_get(member)
    guide = guide_active(guide)
    template = _template_resolve(template)
    if not template.guide_can_issue:
        raise CouponNotIssuable(message="Guides cannot hand out this coupon.")
    return _issue_one(template, member, source=IssuedCoupon.Source.GUIDE, at=at, guide=guide,
                      actor=guide.user, channel="pos" if store_id else "", store_id=store_id)


@service
def coupon_share(*, code: str, from_member: Member | int, to_member: Member | int,
                 at: datetime | None = None) -> IssuedCoupon:
    """Give an unused coupon to another member: ownership moves and an event records it.

    Locks the coupon row, then the recipient's quota row (a share counts towards
    the recipient's per-member limit).  Raises coupon_not_found, member_not_found,
    coupon_not_owned, coupon_used, coupon_expired, coupon_not_shareable,
    coupon_limit_reached, and invalid_input when sharing to oneself.
    """
    at = at or timezone.now()
    giver = member_get(from_member)
    receiver = member_get(to_member)
    coupon = _coupon_by_code(code, lock=True)
    _check_usable(coupon, giver, at)
    if not coupon.template.shareable:
        raise CouponNotShareable(field="code")
    if receiver.pk == giver.pk:
        raise InvalidInput(message="A coupon cannot be shared with its owner.", code="coupon_share_self")
    _quota_take_one(coupon.template, receiver)
    coupon.member = receiver
    coupon.save(update_fields=["member", "updated_at"])
    CouponEvent.objects.create(coupon=coupon, kind=CouponEvent.Kind.SHARED, at=at, from_member=giver,
                               to_member=receiver)
    outbox_emit(topic=TOPIC_SHARED, key=f"member:{receiver.pk}",
                payload={"code": coupon.code, "from_member_id": giver.pk, "to_member_id": receiver.pk})
    return coupon


@service
def coupon_share_to(*, code: str, from_member: Member | int, to_member: Member | int | None = None,
                    to_phone: str = "", channel: str, partner: str = "") -> IssuedCoupon:
    """Share a coupon with a friend named by member id or by phone (registered when new, in the same
    transaction, so a refused share registers nobody).  Raises what ``coupon_share`` and
    ``member_register`` raise."""
    if to_member is None:
        to_member = member_register(phone=to_phone, channel=channel, partner=partner)
    return coupon_share(code=code, from_member=from_member, to_member=to_member)


# --- evaluate and redeem ---------------------------------------------------------------------


def _in_scope_flags(template: CouponTemplate, lines: list[tuple[int, int | None, Decimal]]) -> list[bool]:
    sku_ids = set(template.skus.values_list("id", flat=True))
    scope_paths = list(template.categories.values_list("path", flat=True))
    if not sku_ids and not scope_paths:
        return [True] * len(lines)
    line_paths: dict[int, str] = {}
    wanted = {c for _, c, _ in lines if c is not None}
    if scope_paths and wanted:
        line_paths = dict(Category.objects.filter(id__in=wanted).values_list("id", "path"))

    def category_in_scope(category_id: int | None) -> bool:
        path = line_paths.get(category_id) if category_id is not None else None
        return bool(path) and any(path == p or path.startswith(p + "/") for p in scope_paths)

    return [sku_id in sku_ids or category_in_scope(category_id) for sku_id, category_id, _ in lines]


def _quote(coupon: IssuedCoupon, *, channel: str, store_id: int | None,
           lines: list[tuple[int, int | None, Decimal]]) -> CouponQuote:
    template = coupon.template
    if template.channels and channel not in template.channels:
        raise CouponOutOfScope(message="This coupon is not valid in this channel.", field="code",
                               params={"channel": channel})
    store_ids = set(template.stores.values_list("id", flat=True))
    if store_ids and store_id not in store_ids:
        raise CouponOutOfScope(message="This coupon is not valid in this store.", field="code",
                               params={"store_id": store_id})
    # Until coupon scopes are launched at a store, it honours only the coupons made for it: coupons of
    # wider scope (every store, HQ and online campaigns) are refused there.
    if store_id is not None and store_id not in store_ids \
            and not capability_enabled(Capability.COUPON_SCOPES, store=store_id):
        raise NotLaunched(capability=Capability.COUPON_SCOPES, store=Store.objects.get(pk=store_id), field="code")
    flags = _in_scope_flags(template, lines)
    eligible = money(sum((amount for (_, _, amount), ok in zip(lines, flags) if ok), Decimal(0)))
    if eligible <= 0:
        raise CouponOutOfScope(message="No item in this basket is covered by the coupon.", field="code")
    if eligible < template.threshold:
        raise CouponThresholdNotMet(field="code", params={"threshold": template.threshold, "eligible": eligible})
    if template.kind == CouponKind.PERCENT:
        discount = money(eligible * template.percent / Decimal(100))
        if template.max_discount is not None:
            discount = min(discount, template.max_discount)
    else:
        discount = template.amount
    discount = money(min(discount, eligible))
    if discount <= 0:
        raise CouponOutOfScope(message="The coupon takes nothing off this basket.", field="code")
    if template.bearer == CostBearer.SPLIT:
        ecommerce = money(discount * template.ecommerce_fraction)
    else:
        ecommerce = discount if template.bearer == CostBearer.ECOMMERCE else ZERO
    shares = iter(allocate(discount, [amount for (_, _, amount), ok in zip(lines, flags) if ok]))
    line_discounts = tuple(next(shares) if ok else ZERO for ok in flags)
    return CouponQuote(code=coupon.code, discount=discount, eligible_amount=eligible,
                       ecommerce_amount=money(ecommerce), store_amount=money(discount - ecommerce),
                       line_discounts=line_discounts, stacks_with_promotions=template.stacks_with_promotions)


def coupon_evaluate(*, code: str, member: Member | int | None, channel: str, store_id: int | None,
                    lines: Sequence[CouponLine], at: datetime | None = None) -> CouponQuote:
    """What the coupon takes off these lines ``[(sku_id, category_id, amount)]``; changes nothing.

    ``category_id`` is the product's category (a category scope covers its
    subcategories); amounts are what the line costs before this coupon.  Raises
    coupon_not_found, member_not_found, coupon_not_owned, coupon_used,
    coupon_expired, coupon_not_yet_valid, coupon_out_of_scope,
    coupon_threshold_not_met, invalid_coupon_lines.
    """
    at = at or timezone.now()
    clean = _check_lines(lines)
    coupon = _coupon_by_code(code)
    member = member_get(member) if member is not None else None
    _check_usable(coupon, member, at)
    return _quote(coupon, channel=channel, store_id=store_id, lines=clean)


def _redemption_active(coupon_id: int, order_number: str) -> CouponRedemption | None:
    return CouponRedemption.objects.filter(coupon_id=coupon_id, order_number=order_number,
                                           restored_at__isnull=True).first()


@service
def coupon_redeem(*, code: str, member: Member | int, order_number: str, channel: str, store_id: int | None,
                  lines: Sequence[CouponLine], actor=None, partner: str = "",
                  at: datetime | None = None, quote: CouponQuote | None = None) -> CouponRedemption:
    """Use the coupon on an order, online or scanned at a store till (核销).

    One conditional ``UPDATE … WHERE status = 'issued'`` takes the coupon (its row
    lock is the only one held); zero rows means another till got there first.
    Calling again for the same order returns the first redemption.  Queues a
    ``members.coupon_redeemed`` outbox message.  Raises what
    :func:`coupon_evaluate` raises, and invalid_reference / invalid_channel.

    ``quote``: the coupon as the sale was priced with it (``coupon_evaluate`` on these ``lines``);
    the redemption records it as it is, so the order and the redemption agree to the fen.
    """
    at = at or timezone.now()
    _check_reference(order_number, channel)
    clean = _check_lines(lines)
    coupon = _coupon_by_code(code)
    member = member_get(member)
    if coupon.status == IssuedCoupon.Status.REDEEMED and coupon.member_id == member.pk:
        first = _redemption_active(coupon.pk, order_number)
        if first is not None:
            return first
    _check_usable(coupon, member, at)
    if quote is None or quote.code != coupon.code:
        quote = _quote(coupon, channel=channel, store_id=store_id, lines=clean)
    taken = IssuedCoupon.objects.filter(
        pk=coupon.pk, status=IssuedCoupon.Status.ISSUED, member_id=member.pk, valid_until__gt=at,
    ).update(status=IssuedCoupon.Status.REDEEMED, updated_at=timezone.now())
    if taken != 1:
        # Lost the race (or the coupon changed under us): report what happened now.
        first = _redemption_active(coupon.pk, order_number)
        if first is not None:
            return first
        coupon.refresh_from_db()
        _check_usable(coupon, member, at)
        raise CouponUsed(field="code")
    redemption = CouponRedemption.objects.create(
        coupon=coupon, member=member, order_number=order_number, channel=channel, store_id=store_id,
        eligible_amount=quote.eligible_amount, discount=quote.discount, ecommerce_amount=quote.ecommerce_amount,
        store_amount=quote.store_amount, actor=_user(actor), partner=partner[:60], redeemed_at=at)
    CouponEvent.objects.create(coupon=coupon, kind=CouponEvent.Kind.REDEEMED, at=at, channel=channel,
                               store_id=store_id, actor=_user(actor), partner=partner[:60],
                               order_number=order_number)
    outbox_emit(topic=TOPIC_REDEEMED, key=f"order:{order_number}",
                payload={"code": coupon.code, "order_number": order_number, "channel": channel,
                         "store_id": store_id, "discount": quote.discount,
                         "ecommerce_amount": quote.ecommerce_amount, "store_amount": quote.store_amount})
    return redemption


@service
def coupon_restore(*, order_number: str, actor=None, store_id: int | None = None, partner: str = "",
                   at: datetime | None = None) -> list[IssuedCoupon]:
    """Give back the coupons an order used, after a *full* return (see the module notes
    for partial returns).

    Locks the order's redeemed coupons in id order, closes their active
    redemptions, and sets each coupon back to issued while it is within its
    validity (expired after).  Idempotent: an order with no active redemption
    restores nothing.  Queues one ``members.coupon_restored`` message.
    """
    at = at or timezone.now()
    if not isinstance(order_number, str) or not order_number.strip():
        raise InvalidReference(field="order_number")
    coupons = list(
        IssuedCoupon.objects.filter(redemptions__order_number=order_number, redemptions__restored_at__isnull=True)
        .order_by("pk").select_for_update(of=("self",))
    )
    if not coupons:
        return []
    CouponRedemption.objects.filter(coupon__in=coupons, order_number=order_number,
                                    restored_at__isnull=True).update(restored_at=at)
    events = []
    now = timezone.now()
    for coupon in coupons:
        coupon.updated_at = now
        coupon.status = IssuedCoupon.Status.ISSUED if at < coupon.valid_until else IssuedCoupon.Status.EXPIRED
        events.append(CouponEvent(coupon=coupon, kind=CouponEvent.Kind.RESTORED, at=at, store_id=store_id,
                                  actor=_user(actor), partner=partner[:60], order_number=order_number))
        if coupon.status == IssuedCoupon.Status.EXPIRED:
            events.append(CouponEvent(coupon=coupon, kind=CouponEvent.Kind.EXPIRED, at=at,
                                      order_number=order_number, note="validity ended before the return"))
    IssuedCoupon.objects.bulk_update(coupons, ["status", "updated_at"])
    CouponEvent.objects.bulk_create(events)
    outbox_emit(topic=TOPIC_RESTORED, key=f"order:{order_number}",
                payload={"order_number": order_number, "codes": [c.code for c in coupons],
                         "statuses": [c.status for c in coupons]})
    return coupons


# --- expiry ----------------------------------------------------------------------------------


@service
def _expire_batch(*, at: datetime, batch_size: int) -> int:
    coupons = list(
        IssuedCoupon.objects.filter(status=IssuedCoupon.Status.ISSUED, valid_until__lte=at)
        .order_by("pk").select_for_update(skip_locked=True, of=("self",))[:batch_size]
    )
    if not coupons:
        return 0
    IssuedCoupon.objects.filter(pk__in=[c.pk for c in coupons], status=IssuedCoupon.Status.ISSUED).update(
        status=IssuedCoupon.Status.EXPIRED, updated_at=timezone.now())
    CouponEvent.objects.bulk_create([CouponEvent(coupon=c, kind=CouponEvent.Kind.EXPIRED, at=at) for c in coupons])
    return len(coupons)


def coupons_expire(*, at: datetime | None = None, batch_size: int = 1000) -> int:
    """Mark issued coupons past their validity as expired (beat).  Each batch commits on its
    own and skips rows another run holds, so overlapping runs expire each coupon once."""
    at = at or timezone.now()
    done = 0
    while True:
        count = _expire_batch(at=at, batch_size=batch_size)
        done += count
        if count < batch_size:
            return done


# --- campaigns -------------------------------------------------------------------------------


def campaign_segment(segment: dict[str, Any]) -> QuerySet[Member]:
    """The members a segment selects (merged members never receive anything).  Raises invalid_segment."""
    if not isinstance(segment, dict):
        raise InvalidSegment()
    try:
        qs = Member.objects.filter(merged_into__isnull=True).filter(**segment)
        str(qs.query)  # builds the SQL: an unknown field or lookup fails here, not in the task
    except (FieldError, ValidationError, ValueError, TypeError) as exc:
        raise InvalidSegment(params={"error": str(exc)[:200]})
    return qs


@service
def coupon_campaign_create(*, template: CouponTemplate | int, name: str, segment: dict[str, Any] | None = None,
                           batch_size: int = 500, actor=None) -> CouponCampaign:
    """Draft a bulk issue of ``template`` to the members ``segment`` selects (Member lookups,
    e.g. ``{"tier__code": "gold"}`` or ``{"registration_store__city__code": "HZ"}``)."""
    template = _template_resolve(template)
    segment = segment or {}
    campaign_segment(segment)
    if not name or not name.strip():
        raise InvalidInput(message="A campaign needs a name.", code="invalid_name", field="name")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 10000:
        raise InvalidInput(message="Batch size must be between 1 and 10000.", code="invalid_batch_size",
                           field="batch_size")
    return CouponCampaign.objects.create(template=template, name=name.strip()[:100], segment=segment,
                                         batch_size=batch_size, created_by=_user(actor))


def _campaign_begin(campaign: CouponCampaign, at: datetime) -> None:
    campaign.status = CouponCampaign.Status.RUNNING
    campaign.started_at = at
    campaign.heartbeat_at = at
    campaign.total = campaign_segment(campaign.segment).count()


@service
def coupon_campaign_start(*, campaign_id: int, actor=None) -> CouponCampaign:
    """Mark a draft campaign as issuing and queue its task (through the outbox, after commit).

    A running campaign is queued again (the run resumes from its cursor).
    Raises campaign_not_runnable when it is done or cancelled.
    """
    campaign = CouponCampaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise CampaignNotRunnable(message="No such campaign.", code="campaign_not_found")
    if campaign.status in (CouponCampaign.Status.DONE, CouponCampaign.Status.CANCELLED):
        raise CampaignNotRunnable(params={"status": campaign.status})
    if campaign.status == CouponCampaign.Status.DRAFT:
        _campaign_begin(campaign, timezone.now())
        campaign.save()
    outbox_emit(topic=TOPIC_CAMPAIGN_STARTED, key=f"campaign:{campaign.pk}", payload={"campaign_id": campaign.pk})
    return campaign


@service
def coupon_campaign_cancel(*, campaign_id: int, actor=None) -> CouponCampaign:
    """Stop a campaign: coupons already issued stay; no further batch runs."""
    campaign = CouponCampaign.objects.select_for_update().get(pk=campaign_id)
    if campaign.status == CouponCampaign.Status.DONE:
        raise CampaignNotRunnable(params={"status": campaign.status})
    campaign.status = CouponCampaign.Status.CANCELLED
    campaign.finished_at = timezone.now()
    campaign.save(update_fields=["status", "finished_at"])
    return campaign


def _campaign_finish(campaign: CouponCampaign, at: datetime, note: str = "") -> bool:
    campaign.status = CouponCampaign.Status.DONE
    campaign.finished_at = at
    campaign.heartbeat_at = at
    if note:
        campaign.note = note
    campaign.save()
    return False


@service
def _campaign_batch(*, campaign_id: int) -> bool:
    """Issue one batch; returns whether there may be more.

    Locks the campaign row (so concurrent runs take turns and each member is
    handled once), then the template row (total limit), then quota rows.  The
    cursor moves in the same transaction as the coupons it covers, so a crash
    loses nothing and repeats nothing.
    """
    campaign = CouponCampaign.objects.select_for_update().filter(pk=campaign_id).first()
    if campaign is None or campaign.status not in (CouponCampaign.Status.DRAFT, CouponCampaign.Status.RUNNING):
        return False
    at = timezone.now()
    if campaign.status == CouponCampaign.Status.DRAFT:
        _campaign_begin(campaign, at)
    template = CouponTemplate.objects.select_for_update().get(pk=campaign.template_id)
    if not template.is_active:
        return _campaign_finish(campaign, at, "template no longer active")
    valid_from, valid_until = _validity_window(template, at)
    if at >= valid_until:
        return _campaign_finish(campaign, at, "template validity has ended")
    remaining = None if template.total_limit is None else template.total_limit - template.issued_count
    if remaining is not None and remaining <= 0:
        return _campaign_finish(campaign, at, "total limit reached")
    ids = list(campaign_segment(campaign.segment).filter(pk__gt=campaign.cursor).order_by("pk")
               .values_list("pk", flat=True)[:campaign.batch_size])
    if not ids:
        return _campaign_finish(campaign, at)
    if remaining is not None:
        ids = ids[:remaining]
    already = set(IssuedCoupon.objects.filter(campaign=campaign, issued_to_id__in=ids)
                  .values_list("issued_to_id", flat=True))
    accepted = _quota_take(template, [i for i in ids if i not in already])
    if accepted:
        _template_take(template, len(accepted))
        coupons = IssuedCoupon.objects.bulk_create([
            IssuedCoupon(template=template, code=code, member_id=member_id, issued_to_id=member_id,
                         source=IssuedCoupon.Source.CAMPAIGN, campaign=campaign, valid_from=valid_from,
                         valid_until=valid_until, issued_at=at)
            for member_id, code in zip(accepted, _codes_new(len(accepted)))
        ])
        CouponEvent.objects.bulk_create([
            CouponEvent(coupon=c, kind=CouponEvent.Kind.ISSUED, at=at, actor_id=campaign.created_by_id,
                        note=f"campaign {campaign.pk}") for c in coupons
        ])
    campaign.cursor = ids[-1]
    campaign.processed += len(ids)
    campaign.issued += len(accepted)
    campaign.skipped += len(ids) - len(accepted)
    campaign.heartbeat_at = at
    campaign.save()
    return True


def coupon_campaign_run(*, campaign_id: int, max_batches: int | None = None) -> CouponCampaign:
    """Issue a campaign batch by batch (each its own transaction) until it is done.

    Safe to run twice at once or again after a crash: see :func:`_campaign_batch`.
    ``max_batches`` stops early (the campaign stays running and resumes later).
    """
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        if not _campaign_batch(campaign_id=campaign_id):
            break
    return CouponCampaign.objects.get(pk=campaign_id)


def coupon_campaigns_stalled(*, idle_for: timedelta = timedelta(minutes=5)) -> list[int]:
    """Running campaigns with no batch for a while (their worker died): to be queued again."""
    cutoff = timezone.now() - idle_for
    return list(CouponCampaign.objects.filter(status=CouponCampaign.Status.RUNNING)
                .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=cutoff))
                .values_list("pk", flat=True))


# --- member merge ----------------------------------------------------------------------------


@merge_hook("coupons")
def coupons_merge(source: Member, target: Member) -> dict[str, int]:
    """Move the merged member's coupons (whatever their status) and limit counters to the survivor.

    Runs inside the merge's transaction.  ``issued_to`` keeps the original
    recipient, so campaign uniqueness and history are untouched; each moved
    coupon gets a ``merged`` event.
    """
    at = timezone.now()
    moved = list(IssuedCoupon.objects.filter(member=source).order_by("pk").select_for_update(of=("self",))
                 .values_list("pk", flat=True))
    if moved:
        IssuedCoupon.objects.filter(pk__in=moved).update(member=target, updated_at=timezone.now())
        CouponEvent.objects.bulk_create([
            CouponEvent(coupon_id=pk, kind=CouponEvent.Kind.MERGED, at=at, from_member=source, to_member=target)
            for pk in moved
        ])
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {QUOTA_TABLE} AS q (template_id, member_id, received) "
            f"SELECT template_id, %s, received FROM {QUOTA_TABLE} WHERE member_id = %s ORDER BY template_id "
            "ON CONFLICT (template_id, member_id) DO UPDATE SET received = q.received + EXCLUDED.received",
            [target.pk, source.pk],
        )
        cur.execute(f"UPDATE {QUOTA_TABLE} SET received = 0 WHERE member_id = %s", [source.pk])
    return {"coupons": len(moved)}
