"""Member endpoints: register, look up, balances, coupons (list, claim, validate), guide binding."""

from decimal import Decimal

import pytest

from members.models import IdentityKind, Member
from members.models.coupons import CouponKind, CouponTemplate, CouponValidity
from members.services import coupons, members
from o2o.apiauth import CATALOG_READ, MEMBERS_READ
from stores.models import Role
from stores.tests.factories import StaffFactory
from tests.api.conftest import bearer, idem

pytestmark = pytest.mark.django_db

MEMBERS = "/api/v1/members/"


def template(**extra):
    fields = {"code": "NEW20", "name": "20 off", "kind": CouponKind.FIXED, "amount": Decimal("20.00"),
              "validity": CouponValidity.DAYS_AFTER_ISSUE, "valid_days": 30, "claimable_online": True}
    fields.update(extra)
    return CouponTemplate.objects.create(**fields)


def test_register_is_idempotent_on_the_phone_and_links_identities(partner):
    key, client = partner

    first = client.post(MEMBERS, {"phone": "138 0013 8000", "name": "Li Lei", "wechat_openid": "oAbC",
                                  "wechat_appid": "wx1", "partner_customer_id": "C-9"}, format="json", **idem())
    again = client.post(MEMBERS, {"phone": "+8613800138000", "wechat_unionid": "uX"}, format="json", **idem())

    assert first.status_code == 201 and again.status_code == 200
    body = again.json()
    assert body["id"] == first.json()["id"] and body["phone"] == "+8613800138000"
    assert body["registration_channel"] == "mini_program"
    assert {(i["kind"], i["namespace"], i["value"]) for i in body["identities"]} == {
        ("wechat_openid", "wx1", "oAbC"), ("partner", key.channel, "C-9"), ("wechat_unionid", "", "uX")}
    assert body["points_available"] == 0 and body["wallet_total"] == "0.00" and body["currency"] == "CNY"


def test_register_errors(partner, other_partner):
    _key, client = partner
    _other, other = other_partner
    client.post(MEMBERS, {"phone": "13800138000", "wechat_openid": "oAbC", "wechat_appid": "wx1"},
                format="json", **idem())

    bad_phone = client.post(MEMBERS, {"phone": "12345"}, format="json", **idem())
    taken = other.post(MEMBERS, {"phone": "13900139000", "wechat_openid": "oAbC", "wechat_appid": "wx1"},
                       format="json", **idem())

    assert bad_phone.status_code == 400 and bad_phone.json()["code"] == "invalid_phone"
    assert taken.status_code == 409 and taken.json()["code"] == "identity_taken"
    assert Member.objects.count() == 1


def test_lookup_by_phone_wechat_or_partner_id(partner):
    key, client = partner
    member = members.member_register(phone="13800138000", channel="web",
                                     identities=[(IdentityKind.WECHAT_OPENID, "oAbC", "wx1"),
                                                 (IdentityKind.WECHAT_UNIONID, "uX", ""),
                                                 (IdentityKind.PARTNER, "C-9", key.channel)])
    found = [client.get(f"{MEMBERS}lookup/", params).json().get("id") for params in (
        {"phone": "13800138000"}, {"wechat_openid": "oAbC", "wechat_appid": "wx1"}, {"wechat_unionid": "uX"},
        {"partner_customer_id": "C-9"})]

    missing = client.get(f"{MEMBERS}lookup/", {"phone": "13900139000"})
    other_app = client.get(f"{MEMBERS}lookup/", {"wechat_openid": "oAbC", "wechat_appid": "wx2"})
    nothing = client.get(f"{MEMBERS}lookup/")
    nul = client.get(f"{MEMBERS}lookup/", {"wechat_unionid": "a\x00b"})

    assert found == [member.pk] * 4
    assert missing.status_code == other_app.status_code == 404
    assert missing.json()["code"] == "member_not_found"
    assert nothing.status_code == 400 and nul.status_code == 400


def test_member_detail_shows_balances_and_follows_merges(partner):
    _key, client = partner
    member = members.member_register(phone="13800138000", channel="mini_program")
    Member.objects.filter(pk=member.pk).update(points_available=120, wallet_principal=Decimal("50.00"),
                                               wallet_bonus=Decimal("5.00"))
    duplicate = members.member_register(phone="13900139000", channel="pos")
    members.member_merge(source=duplicate, target=member)

    detail = client.get(f"{MEMBERS}{member.pk}/").json()
    merged = client.get(f"{MEMBERS}{duplicate.pk}/").json()

    assert (detail["points_available"], detail["wallet_total"]) == (120, "55.00")
    assert merged["id"] == member.pk
    assert client.get(f"{MEMBERS}987654321/").status_code == 404


