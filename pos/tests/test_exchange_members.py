"""An exchange at the counter keeps its customer: the new sale is the original member's and earns
like a purchase, and the points that paid for the returned goods are given back once."""

import re
import uuid
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from rest_framework.test import APIClient

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from members.models import (CommissionEntry, CommissionRule, IdentityKind, MemberIdentity, MemberSpend, PointsEntry,
                            PointsLot)
from members.services import guides, members as member_services, points as points_services
from o2o.apiauth import MEMBERS_READ, partner_key_create
from orders.exceptions import ExchangeMemberMismatch
from orders import services as order_services
from orders.models import Channel, Fulfillment, Order, Return
from orders.services import LineIn, TenderIn
from payments.models import Payment, Refund

from .conftest import htmx, pay_online

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def coat(store_a):
    sku = SkuFactory(code="CT-001", name="风衣 卡其 M", list_price=D("269.00"))
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(sku.id, 3)])
    return sku


@pytest.fixture
def buyer(store_a):
    """A new member with nothing on their ledgers yet."""
    return member_services.member_register(phone="13900139001", channel="pos", store_id=store_a.pk, name="赵敏")


def member_sale(store, clerk, sku, member, tenders=None):
    return order_services.pos_sale_create(store=store, client_uuid=uuid.uuid4(), lines=[LineIn(sku.id, 1)],
                                          tenders=tenders or [TenderIn("cash", sku.list_price)], actor=clerk,
                                          member=member, customer_phone=member.phone if member else "").order


def exchange_start(client, order) -> str:
    """退货 → pick the one line → 换其他商品; returns the new sale's client id."""
    client.get(reverse("pos:returns"), {"q": order.number})
    page = client.get(reverse("pos:return_detail", args=[order.pk])).content.decode()
    line = order.lines.get()
    ret_uuid = re.search(r'name="client_uuid" value="([^"]+)"', page).group(1)
    response = client.post(reverse("pos:return_detail", args=[order.pk]), {
        "client_uuid": ret_uuid, f"qty_{line.pk}": "1", f"condition_{line.pk}": "sellable", "exchange": "1"})
    assert response["Location"] == reverse("pos:sale")
    page = client.get(reverse("pos:sale")).content.decode()
    return re.search(r'name="client_uuid" value="([^"]+)"', page).group(1)


def points_of(member):
    member.refresh_from_db()
    return member.points_available, member.points_frozen


def spend(member):
    return sum(MemberSpend.objects.filter(member=member).values_list("amount", flat=True), D("0"))


def test_a_member_exchanging_for_a_dearer_item_keeps_earning_as_if_they_had_bought_it(
        client_a, store_a, clerk_a, stocked, shift_a, coat, buyer, guide_a):
    _, jeans = stocked
    CommissionRule.objects.create(rate_percent=D("5.00"))
    guides.guide_bind(member=buyer, guide_code=guide_a.guide_code, source="qr")
    order = member_sale(store_a, clerk_a, jeans, buyer)
    assert order.guide == guide_a and points_of(buyer) == (0, 249)

    uid = exchange_start(client_a, order)
    page = client_a.get(reverse("pos:sale")).content.decode()
    assert "赵敏" in page  # the basket starts with the original order's member
    response = htmx(client_a, reverse("pos:sale_scan"), {"code": coat.barcode})
    assert 'data-due="20.00"' in response.content.decode()  # 269 − 249 credit
    response = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "20"})
    new = Order.objects.get(client_uuid=uid)
    assert response["HX-Redirect"] == reverse("pos:receipt", args=[new.number])

    assert (new.member, new.guide, new.customer_phone) == (buyer, guide_a, buyer.phone)
    # 249 frozen points of the jeans reversed, 269 earned on the coat, frozen like any sale.
    assert points_of(buyer) == (0, 269)
    lot = PointsLot.objects.get(order_number=new.number, kind="earn")
    assert (lot.amount, lot.status) == (269, "frozen")
    assert spend(buyer) == D("269.00")
    commission = {(e.order_number, e.kind): e.frozen_delta for e in CommissionEntry.objects.all()}
    assert commission == {(order.number, "accrual"): D("12.45"), (order.number, "clawback"): D("-12.45"),
                          (new.number, "accrual"): D("13.45")}
    receipt = client_a.get(response["HX-Redirect"]).content.decode()
    ret = Return.objects.get()
    assert "本单积分" in receipt and "+269" in receipt
    assert ret.number in receipt and order.number in receipt and "−249" in receipt  # the jeans' points, taken back
    call_command("audit_ledgers")


