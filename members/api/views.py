"""Members over the API: register, look up by phone or WeChat id, balances, coupons, guide binding.

One member base serves every channel, so any caller holding ``members:read``
may look a member up (that is the point of the unified member base); writes
need ``members:write``.  Balances, tiers and coupon values are read-only: they
move only through the members services (points on paid orders, wallet
recharges at the counter, coupon redemption at checkout).
"""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import generics, serializers
from rest_framework.response import Response

from catalog.models import Sku
from members import selectors as member_read
from members.api.serializers import (
    CouponClaimIn,
    CouponOut,
    CouponQuoteOut,
    CouponShareIn,
    CouponTemplateOut,
    CouponValidateIn,
    GuideBindIn,
    GuideBindingOut,
    MemberCodeOut,
    MemberOut,
    MemberRegisterIn,
    PointsEntryOut,
)
from members.codes import member_code_mint
from members.exceptions import MemberNotFound
from members.models import EntryKind, IdentityKind, IssuedCoupon, Member, PointsEntry, RegistrationChannel
from members.models.coupons import CouponTemplate
from members.services import coupons, guides, members
from members.services.members import IdentityRef
from o2o.api import LIST_ERRORS, READ_ERRORS, WRITE_ERRORS, Text, api_doc
from members.privacy import members_related, personal_data_access_log
from o2o.apiauth import MEMBERS_PII, MEMBERS_READ, MEMBERS_WRITE, PARTNER, Principal, principal_of
from o2o.idempotency import idempotent
from o2o.money import money

TAGS = ["members"]
READ, WRITE = {"GET": MEMBERS_READ}, {"GET": MEMBERS_READ, "POST": MEMBERS_WRITE}
REGISTRATION_CHANNEL = {"web": RegistrationChannel.WEB, "mini_program": RegistrationChannel.MINI_PROGRAM,
                        "marketplace": RegistrationChannel.PARTNER}

MEMBER = {"id": 7, "phone": "+8613800138000", "name": "Li Lei", "tier": "gold",
          "registration_channel": "mini_program",
          "points_available": 1200, "points_frozen": 80, "wallet_principal": "500.00",
          "wallet_bonus": "50.00",
          "wallet_total": "550.00", "currency": "CNY",
          "identities": [{"kind": "wechat_openid", "namespace": "wx1234", "value": "oAbC123"}],
          "created_at": "2026-05-01T10:00:00+08:00"}
POINTS_ENTRY = {"id": 88, "kind": "reverse", "available_delta": 0, "frozen_delta": -249, "debt_delta": 0,
                "written_off": 0, "order_number": "PS2612040000001", "reference": "RT2612040000003",
                "reason": "exchange RT2612040000003: new sale PS2612040000004",
                "created_at": "2026-12-04T15:10:00+08:00"}
COUPON = {"id": 31, "code": "K7Q2M9XW4P", "template": 4, "template_code": "NEW50", "name": "50 off 299",
          "status": "issued", "source": "claim", "valid_from": "2026-11-23T00:00:00+08:00",
          "valid_until": "2026-12-23T00:00:00+08:00", "issued_at": "2026-11-23T18:00:00+08:00"}


def ok(name, value, status=200):
    return OpenApiExample(name, value=value, response_only=True, status_codes=[str(status)])


def _namespace(principal: Principal) -> str:
    """Where a partner's own customer ids live: its partner code, else its channel."""
    return principal.partner or principal.channel


def _member(pk) -> Member:
    return Member.objects.select_related("tier").prefetch_related("identities").get(
        pk=member_read.member_get(int(pk)).pk)


