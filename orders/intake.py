"""An online order placed with its customer: who they are, their coupon, their guide, their points and wallet.

``POST /api/v1/orders/`` names the customer the way the partner knows them (our
member id, their phone, or the WeChat identity of the mini-program session),
may carry a coupon code, a guide code or the scene of a guide's QR code, and
may pay part of the order from the member's points or wallet at once.  This
module turns that into one transaction: the member is found (or registered,
when the caller may register members), bound to the guide under the region's
rule, the order is placed and priced once (``orders.services.order_place``
redeems the coupon with the priced quote and attributes the order to the bound
guide), and the points and wallet tenders are captured on it.  Any error rolls
all of it back: no member, binding, order or payment is left behind.

Spending the wallet needs the customer's proof (a dynamic member code, or the
member named by the WeChat identity of their own mini-program session); a phone
number or a member id only says who is buying.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from members import selectors as member_read
from members.exceptions import MemberCodeMismatch, MemberNotFound, NotAGuide
from members.models import GuideBinding, IdentityKind, Member, RegistrationChannel
from members.services import guides, members
from members.services.members import IdentityRef
from o2o.db import service
from o2o.money import ZERO, money
from orders import services
from orders.exceptions import MemberRequired, WalletProofRequired
from orders.models import Channel
from orders.services import PlaceResult, TenderIn

REGISTRATION_CHANNEL = {Channel.WEB: RegistrationChannel.WEB, Channel.MINI_PROGRAM: RegistrationChannel.MINI_PROGRAM}


@dataclass(frozen=True)
class MemberRef:
    """How the caller names the customer: exactly one of ``id``, or a phone and/or a WeChat identity."""

    id: int | None = None
    phone: str = ""
    wechat_openid: str = ""
    wechat_appid: str = ""
    wechat_unionid: str = ""
    name: str = ""

    @property
    def by_wechat(self) -> bool:
        return bool(self.wechat_openid or self.wechat_unionid)

    def identities(self) -> list[IdentityRef]:
        refs = []
        if self.wechat_openid:
            refs.append(IdentityRef(kind=IdentityKind.WECHAT_OPENID, value=self.wechat_openid,
                                    namespace=self.wechat_appid))
        if self.wechat_unionid:
            refs.append(IdentityRef(kind=IdentityKind.WECHAT_UNIONID, value=self.wechat_unionid))
        return refs


@dataclass(frozen=True)
class CustomerIn:
    member: MemberRef | None = None
    # The member a dynamic member code proved (taken by the caller, outside the transaction).
    proved_member_id: int | None = None
    may_register: bool = False
    coupon_code: str = ""
    guide_code: str = ""
    scene: str = ""
    points: int = 0
    wallet: Decimal = ZERO


def _by_identity(ref: MemberRef) -> Member | None:
    if ref.wechat_unionid:
        found = member_read.member_by_identity(kind=IdentityKind.WECHAT_UNIONID, value=ref.wechat_unionid)
        if found is not None:
            return found
    if ref.wechat_openid:
        return member_read.member_by_identity(kind=IdentityKind.WECHAT_OPENID, value=ref.wechat_openid,
                                              namespace=ref.wechat_appid)
    return None


def member_for_order(ref: MemberRef, *, may_register: bool, channel: str, partner: str) -> Member:
    """The member ``ref`` names; an unknown phone (with any WeChat identity given beside it) is
    registered when ``may_register``.  Raises member_not_found, invalid_phone, identity_taken."""
    if ref.id is not None:
        return member_read.member_get(ref.id)
    found = _by_identity(ref) if ref.by_wechat else None
    if found is not None:
        return found
    if not ref.phone:
        raise MemberNotFound(field="member", message=MemberNotFound.default_message)
    found = member_read.member_by_phone(ref.phone)
    if not may_register:
        if found is None:
            raise MemberNotFound(field="member", params={"phone": ref.phone})
        return found
    # Registering is idempotent on the phone and links the WeChat identity to the member either way.
    return members.member_register(phone=ref.phone, name=ref.name, identities=ref.identities(), partner=partner,
                                   channel=REGISTRATION_CHANNEL.get(channel, RegistrationChannel.PARTNER))


def _guide_named(customer: CustomerIn):
    """The active guide a guide code or QR scene names (not_a_guide on the field that named it)."""
    if not (customer.guide_code or customer.scene):
        return None
    try:
        return guides.guide_by_code(guides.guide_code_normalize(customer.scene or customer.guide_code))
    except NotAGuide as exc:
        raise NotAGuide(field="scene" if customer.scene else "guide_code", params=exc.params) from None


@service
def order_place_for_customer(*, customer: CustomerIn, channel: str, partner: str = "", actor=None,
                             customer_phone: str = "", **place) -> PlaceResult:
    """Place an online order for its customer (module notes).  ``place``: the rest of ``order_place``'s
    arguments.  Locks: the member row (registration, binding), then what ``order_place`` and the
    tenders lock.  Queues: member.registered, members.guide_bound, order.created, payment.captured.
    Raises what order_place raises, and member_not_found, member_required, member_code_mismatch,
    not_a_guide, wallet_proof_required, points_cap_exceeded, points_insufficient, wallet_insufficient.
    """
    member = None
    if customer.member is not None:
        member = member_for_order(customer.member, may_register=customer.may_register, channel=channel,
                                  partner=partner)
    if customer.proved_member_id is not None:
        proved = member_read.member_get(customer.proved_member_id)
        if member is not None and member.pk != proved.pk:
            raise MemberCodeMismatch(field="member_code")
        member = proved
    wallet = money(customer.wallet)
    if (customer.points or wallet > 0 or customer.coupon_code) and member is None:
        raise MemberRequired(field="member")
    if wallet > 0 and customer.proved_member_id is None and not (customer.member and customer.member.by_wechat):
        raise WalletProofRequired(field="wallet")
    guide = _guide_named(customer)
    if guide is not None and member is not None:
        source = GuideBinding.Source.QR if customer.scene else GuideBinding.Source.API
        guides.guide_bind(member=member, guide_code=guide.guide_code, source=source)
    result = services.order_place(
        # Points or wallet paying at once confirm the order's reservations: those must exist by then.
        stock_late=not (customer.points or wallet > 0),
        channel=channel, partner=partner, actor=actor, member=member, coupon_code=customer.coupon_code,
        customer_phone=customer_phone or (member.phone if member is not None else ""),
        # Without a member there is no binding to follow: the scanned guide gets the order.
        chosen_guide_id=guide.pk if guide is not None and member is None else None, **place)
    tenders = []
    if customer.points:
        tenders.append(TenderIn(tender="points", amount=member_read.points_value(customer.points)))
    if wallet > 0:
        tenders.append(TenderIn(tender="wallet", amount=wallet))
    if result.created and tenders:
        services.order_pay_member_tenders(order=result.order, tenders=tenders, actor=actor)
    return result