def test_a_cheaper_new_item_earns_on_its_own_price_and_the_rest_is_refunded(
        client_a, store_a, clerk_a, stocked, shift_a, buyer):
    shirt, jeans = stocked
    order = member_sale(store_a, clerk_a, jeans, buyer)
    uid = exchange_start(client_a, order)
    htmx(client_a, reverse("pos:sale_scan"), {"code": shirt.barcode})
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid})
    new = Order.objects.get(client_uuid=uid)
    assert new.member == buyer and points_of(buyer) == (0, 99)
    assert spend(buyer) == D("99.00")
    refunds = sorted((r.method, r.amount) for r in Refund.objects.filter(payment__reference=order.number))
    assert refunds == [("cash", D("150.00")), ("exchange", D("99.00"))]
    call_command("audit_ledgers")


def test_without_a_member_on_the_original_the_clerk_may_attach_one_with_f4(
        client_a, store_a, clerk_a, stocked, shift_a, coat, buyer):
    _, jeans = stocked
    order = member_sale(store_a, clerk_a, jeans, None)
    uid = exchange_start(client_a, order)
    htmx(client_a, reverse("pos:sale_scan"), {"code": coat.barcode})
    response = htmx(client_a, reverse("pos:sale_member"), {"phone": "139 0013 9001"})
    assert response.status_code == 200 and "赵敏" in response.content.decode()
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "20"})
    new = Order.objects.get(client_uuid=uid)
    assert new.member == buyer and points_of(buyer) == (0, 269)
    call_command("audit_ledgers")


def test_without_a_member_anywhere_the_exchange_sale_belongs_to_nobody(
        client_a, store_a, clerk_a, stocked, shift_a, coat):
    _, jeans = stocked
    order = member_sale(store_a, clerk_a, jeans, None)
    uid = exchange_start(client_a, order)
    htmx(client_a, reverse("pos:sale_scan"), {"code": coat.barcode})
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "20"})
    new = Order.objects.get(client_uuid=uid)
    assert new.member is None and not PointsLot.objects.exists()
    call_command("audit_ledgers")


def test_another_member_than_the_originals_is_refused(client_a, store_a, clerk_a, stocked, shift_a, coat, buyer,
                                                      member):
    _, jeans = stocked
    order = member_sale(store_a, clerk_a, jeans, buyer)
    uid = exchange_start(client_a, order)
    htmx(client_a, reverse("pos:sale_scan"), {"code": coat.barcode})
    response = htmx(client_a, reverse("pos:sale_member"), {"phone": member.phone})
    assert response.status_code == 422
    assert "换货只能记在原订单的会员名下" in response.content.decode()
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "20"})
    new = Order.objects.get(client_uuid=uid)
    assert new.member == buyer  # the attempt changed nothing: the exchange stays with the original member


def test_the_exchange_service_refuses_another_member_and_changes_nothing(store_a, clerk_a, stocked, coat, buyer,
                                                                         member):
    _, jeans = stocked
    order = member_sale(store_a, clerk_a, jeans, buyer)
    with pytest.raises(ExchangeMemberMismatch) as err:
        order_services.exchange_create(order=order, store=store_a, client_uuid=uuid.uuid4(), member=member,
                                       return_lines=[order_services.ReturnLineIn(order.lines.get().pk, 1)],
                                       new_lines=[LineIn(coat.id, 1)], tenders=[TenderIn("cash", D("20.00"))])
    assert err.value.code == "exchange_member_mismatch" and err.value.status == 409
    assert not Return.objects.exists() and Order.objects.count() == 1