class PrincipalMixin:
    @property
    def principal(self) -> Principal:
        return principal_of(self.request)

    def member_visible(self, pk) -> Member:
        """The member, when the caller may read them: a partner key only members related to it
        (``members.privacy.members_related``); anyone else's is 404, like an unknown id."""
        member = member_read.member_get(int(pk))
        p = self.principal
        if p is not None and p.is_partner and not members_related(
                channel=p.channel, partner=p.partner).filter(pk=member.pk).exists():
            raise MemberNotFound(params={"member_id": int(pk)})
        return member

    def member_body(self, pk) -> dict:
        """The member's output: masked without members:pii; each unmasked read is logged."""
        p = self.principal
        pii = p is not None and MEMBERS_PII in p.scopes
        member = _member(pk)
        if pii:
            reader = f"key {p.key.prefix} {p.key.name}" if p.key is not None else \
                f"user {getattr(p.user, 'username', '')}"
            personal_data_access_log(member_ids=[member.pk], reader=reader, user=p.actor,
                                     path=f"{self.request.method} {self.request.path}")
        return MemberOut(member, context={"pii": pii}).data


class MemberRegister(PrincipalMixin, generics.GenericAPIView):
    required_scopes = {"POST": MEMBERS_WRITE}
    serializer_class = MemberRegisterIn

    @api_doc(summary="Register a member (or find the one with this number)", tags=TAGS,
             request=MemberRegisterIn,
             idempotent=True, responses={201: MemberOut, 200: MemberOut}, errors=WRITE_ERRORS,
             description="Idempotent on the mobile number: an existing member is returned (200) and "
                         "the given identities are linked to them.",
             error_examples={400: [("invalid_phone", "Not a valid mobile number.")],
                             409: [("identity_taken", "This identity is already linked to another member.")]},
             examples=[OpenApiExample("register", request_only=True, value={
                 "phone": "13800138000", "name": "Li Lei", "wechat_openid": "oAbC123",
                 "wechat_appid": "wx1234"}),
                 ok("registered", MEMBER, 201), ok("already a member", MEMBER)])
    @idempotent
    def post(self, request):
        data = MemberRegisterIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        p = self.principal
        refs = []
        if v["wechat_openid"]:
            refs.append(IdentityRef(kind=IdentityKind.WECHAT_OPENID, value=v["wechat_openid"],
                                    namespace=v["wechat_appid"]))
        if v["wechat_unionid"]:
            refs.append(IdentityRef(kind=IdentityKind.WECHAT_UNIONID, value=v["wechat_unionid"]))
        if v["partner_customer_id"]:
            refs.append(IdentityRef(kind=IdentityKind.PARTNER, value=v["partner_customer_id"],
                                    namespace=_namespace(p)))
        existed = Member.objects.filter(phone=member_read.phone_normalize(v["phone"])).exists()
        store_id = None
        if not p.is_partner and p.store_ids is not None and len(p.store_ids) == 1:
            store_id = next(iter(p.store_ids))
        member = members.member_register(
            phone=v["phone"], name=v["name"], identities=refs, store_id=store_id, partner=p.partner,
            channel=REGISTRATION_CHANNEL.get(p.channel, RegistrationChannel.PARTNER) if p.is_partner
            else RegistrationChannel.POS)
        return Response(self.member_body(member.pk), status=200 if existed else 201)


class MemberLookupQuery(serializers.Serializer):
    phone = Text(max_length=30, required=False)
    wechat_openid = Text(max_length=128, required=False)
    wechat_appid = Text(max_length=64, required=False, allow_blank=True)
    wechat_unionid = Text(max_length=128, required=False)
    partner_customer_id = Text(max_length=128, required=False)