def test_claim_list_and_validate_a_coupon(partner, skus, clerk_a):
    _key, client = partner
    member = members.member_register(phone="13800138000", channel="mini_program")
    offer = template()
    hidden = template(code="HQONLY", claimable_online=False)

    listed_templates = client.get("/api/v1/coupons/templates/").json()["results"]
    claimed = client.post(f"{MEMBERS}{member.pk}/coupons/claim/", {"template": offer.pk}, format="json", **idem())
    twice = client.post(f"{MEMBERS}{member.pk}/coupons/claim/", {"template": offer.pk}, format="json", **idem())
    not_online = client.post(f"{MEMBERS}{member.pk}/coupons/claim/", {"template": hidden.pk}, format="json",
                             **idem())
    _user, staff = clerk_a
    by_staff = staff.post(f"{MEMBERS}{member.pk}/coupons/claim/", {"template": offer.pk}, format="json", **idem())
    code = claimed.json()["code"]
    mine = client.get(f"{MEMBERS}{member.pk}/coupons/").json()["results"]
    quote = client.post("/api/v1/coupons/validate/", {"code": code, "member": member.pk,
                                                     "lines": [{"sku": skus[0].pk, "qty": 2}]}, format="json")
    stranger = members.member_register(phone="13900139000", channel="web")
    not_theirs = client.post("/api/v1/coupons/validate/", {"code": code, "member": stranger.pk,
                                                          "lines": [{"sku": skus[0].pk, "qty": 1}]}, format="json")
    unknown_sku = client.post("/api/v1/coupons/validate/", {"code": code, "member": member.pk,
                                                           "lines": [{"sku": 987654321, "qty": 1}]}, format="json")

    assert [t["code"] for t in listed_templates] == ["NEW20"]
    assert claimed.status_code == 201 and claimed.json()["status"] == "issued"
    assert twice.status_code == 409 and twice.json()["code"] == "coupon_limit_reached"
    assert not_online.status_code == 422 and not_online.json()["code"] == "coupon_not_issuable"
    assert by_staff.status_code == 403
    assert [c["code"] for c in mine] == [code]
    assert quote.status_code == 200
    assert quote.json() == {"code": code, "discount": "20.00", "eligible_amount": "198.00",
                            "line_discounts": ["20.00"], "currency": "CNY"}
    assert not_theirs.status_code == 422 and not_theirs.json()["code"] == "coupon_not_owned"
    assert unknown_sku.status_code == 400 and "lines" in unknown_sku.json()["fields"]


def test_bind_a_member_to_a_guide(partner, store_a):
    _key, client = partner
    member = members.member_register(phone="13800138000", channel="mini_program")
    guide = StaffFactory(role=Role.GUIDE, store=store_a, guide_code="G0042")

    bound = client.post(f"{MEMBERS}{member.pk}/guide/", {"guide_code": "G0042", "source": "qr"}, format="json",
                        **idem())
    nobody = client.post(f"{MEMBERS}{member.pk}/guide/", {"guide_code": "G9999"}, format="json", **idem())

    assert bound.status_code == 200
    assert bound.json()["guide"] == guide.pk and bound.json()["store"] == store_a.pk
    assert nobody.status_code == 422 and nobody.json()["code"] == "not_a_guide"


def test_member_scopes(make_key):
    _k, raw = make_key(scopes=[CATALOG_READ])
    _k2, reader_raw = make_key(scopes=[MEMBERS_READ], name="reader")
    member = members.member_register(phone="13800138000", channel="mini_program")

    no_scope = bearer(raw).get(f"{MEMBERS}{member.pk}/")
    read_only = bearer(reader_raw).post(MEMBERS, {"phone": "13900139000"}, format="json", **idem())

    assert no_scope.status_code == 403 and no_scope.json()["code"] == "insufficient_scope"
    assert read_only.status_code == 403 and read_only.json()["code"] == "insufficient_scope"
    assert bearer(reader_raw).get(f"{MEMBERS}{member.pk}/").status_code == 200


def test_staff_register_members_at_their_store(clerk_a, store_a):
    _user, staff = clerk_a

    response = staff.post(MEMBERS, {"phone": "13800138000"}, format="json", **idem())

    assert response.status_code == 201
    member = Member.objects.get()
    assert member.registration_channel == "pos" and member.registration_store_id == store_a.pk


def test_share_a_coupon_with_a_friend(partner):
    _key, client = partner
    member = members.member_register(phone="13800138000", channel="mini_program")
    friend = members.member_register(phone="13900139000", channel="mini_program")
    gift = coupons.coupon_issue(template=template(code="GIFT20", shareable=True, per_member_limit=2), member=member)
    gift2 = coupons.coupon_issue(template=gift.template, member=member)
    mine = coupons.coupon_issue(template=template(code="OWN20"), member=member)
    once = template(code="ONCE5", shareable=True, per_member_limit=1)
    limited = coupons.coupon_issue(template=once, member=member)
    coupons.coupon_issue(template=once, member=friend)
    url = f"{MEMBERS}{member.pk}/coupons/share/"

    shared = client.post(url, {"code": gift.code, "to_member": friend.pk}, format="json", **idem())
    again = client.post(url, {"code": gift.code, "to_member": friend.pk}, format="json", **idem())
    not_shareable = client.post(url, {"code": mine.code, "to_member": friend.pk}, format="json", **idem())
    over_limit = client.post(url, {"code": limited.code, "to_member": friend.pk}, format="json", **idem())
    new_friend = client.post(url, {"code": gift2.code, "to_phone": "137 0013 7000"}, format="json", **idem())
    neither = client.post(url, {"code": gift2.code}, format="json", **idem())

    assert shared.status_code == 200, shared.content
    assert shared.json()["code"] == gift.code
    gift.refresh_from_db()
    assert gift.member_id == friend.pk
    assert again.status_code == 422 and again.json()["code"] == "coupon_not_owned"
    assert not_shareable.status_code == 422 and not_shareable.json()["code"] == "coupon_not_shareable"
    assert over_limit.status_code == 409 and over_limit.json()["code"] == "coupon_limit_reached"
    assert new_friend.status_code == 200
    assert Member.objects.get(phone="+8613700137000").coupons.get().code == gift2.code
    assert neither.status_code == 400 and "to_member" in neither.json()["fields"]
    listed = client.get(f"{MEMBERS}{friend.pk}/coupons/").json()["results"]
    assert sorted(c["code"] for c in listed) == sorted([gift.code, friend.coupons.get(template=once).code])