def test_points_that_paid_for_the_returned_item_are_not_given_back_twice(
        client_a, store_a, clerk_a, stocked, shift_a, coat, member):
    _, jeans = stocked
    available = member.points_available  # 5000 welcome points
    order = member_sale(store_a, clerk_a, jeans, member,
                        tenders=[TenderIn("points", D("2.09")), TenderIn("cash", D("246.91"))])
    before = points_of(member)
    assert before == (available - 209, 246)
    uid = exchange_start(client_a, order)
    htmx(client_a, reverse("pos:sale_scan"), {"code": coat.barcode})
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "20"})
    new = Order.objects.get(client_uuid=uid)
    reversed_earned = -sum(PointsEntry.objects.filter(order_number=order.number, kind="reverse")
                           .values_list("frozen_delta", flat=True))
    earned_new = PointsLot.objects.get(order_number=new.number, kind="earn").amount
    assert (reversed_earned, earned_new) == (246, 269)
    # The 209 points are inside the ¥249 exchange credit: they are not restored on top of it.
    assert points_of(member) == (before[0], before[1] - reversed_earned + earned_new)
    assert not PointsEntry.objects.filter(kind="restore").exists()
    assert Refund.objects.get(payment__reference=order.number, payment__tender="points").method == "exchange"
    call_command("audit_ledgers")


def test_points_of_a_cheaper_exchange_come_back_only_for_the_part_refunded(
        client_a, store_a, clerk_a, stocked, shift_a, member):
    shirt, jeans = stocked
    order = member_sale(store_a, clerk_a, jeans, member,
                        tenders=[TenderIn("points", D("24.90")), TenderIn("cash", D("224.10"))])
    before = points_of(member)
    uid = exchange_start(client_a, order)
    htmx(client_a, reverse("pos:sale_scan"), {"code": shirt.barcode})
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid})
    new = Order.objects.get(client_uuid=uid)
    refunds = {(r.payment.tender, r.method): r.amount for r in Refund.objects.filter(payment__reference=order.number)}
    # ¥99 of the ¥249 goes into the credit, ¥150 back to the tenders: a tenth of each paid in points.
    assert refunds == {("points", "exchange"): D("9.90"), ("cash", "exchange"): D("89.10"),
                       ("points", "original"): D("15.00"), ("cash", "cash"): D("135.00")}
    earned_new = PointsLot.objects.get(order_number=new.number, kind="earn").amount
    assert points_of(member) == (before[0] + 1500, before[1] - 224 + earned_new)
    call_command("audit_ledgers")


def test_an_online_order_exchanged_at_the_store_stays_with_its_member(
        client_a, store_a, clerk_a, stocked, shift_a, coat, buyer):
    _, jeans = stocked
    order = order_services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP, store=store_a,
                                       external_id="MP-EX-1", member=buyer, customer_phone=buyer.phone,
                                       lines=[LineIn(jeans.id, 1)]).order
    pay_online(order)
    order_services.pickup_handover(code=order.pickup_code, store=store_a, actor=clerk_a)
    assert points_of(buyer) == (0, 249)
    uid = exchange_start(client_a, order)
    htmx(client_a, reverse("pos:sale_scan"), {"code": coat.barcode})
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "20"})
    new = Order.objects.get(client_uuid=uid)
    assert (new.channel, new.member) == ("pos", buyer)
    assert points_of(buyer) == (0, 269) and spend(buyer) == D("269.00")
    assert Payment.objects.get(reference=new.number, tender="exchange_credit").amount == D("249.00")
    call_command("audit_ledgers")