class MemberLookup(PrincipalMixin, generics.GenericAPIView):
    required_scopes = READ
    serializer_class = MemberOut

    @api_doc(summary="Find a member by phone, WeChat id or your customer id", tags=TAGS,
             responses={200: MemberOut}, errors=(400, 401, 403, 404, 429),
             parameters=[OpenApiParameter("phone", str, required=False),
                         OpenApiParameter("wechat_openid", str, required=False),
                         OpenApiParameter("wechat_appid", str, required=False,
                                          description="The app of the openid."),
                         OpenApiParameter("wechat_unionid", str, required=False),
                         OpenApiParameter("partner_customer_id", str, required=False)],
             error_examples={404: [("member_not_found", "No such member.")],
                             400: [("lookup_required", "Give one of phone, wechat_openid, wechat_unionid or "
                                                       "partner_customer_id.")]},
             examples=[ok("member", MEMBER)])
    def get(self, request):
        query = MemberLookupQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        if q.get("phone"):
            found = member_read.member_by_phone(q["phone"])
        elif q.get("wechat_openid"):
            found = member_read.member_by_identity(kind=IdentityKind.WECHAT_OPENID, value=q["wechat_openid"],
                                                   namespace=q.get("wechat_appid", ""))
        elif q.get("wechat_unionid"):
            found = member_read.member_by_identity(kind=IdentityKind.WECHAT_UNIONID,
                                                   value=q["wechat_unionid"])
        elif q.get("partner_customer_id"):
            found = member_read.member_by_identity(kind=IdentityKind.PARTNER, value=q["partner_customer_id"],
                                                   namespace=_namespace(self.principal))
        else:
            raise serializers.ValidationError(
                {"phone": [_("Give one of phone, wechat_openid, wechat_unionid or partner_customer_id.")]},
                code="lookup_required")
        if found is None:
            raise MemberNotFound()
        return Response(self.member_body(self.member_visible(found.pk).pk))


class MemberDetail(PrincipalMixin, generics.GenericAPIView):
    required_scopes = READ
    serializer_class = MemberOut

    @api_doc(summary="Read a member and their balances", tags=TAGS, responses={200: MemberOut},
             errors=READ_ERRORS, error_examples={404: [("member_not_found", "No such member.")]},
             description="Points (available and frozen) and wallet (principal and bonus). A merged "
                         "duplicate's id answers with the member it was merged into.",
             examples=[ok("member", MEMBER)])
    def get(self, request, pk: int):
        return Response(self.member_body(self.member_visible(pk).pk))


class CouponFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=IssuedCoupon.Status.choices)

    class Meta:
        model = IssuedCoupon
        fields = ["status"]


