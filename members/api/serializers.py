"""Member API serializers: inputs apart from outputs.  Balances, tiers and coupon values are
read-only; they change only through the members services."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from members.models import IssuedCoupon, Member, MemberIdentity, PointsEntry
from members.models.coupons import CouponTemplate
from members.models.guides import GuideBinding
from members.privacy import name_mask, phone_mask, value_mask
from o2o.api import MAX_ID, StrictInput, Text
from o2o.money import CURRENCY

MAX_QTY = 9999


class MemberRegisterIn(StrictInput, serializers.Serializer):
    phone = Text(max_length=30, help_text="Mobile number; normalised to E.164 (+86… when no country code).")
    name = Text(max_length=100, required=False, allow_blank=True, default="")
    wechat_openid = Text(max_length=128, required=False, allow_blank=True, default="")
    wechat_unionid = Text(max_length=128, required=False, allow_blank=True, default="")
    wechat_appid = Text(max_length=64, required=False, allow_blank=True, default="",
                        help_text="The app the openid belongs to.")
    partner_customer_id = Text(max_length=128, required=False, allow_blank=True, default="",
                               help_text="Your own id of this customer.")


class IdentityOut(serializers.ModelSerializer):
    class Meta:
        model = MemberIdentity
        fields = ["kind", "namespace", "value"]
        read_only_fields = fields


class MemberOut(serializers.ModelSerializer):
    """A member; phone, name and identity values are masked unless the context says ``pii``."""

    tier = serializers.CharField(source="tier.code", default=None, read_only=True, allow_null=True)
    wallet_total = serializers.SerializerMethodField()
    currency = serializers.SerializerMethodField()
    identities = IdentityOut(many=True, read_only=True)

    class Meta:
        model = Member
        fields = ["id", "phone", "name", "tier", "registration_channel", "points_available", "points_frozen",
                  "wallet_principal", "wallet_bonus", "wallet_total", "currency", "identities", "created_at"]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.context.get("pii"):
            # Without members:pii the partner sees enough to recognise the member, not to reach them.
            data["phone"], data["name"] = phone_mask(data["phone"]), name_mask(data["name"])
            data["identities"] = [{**i, "value": value_mask(i["value"])} for i in data["identities"]]
        return data

    def get_wallet_total(self, obj) -> str:
        return str(obj.wallet_principal + obj.wallet_bonus)

    def get_currency(self, obj) -> str:
        return CURRENCY


class CouponTemplateOut(serializers.ModelSerializer):
    class Meta:
        model = CouponTemplate
        fields = ["id", "code", "name", "description", "kind", "amount", "percent", "max_discount",
                  "threshold",
                  "validity", "valid_from", "valid_until", "valid_days", "per_member_limit"]
        read_only_fields = fields


class CouponOut(serializers.ModelSerializer):
    template_code = serializers.CharField(source="template.code", read_only=True)
    name = serializers.CharField(source="template.name", read_only=True)

    class Meta:
        model = IssuedCoupon
        fields = ["id", "code", "template", "template_code", "name", "status", "source", "valid_from",
                  "valid_until", "issued_at"]
        read_only_fields = fields


class PointsEntryOut(serializers.ModelSerializer):
    class Meta:
        model = PointsEntry
        fields = ["id", "kind", "available_delta", "frozen_delta", "debt_delta", "written_off", "order_number",
                  "reference", "reason", "created_at"]
        read_only_fields = fields


class CouponClaimIn(StrictInput, serializers.Serializer):
    template = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="A claimable template's id.")


class BasketLineIn(StrictInput, serializers.Serializer):
    sku = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    qty = serializers.IntegerField(min_value=1, max_value=MAX_QTY)


class CouponValidateIn(StrictInput, serializers.Serializer):
    code = Text(max_length=32)
    member = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    store = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True,
                                     default=None)
    lines = BasketLineIn(many=True, min_length=1, max_length=100,
                         help_text="The basket at list prices; the server prices it.")


class CouponQuoteOut(serializers.Serializer):
    code = serializers.CharField()
    discount = serializers.DecimalField(max_digits=12, decimal_places=2)
    eligible_amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    line_discounts = serializers.ListField(child=serializers.DecimalField(max_digits=12, decimal_places=2))
    currency = serializers.CharField()


class GuideBindIn(StrictInput, serializers.Serializer):
    guide_code = Text(max_length=20)
    source = serializers.ChoiceField(choices=[GuideBinding.Source.QR, GuideBinding.Source.API],
                                     default=GuideBinding.Source.API)


class GuideBindingOut(serializers.ModelSerializer):
    guide_code = serializers.CharField(source="guide.guide_code", read_only=True)

    class Meta:
        model = GuideBinding
        fields = ["id", "member", "guide", "guide_code", "store", "source", "valid_from", "valid_to"]
        read_only_fields = fields



class MemberCodeOut(serializers.Serializer):
    code = serializers.CharField(help_text="Show it as a QR code in the member's app; valid about a minute, "
                                           "taken once.")
    member = serializers.IntegerField()
    expires_at = serializers.DateTimeField()


class CouponShareIn(StrictInput, serializers.Serializer):
    code = Text(max_length=32, help_text="The coupon to pass on (one of this member's, unused, shareable).")
    to_member = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True,
                                         default=None, help_text="The friend's member id.")
    to_phone = Text(max_length=30, required=False, allow_blank=True, default="",
                    help_text="Or the friend's mobile number: registered as a member if new.")

    def validate(self, attrs):
        if (attrs["to_member"] is None) == (not attrs["to_phone"]):
            raise serializers.ValidationError({"to_member": [_("Give to_member or to_phone.")]}, code="required")
        return attrs