def test_the_audit_finds_an_exchange_sale_that_lost_its_member(client_a, store_a, clerk_a, stocked, shift_a, coat,
                                                                buyer, member):
    _, jeans = stocked
    order = member_sale(store_a, clerk_a, jeans, buyer)
    uid = exchange_start(client_a, order)
    htmx(client_a, reverse("pos:sale_scan"), {"code": coat.barcode})
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "20"})
    call_command("audit_ledgers", stdout=StringIO())
    new = Order.objects.get(client_uuid=uid)
    for planted in (None, member.pk):
        Order.objects.filter(pk=new.pk).update(member_id=planted)
        out = StringIO()
        with pytest.raises(CommandError):
            call_command("audit_ledgers", stdout=out, stderr=out)
        assert f"exchange {Return.objects.get().number}" in out.getvalue()


def test_the_audit_finds_points_given_back_on_top_of_the_exchange_credit(
        client_a, store_a, clerk_a, stocked, shift_a, coat, member):
    _, jeans = stocked
    order = member_sale(store_a, clerk_a, jeans, member,
                        tenders=[TenderIn("points", D("2.09")), TenderIn("cash", D("246.91"))])
    uid = exchange_start(client_a, order)
    htmx(client_a, reverse("pos:sale_scan"), {"code": coat.barcode})
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "20"})
    call_command("audit_ledgers", stdout=StringIO())
    # What exchanges used to do: the 209 points inside the credit restored to the member as well.
    points_services.points_restore_redeemed(member=member, order_number=order.number, points=209)
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=out, stderr=out)
    assert f"order {order.number}: paid ¥2.09 in points" in out.getvalue()


def test_the_points_history_shows_both_movements_in_the_admin_and_the_api(
        client_a, store_a, clerk_a, stocked, shift_a, coat, buyer, django_user_model):
    _, jeans = stocked
    order = member_sale(store_a, clerk_a, jeans, buyer)
    uid = exchange_start(client_a, order)
    htmx(client_a, reverse("pos:sale_scan"), {"code": coat.barcode})
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "20"})
    new, ret = Order.objects.get(client_uuid=uid), Return.objects.get()
    reason = f"exchange {ret.number}: new sale {new.number}"

    _key, raw = partner_key_create(name="crm", channel="mini_program", scopes=[MEMBERS_READ])
    # A key reads only members related to it: the buyer is one of the mini-program's customers.
    MemberIdentity.objects.create(member=buyer, kind=IdentityKind.PARTNER, namespace="mini_program", value="C-1")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = api.get(f"/api/v1/members/{buyer.pk}/points/").json()
    moves = [(e["kind"], e["frozen_delta"], e["order_number"], e["reference"], e["reason"]) for e in body["results"]]
    assert moves == [("reverse", -249, order.number, ret.number, reason),  # newest first
                     ("earn", 269, new.number, new.number, ""),
                     ("earn", 249, order.number, order.number, "")]
    only = api.get(f"/api/v1/members/{buyer.pk}/points/", {"kind": "reverse"}).json()["results"]
    assert [e["reference"] for e in only] == [ret.number]
    missing = api.get("/api/v1/members/987654321/points/")
    assert missing.status_code == 404 and missing.json()["code"] == "member_not_found"

    admin = django_user_model.objects.create_superuser("hq-admin", "hq@example.com", "pw")
    client_a.force_login(admin)
    page = client_a.get(reverse("admin:members_pointsentry_changelist"), {"q": buyer.phone}).content.decode()
    assert ret.number in page and reason in page and new.number in page


def test_wallet_money_that_paid_for_the_returned_item_is_not_given_back_twice(
        client_a, store_a, clerk_a, stocked, shift_a, coat, member):
    _, jeans = stocked
    order = member_sale(store_a, clerk_a, jeans, member,
                        tenders=[TenderIn("wallet", D("50.00")), TenderIn("cash", D("199.00"))])
    member.refresh_from_db()
    wallet_before = member.wallet_balance
    uid = exchange_start(client_a, order)
    htmx(client_a, reverse("pos:sale_scan"), {"code": coat.barcode})
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "20"})
    member.refresh_from_db()
    assert member.wallet_balance == wallet_before  # the ¥50 is inside the ¥249 credit, not back in the wallet
    assert Payment.objects.get(reference=Order.objects.get(client_uuid=uid).number,
                               tender="exchange_credit").amount == D("249.00")
    call_command("audit_ledgers")