class MemberCouponList(PrincipalMixin, generics.ListAPIView):
    required_scopes = READ
    serializer_class = CouponOut
    filterset_class = CouponFilter
    queryset = IssuedCoupon.objects.none()
    ordering = "-id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return IssuedCoupon.objects.none()
        member = self.member_visible(self.kwargs["pk"])
        return IssuedCoupon.objects.filter(member=member).select_related("template")

    @api_doc(summary="A member's coupons", tags=TAGS, responses={200: CouponOut(many=True)},
             errors=(*LIST_ERRORS, 404), error_examples={404: [("member_not_found", "No such member.")]},
             examples=[ok("coupon", COUPON)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class PointsEntryFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=EntryKind.choices)
    order_number = django_filters.CharFilter(max_length=30)

    class Meta:
        model = PointsEntry
        fields = ["kind", "order_number"]


class MemberPointsList(PrincipalMixin, generics.ListAPIView):
    required_scopes = READ
    serializer_class = PointsEntryOut
    filterset_class = PointsEntryFilter
    queryset = PointsEntry.objects.none()
    ordering = "-id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PointsEntry.objects.none()
        return member_read.points_history(self.member_visible(self.kwargs["pk"]).pk)

    @api_doc(summary="A member's points history", tags=TAGS, responses={200: PointsEntryOut(many=True)},
             errors=(*LIST_ERRORS, 404), error_examples={404: [("member_not_found", "No such member.")]},
             description="Every change of the member's points, newest first: earned (frozen during the return "
                         "window), unfrozen, redeemed, restored, reversed by a return (``reference`` names the "
                         "return; an exchange's ``reason`` names the new sale, whose own earning is listed too), "
                         "expired, adjusted, merged.",
             examples=[ok("points entry", POINTS_ENTRY)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CouponClaim(PrincipalMixin, generics.GenericAPIView):
    required_scopes = {"POST": MEMBERS_WRITE}
    principal_kinds = {"POST": {PARTNER}}
    serializer_class = CouponClaimIn

    @api_doc(summary="Claim a coupon for a member (online)", tags=TAGS, request=CouponClaimIn,
             idempotent=True,
             responses={201: CouponOut}, errors=(*WRITE_ERRORS, 404),
             error_examples={404: [("member_not_found", "No such member."),
                                   ("coupon_template_not_found", "No such coupon template.")],
                             409: [("coupon_limit_reached", "No more of these coupons can be issued.")],
                             422: [("coupon_not_issuable", "This coupon cannot be claimed online.")]},
             examples=[OpenApiExample("claim", request_only=True, value={"template": 4}),
                       ok("claimed", COUPON, 201)])
    @idempotent
    def post(self, request, pk: int):
        data = CouponClaimIn(data=request.data)
        data.is_valid(raise_exception=True)
        p = self.principal
        member = self.member_visible(pk)
        coupon = coupons.coupon_claim(template=data.validated_data["template"], member=member,
                                      channel=p.channel,
                                      partner=p.partner)
        return Response(CouponOut(IssuedCoupon.objects.select_related("template").get(pk=coupon.pk)).data,
                        status=201)


class CouponTemplateList(generics.ListAPIView):
    required_scopes = READ
    serializer_class = CouponTemplateOut
    queryset = CouponTemplate.objects.filter(is_active=True, claimable_online=True)
    ordering = "id"

    @api_doc(summary="Coupons members can claim online", tags=TAGS,
             responses={200: CouponTemplateOut(many=True)},
             errors=LIST_ERRORS, examples=[ok("template", {
                 "id": 4, "code": "NEW50", "name": "50 off 299", "description": "", "kind": "threshold",
                 "amount": "50.00", "percent": None, "max_discount": None, "threshold": "299.00",
                 "validity": "days", "valid_from": None, "valid_until": None, "valid_days": 30,
                 "per_member_limit": 1})])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CouponValidate(PrincipalMixin, generics.GenericAPIView):
    required_scopes = {"POST": MEMBERS_READ}
    serializer_class = CouponValidateIn

    @api_doc(summary="What a coupon takes off a basket", tags=TAGS, request=CouponValidateIn,
             responses={200: CouponQuoteOut}, errors=(400, 401, 403, 404, 409, 413, 415, 422, 429),
             description="Changes nothing (no Idempotency-Key). The basket is priced at list prices.",
             error_examples={404: [("coupon_not_found", "No coupon with this code.")],
                             409: [("coupon_used", "This coupon was already used.")],
                             422: [("coupon_not_owned", "This coupon belongs to another member."),
                                   ("coupon_threshold_not_met",
                                    "The basket does not reach the minimum spend.")]},
             examples=[OpenApiExample("basket", request_only=True, value={
                 "code": "K7Q2M9XW4P", "member": 7, "lines": [{"sku": 12, "qty": 3}]}),
                 ok("quote", {"code": "K7Q2M9XW4P", "discount": "50.00", "eligible_amount": "387.00",
                              "line_discounts": ["50.00"], "currency": "CNY"})])
    def post(self, request):
        data = CouponValidateIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        p = self.principal
        skus = {s.id: s for s in Sku.objects.filter(id__in=[line["sku"] for line in v["lines"]])
                .select_related("product")}
        missing = [line["sku"] for line in v["lines"] if line["sku"] not in skus]
        if missing:
            raise serializers.ValidationError({"lines": [_("Unknown SKU.")]})
        basket = [(line["sku"], skus[line["sku"]].product.category_id,
                   money(skus[line["sku"]].list_price * line["qty"])) for line in v["lines"]]
        quote = coupons.coupon_evaluate(code=v["code"], member=member_read.member_get(v["member"]),
                                        channel=p.channel or "pos", store_id=v["store"], lines=basket)
        return Response(CouponQuoteOut({"code": quote.code, "discount": quote.discount,
                                        "eligible_amount": quote.eligible_amount,
                                        "line_discounts": list(quote.line_discounts),
                                        "currency": quote.currency}).data)


class GuideBind(PrincipalMixin, generics.GenericAPIView):
    required_scopes = {"POST": MEMBERS_WRITE}
    serializer_class = GuideBindIn

    @api_doc(summary="Bind a member to a shop assistant (guide)", tags=TAGS, request=GuideBindIn,
             idempotent=True, responses={200: GuideBindingOut}, errors=(*WRITE_ERRORS, 404),
             description="E.g. the member scanned the guide's QR code in the mini-program. Under the "
                         "region's rule a standing binding may win; the answer is the binding in force "
                         "afterwards.",
             error_examples={404: [("member_not_found", "No such member.")],
                             422: [("not_a_guide", "No active shop assistant with this guide code.")]},
             examples=[OpenApiExample("scan", request_only=True,
                                      value={"guide_code": "G0042", "source": "qr"}),
                       ok("binding", {"id": 12, "member": 7, "guide": 42, "guide_code": "G0042", "store": 2,
                                      "source": "qr", "valid_from": "2026-11-23T18:00:00+08:00",
                                      "valid_to": "2027-11-23T18:00:00+08:00"})])
    @idempotent
    def post(self, request, pk: int):
        data = GuideBindIn(data=request.data)
        data.is_valid(raise_exception=True)
        member = self.member_visible(pk)
        binding = guides.guide_bind(member=member, **data.validated_data)
        return Response(GuideBindingOut(binding).data)


class MemberCodeMint(PrincipalMixin, generics.GenericAPIView):
    required_scopes = {"POST": MEMBERS_WRITE}
    principal_kinds = {"POST": {PARTNER}}
    serializer_class = MemberCodeOut

    @api_doc(summary="Mint the member's dynamic member code", tags=TAGS, request=None,
             responses={201: MemberCodeOut}, errors=(401, 403, 404, 429),
             description="The member's app shows this code as a QR code at the till (or passes it with an "
                         "order as `member_code`): it proves the customer is present, which paying from the "
                         "wallet or with points needs. Signed, valid about a minute, taken once. Call it only "
                         "for the member signed in to your app.",
             error_examples={404: [("member_not_found", "No such member.")]},
             examples=[ok("code", {"code": "o2o:mc:7.Xy3kQ2:1vZ9aB:c2lnbmF0dXJl", "member": 7,
                                   "expires_at": "2026-12-04T15:11:00+08:00"}, 201)])
    def post(self, request, pk: int):
        minted = member_code_mint(member=self.member_visible(pk).pk)
        return Response(MemberCodeOut({"code": minted.code, "member": minted.member_id,
                                       "expires_at": minted.expires_at}).data, status=201)


class CouponShare(PrincipalMixin, generics.GenericAPIView):
    required_scopes = {"POST": MEMBERS_WRITE}
    principal_kinds = {"POST": {PARTNER}}
    serializer_class = CouponShareIn

    @api_doc(summary="Pass a coupon on to a friend", tags=TAGS, request=CouponShareIn, idempotent=True,
             responses={200: CouponOut}, errors=(*WRITE_ERRORS, 404),
             description="The member gives one of their unused coupons (of a shareable kind) to another member; "
                         "a friend named by phone is registered if new. The coupon keeps its code and validity; "
                         "it counts toward the friend's limit of that coupon.",
             error_examples={404: [("member_not_found", "No such member."),
                                   ("coupon_not_found", "No coupon with this code.")],
                             409: [("coupon_used", "This coupon was already used."),
                                   ("coupon_limit_reached", "No more of these coupons can be issued.")],
                             422: [("coupon_not_owned", "This coupon belongs to another member."),
                                   ("coupon_not_shareable", "This coupon cannot be shared.")]},
             examples=[OpenApiExample("share", request_only=True, value={"code": "K7Q2M9XW4P",
                                                                         "to_phone": "13900139000"}),
                       ok("shared", {**COUPON, "source": "claim"})])
    @idempotent
    def post(self, request, pk: int):
        data = CouponShareIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        p = self.principal
        giver = self.member_visible(pk)
        coupon = coupons.coupon_share_to(code=v["code"], from_member=giver, to_member=v["to_member"],
                                         to_phone=v["to_phone"], partner=p.partner,
                                         channel=REGISTRATION_CHANNEL.get(p.channel, RegistrationChannel.PARTNER))
        return Response(CouponOut(IssuedCoupon.objects.select_related("template").get(pk=coupon.pk)).data)
