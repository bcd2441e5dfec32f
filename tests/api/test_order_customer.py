"""POST /api/v1/orders/ carries the customer: member, coupon, guide (code or QR scene), points and wallet."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from members.models import CouponRedemption, GuideBinding, IdentityKind, Member, MemberIdentity
from members.models.coupons import CouponKind, CouponTemplate, CouponValidity
from members.services import coupons, members, points, wallet
from o2o.apiauth import ORDERS_READ, ORDERS_WRITE
from orders import services as order_services
from orders.models import Order, Status
from payments.models import Payment
from stores.models import Role
from stores.tests.factories import StaffFactory
from tests.api.conftest import bearer, idem, notify, pay, place

pytestmark = pytest.mark.django_db

OPENID = {"wechat_openid": "oAbC123", "wechat_appid": "wx1234"}


@pytest.fixture
def guide(store_a):
    return StaffFactory(role=Role.GUIDE, store=store_a, guide_code="G0042")


@pytest.fixture
def member():
    found = members.member_register(phone="13800138000", channel="mini_program",
                                    identities=[members.IdentityRef(kind=IdentityKind.WECHAT_OPENID,
                                                                    value="oAbC123", namespace="wx1234")])
    points.points_adjust(member=found, points=2000, reason="welcome")
    wallet.wallet_recharge(member=found, reference="RC-TEST-1", principal=Decimal("100.00"))
    return found


def coupon_for(member, amount="20.00"):
    template = CouponTemplate.objects.create(code="NEW20", name="20 off", kind=CouponKind.FIXED,
                                             amount=Decimal(amount), validity=CouponValidity.DAYS_AFTER_ISSUE,
                                             valid_days=30, claimable_online=True)
    return coupons.coupon_issue(template=template, member=member)


def test_unknown_keys_are_refused_not_dropped(partner, stocked, store_a):
    _key, client = partner

    top = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}], coupon="NEW20")
    nested = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1, "price": "1.00"}])
    in_member = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}],
                      member={"phone": "13800138000", "email": "a@b.c"})

    assert top.status_code == 400 and top.json()["code"] == "unknown_field"
    assert list(top.json()["fields"]) == ["coupon"]
    assert nested.status_code == 400 and nested.json()["code"] == "unknown_field"
    assert list(nested.json()["fields"]) == ["lines.0.price"]
    assert in_member.status_code == 400 and list(in_member.json()["fields"]) == ["member.email"]
    assert Order.objects.count() == 0


def test_an_unknown_phone_registers_the_member_and_the_order_is_theirs(partner, stocked, store_a):
    _key, client = partner

    placed = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}],
                   member={"phone": "139 0013 9000", "name": "Han Meimei", **OPENID})

    assert placed.status_code == 201, placed.content
    new = Member.objects.get(phone="+8613900139000")
    assert new.registration_channel == "mini_program" and new.name == "Han Meimei"
    assert MemberIdentity.objects.filter(member=new, kind=IdentityKind.WECHAT_OPENID, value="oAbC123").exists()
    order = Order.objects.get(pk=placed.json()["id"])
    assert order.member_id == new.pk and order.customer_phone == "+8613900139000"


def test_without_members_write_an_unknown_customer_is_refused_and_nothing_is_made(make_key, stocked, store_a):
    _key, raw = make_key(scopes=[ORDERS_READ, ORDERS_WRITE], name="orders only")
    client = bearer(raw)

    unknown = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}],
                    member={"phone": "13900139000"})
    no_such_id = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}], member={"id": 999999})
    ambiguous = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}],
                      member={"id": 1, "phone": "13900139000"})
    openid_alone = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}],
                         member={"wechat_openid": "oX"})

    assert unknown.status_code == 404 and unknown.json()["code"] == "member_not_found"
    assert unknown.json()["fields"] == {"member": [unknown.json()["message"]]}
    assert no_such_id.status_code == 404 and no_such_id.json()["code"] == "member_not_found"
    assert ambiguous.status_code == 400 and "member.id" in ambiguous.json()["fields"]
    assert openid_alone.status_code == 400 and "member.wechat_appid" in openid_alone.json()["fields"]
    assert Member.objects.count() == 0 and Order.objects.count() == 0


def test_member_coupon_and_guide_scene_are_applied_and_bound(partner, stocked, store_a, guide, member):
    _key, client = partner
    coupon = coupon_for(member)

    placed = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 2}], member=OPENID,
                   coupon_code=coupon.code, scene=f"https://shop.example.com/g/{guide.guide_code}")

    assert placed.status_code == 201, placed.content
    body = placed.json()
    order = Order.objects.get(pk=body["id"])
    assert order.member_id == member.pk and order.guide_id == guide.pk
    assert order.coupon_code == coupon.code and order.coupon_discount == Decimal("20.00")
    assert Decimal(body["discount_total"]) == Decimal("20.00")
    coupon.refresh_from_db()
    assert coupon.status == "redeemed"
    binding = GuideBinding.objects.get(member=member, ended_reason="")
    assert binding.guide_id == guide.pk and binding.source == GuideBinding.Source.QR


def test_a_scene_without_a_member_attributes_the_order_to_the_guide(partner, stocked, store_a, guide):
    _key, client = partner

    placed = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}], scene=guide.guide_code)

    assert placed.status_code == 201
    assert Order.objects.get(pk=placed.json()["id"]).guide_id == guide.pk
    assert GuideBinding.objects.count() == 0


def test_unusable_values_are_client_errors_with_stable_codes(partner, stocked, store_a, guide, member):
    _key, client = partner
    line = [{"sku": stocked[0].pk, "qty": 1}]

    no_guide = place(client, store=store_a, lines=line, member=OPENID, scene="NOBODY")
    both = place(client, store=store_a, lines=line, scene="G0042", guide_code="G0042")
    no_coupon = place(client, store=store_a, lines=line, member=OPENID, coupon_code="NOSUCHCODE")
    points_no_member = place(client, store=store_a, lines=line, points=100)
    too_many_points = place(client, store=store_a, lines=line, member=OPENID, points=1_000_000)
    bad_points = place(client, store=store_a, lines=line, member=OPENID, points=-5)

    assert no_guide.status_code == 422 and no_guide.json()["code"] == "not_a_guide"
    assert "scene" in no_guide.json()["fields"]
    assert both.status_code == 400 and "scene" in both.json()["fields"]
    assert no_coupon.status_code == 404 and no_coupon.json()["code"] == "coupon_not_found"
    assert points_no_member.status_code == 400 and points_no_member.json()["code"] == "member_required"
    # 1,000,000 points pay 10,000.00: more than the order costs.
    assert too_many_points.status_code == 422 and too_many_points.json()["code"] == "payment_mismatch"
    assert bad_points.status_code == 400 and "points" in bad_points.json()["fields"]
    assert Order.objects.count() == 0 and GuideBinding.objects.count() == 0


def test_points_pay_part_at_once_and_the_provider_the_rest(partner, stocked, store_a, member):
    _key, client = partner
    before = Member.objects.get(pk=member.pk).points_available

    placed = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}], member=OPENID, points=500)

    assert placed.status_code == 201, placed.content
    order = Order.objects.get(pk=placed.json()["id"])
    assert order.paid_total == Decimal("5.00") and order.status == Status.PENDING_PAYMENT
    assert Member.objects.get(pk=member.pk).points_available == before - 500
    started = client.post(f"/api/v1/orders/{order.pk}/payments/", {"tender": "sandbox"}, format="json",
                          **idem())
    assert Decimal(started.json()["amount"]) == order.total - Decimal("5.00")
    notify(APIClient(), Payment.objects.get(pk=started.json()["id"]))
    order.refresh_from_db()
    assert order.status == Status.READY_FOR_PICKUP and order.paid_total == order.total


def test_points_taken_at_placement_come_back_when_the_order_expires(partner, stocked, store_a, member):
    _key, client = partner
    before = Member.objects.get(pk=member.pk).points_available
    placed = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}], member=OPENID, points=300)

    expired = order_services.orders_expire(now=timezone.now() + timedelta(days=1))

    assert expired == 1
    assert Order.objects.get(pk=placed.json()["id"]).status == Status.EXPIRED
    assert Member.objects.get(pk=member.pk).points_available == before


def test_the_wallet_needs_the_customers_proof(partner, stocked, store_a, member):
    _key, client = partner
    line = [{"sku": stocked[0].pk, "qty": 1}]

    by_phone = place(client, store=store_a, lines=line, member={"phone": "13800138000"}, wallet="10.00")
    code = client.post(f"/api/v1/members/{member.pk}/code/").json()["code"]
    with_code = place(client, store=store_a, lines=line, member={"phone": "13800138000"}, member_code=code,
                      wallet="10.00")
    replayed = place(client, store=store_a, lines=line, member_code=code, wallet="10.00")
    forged = place(client, store=store_a, lines=line, member_code=code[:-2] + "xx", wallet="10.00")
    by_session = place(client, store=store_a, lines=line, member=OPENID, wallet="5.00")

    assert by_phone.status_code == 422 and by_phone.json()["code"] == "wallet_proof_required"
    assert with_code.status_code == 201, with_code.content
    assert Order.objects.get(pk=with_code.json()["id"]).paid_total == Decimal("10.00")
    assert replayed.status_code == 409 and replayed.json()["code"] == "member_code_used"
    assert forged.status_code == 422 and forged.json()["code"] == "member_code_invalid"
    assert by_session.status_code == 201
    assert Member.objects.get(pk=member.pk).wallet_principal == Decimal("85.00")
    wallet_payments = Payment.objects.filter(tender="wallet", status=Payment.Status.CAPTURED)
    assert sorted(p.amount for p in wallet_payments) == [Decimal("5.00"), Decimal("10.00")]


def test_a_member_code_of_someone_else_is_refused(partner, stocked, store_a, member):
    _key, client = partner
    other = members.member_register(phone="13900139000", channel="mini_program")
    code = client.post(f"/api/v1/members/{other.pk}/code/").json()["code"]

    placed = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}], member=OPENID,
                   member_code=code, wallet="10.00")

    assert placed.status_code == 422 and placed.json()["code"] == "member_code_mismatch"
    assert Order.objects.count() == 0


def test_points_are_earned_when_the_member_picks_up(partner, stocked, store_a, member, clerk_a):
    _key, client = partner
    placed = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}], member=OPENID)
    order = Order.objects.get(pk=placed.json()["id"])
    pay(client, order.pk)
    order.refresh_from_db()
    _user, staff = clerk_a

    handed = staff.post("/api/v1/pickups/handover/", {"code": order.pickup_code}, format="json", **idem())

    assert handed.status_code == 200, handed.content
    assert Member.objects.get(pk=member.pk).points_frozen == int(order.total)


@pytest.mark.parametrize("kind, terms, expected", [
    ("percent", {"percent": Decimal("10")}, Decimal("9.90")),  # 10% of 99.00
    ("fixed", {"amount": Decimal("20.00")}, Decimal("20.00")),
])
def test_an_orders_coupon_discount_is_the_redemptions(partner, stocked, store_a, member, kind, terms, expected):
    """The API order and its coupon redemption read one priced sale: they agree to the fen."""
    _key, client = partner
    template = CouponTemplate.objects.create(code=f"API-{kind}", name=kind, kind=kind,
                                             validity=CouponValidity.DAYS_AFTER_ISSUE, valid_days=30, **terms)
    coupon = coupons.coupon_issue(template=template, member=member)

    response = place(client, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}],
                     member={"phone": "13800138000"}, coupon_code=coupon.code)

    assert response.status_code == 201, response.json()
    order = Order.objects.get(pk=response.json()["id"])
    redemption = CouponRedemption.objects.get(order_number=order.number)
    assert order.coupon_discount == redemption.discount == expected
    assert sum(ln.coupon_discount for ln in order.lines.all()) == expected
