"""Members across channels, end to end through the order services.

A guide serves a member in store; the member later orders online with a coupon and returns
part of it at another store: attribution, commission and its clawback, points and the coupon
all come out right.  Wallet and points pay at the POS and come back in proportion on a return,
and buying, redeeming and returning never yields free points.
"""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from members.models import CommissionRule, IssuedCoupon, Member
from members.services import coupons, guides, members, points, wallet
from members.tests.test_coupons import make_template
from o2o.errors import DomainError
from orders import services
from orders.models import Channel, Fulfillment
from orders.services import LineIn, ReturnLineIn, TenderIn
from payments.providers.sandbox import sandbox_notification
from stores.models import Role, Warehouse
from stores.tests.factories import StaffFactory, StoreFactory, WarehouseFactory

pytestmark = pytest.mark.django_db
D = Decimal


def after_the_window():
    return timezone.now() + timedelta(days=8)  # the default return window is 7 days


@pytest.fixture
def shop():
    WarehouseFactory(kind=Warehouse.Kind.CENTRAL)
    store_a, store_b = StoreFactory(code="HZ01"), StoreFactory(code="HZ02")
    guide = StaffFactory(role=Role.GUIDE, store=store_a, guide_code="G-HZ01-01")
    clerk_b = StaffFactory(role=Role.CLERK, store=store_b).user
    shirt, coat = SkuFactory(list_price=D("100.00")), SkuFactory(list_price=D("300.00"))
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(shirt.id, 10), (coat.id, 10)])
    stock.stock_receive(warehouse=store_b.warehouse, lines=[(shirt.id, 10)])
    CommissionRule.objects.create(rate_percent=D("5.00"))  # global 5 %
    return {"a": store_a, "b": store_b, "guide": guide, "clerk_b": clerk_b, "shirt": shirt, "coat": coat}


def test_guide_served_member_orders_online_and_returns_part_elsewhere(shop):
    # Given: a guide registers a member at the POS, and HQ gives the member a 20-off coupon.
    member = members.member_register(phone="13800138000", channel="pos", store_id=shop["a"].pk)
    guides.guide_bind(member=member, guide_code="G-HZ01-01", source="pos")
    coupon = coupons.coupon_issue(template=make_template(amount=D("20.00")), member=member)

    # When: the member orders online for pickup at store A, with the coupon, and pays.
    order = services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP, store=shop["a"],
                                 external_id="MP-9", member=member, coupon_code=coupon.code,
                                 lines=[LineIn(shop["shirt"].id, 1), LineIn(shop["coat"].id, 1)]).order
    assert order.guide == shop["guide"]  # attributed online to the guide who served them in store
    assert (order.subtotal, order.coupon_discount, order.total) == (D("400.00"), D("20.00"), D("380.00"))
    payment = services.order_payment_start(order=order, tender="sandbox")
    headers, body = sandbox_notification(payment)
    services.order_payment_notify(provider="sandbox", headers=headers, body=body)
    services.pickup_handover(code=order.pickup_code, store=shop["a"])

    member.refresh_from_db()
    assert member.points_frozen == 380  # 1 point per yuan paid, frozen for the return window
    frozen, released = guides.commission_balance(shop["guide"])
    assert (frozen, released) == (D("19.00"), D("0.00"))  # 5 % of 380.00
    coupon.refresh_from_db()
    assert coupon.status == "redeemed"

    # Then: the shirt comes back at store B (its share of the coupon is netted out of the refund).
    shirt_line = order.lines.get(sku=shop["shirt"])
    assert shirt_line.line_total == D("95.00")  # 100 less its 5.00 share of the coupon
    ret = services.return_create(order=order, store=shop["b"], actor=shop["clerk_b"],
                                 lines=[ReturnLineIn(shirt_line.pk, 1)])
    assert ret.refund_total == D("95.00")
    member.refresh_from_db()
    assert member.points_frozen == 285  # 380 × (1 − 95/380)
    assert guides.commission_balance(shop["guide"]) == (D("14.25"), D("0.00"))
    coupon.refresh_from_db()
    assert coupon.status == "redeemed"  # a partial return keeps the coupon used

    # And the rest comes back too: everything reverses and the coupon is restored.
    services.return_create(order=order, store=shop["b"], lines=[ReturnLineIn(order.lines.get(sku=shop["coat"]).pk, 1)])
    member.refresh_from_db()
    coupon.refresh_from_db()
    assert member.points_frozen == 0
    assert guides.commission_balance(shop["guide"]) == (D("0.00"), D("0.00"))
    assert coupon.status == "issued"
    call_command("audit_ledgers")


def test_wallet_and_points_pay_at_the_pos_and_come_back_in_proportion(shop):
    member = members.member_register(phone="13900139000", channel="pos")
    wallet.wallet_recharge(member=member, reference="RC-1", principal=D("1000.00"), bonus=D("100.00"))
    first = services.pos_sale_create(store=shop["a"], client_uuid=uuid.uuid4(), member=member,
                                     lines=[LineIn(shop["coat"].id, 1)], tenders=[TenderIn("cash", D("300.00"))])
    points.points_unfreeze(now=after_the_window())  # the first sale's return window has passed
    member.refresh_from_db()
    assert member.points_available == 300

    # 2 shirts = 200.00: 2.00 in points (200 points), the rest from the wallet.
    sale = services.pos_sale_create(store=shop["a"], client_uuid=uuid.uuid4(), member=member,
                                    lines=[LineIn(shop["shirt"].id, 2)],
                                    tenders=[TenderIn("points", D("2.00")), TenderIn("wallet", D("198.00"))]).order
    member.refresh_from_db()
    points.points_unfreeze(now=after_the_window())
    member.refresh_from_db()
    assert member.points_available == 300 - 200 + 198  # points are earned on the money paid only
    assert member.wallet_principal + member.wallet_bonus == D("902.00")

    services.return_create(order=sale, store=shop["b"], lines=[ReturnLineIn(sale.lines.get().pk, 1)])
    member.refresh_from_db()
    # Half returned: 1.00 (100 points) back to points, 99.00 back to the wallet, 99 earned points reversed.
    assert member.points_available == 298 + 100 - 99
    assert member.wallet_principal + member.wallet_bonus == D("1001.00")
    assert first.order.member == member
    call_command("audit_ledgers")


def test_points_pay_at_most_the_programmes_share_of_an_order(shop):
    from members.models import PointsConfig

    PointsConfig.objects.create(pk=1, redeem_max_share=D("0.50"))
    member = Member.objects.get(pk=members.member_register(phone="13700137000", channel="pos").pk)
    with pytest.raises(DomainError) as err:
        services.pos_sale_create(store=shop["a"], client_uuid=uuid.uuid4(), member=member,
                                 lines=[LineIn(shop["shirt"].id, 1)],
                                 tenders=[TenderIn("points", D("60.00")), TenderIn("cash", D("40.00"))])
    assert err.value.code == "points_cap_exceeded"


def test_buy_redeem_return_never_yields_free_points(shop):
    member = members.member_register(phone="13600136000", channel="pos")
    bought = services.pos_sale_create(store=shop["a"], client_uuid=uuid.uuid4(), member=member,
                                      lines=[LineIn(shop["coat"].id, 1)], tenders=[TenderIn("cash", D("300.00"))]).order
    points.points_unfreeze(now=after_the_window())
    # Spend every earned point on a second purchase.
    spent = services.pos_sale_create(store=shop["a"], client_uuid=uuid.uuid4(), member=member,
                                     lines=[LineIn(shop["shirt"].id, 3)],
                                     tenders=[TenderIn("points", D("3.00")), TenderIn("cash", D("297.00"))]).order
    points.points_unfreeze(now=after_the_window())
    member.refresh_from_db()
    assert member.points_available == 297  # 300 − 300 spent + 297 earned on the cash

    # Return the first purchase: its 300 points are gone, so they become a debt.
    services.return_create(order=bought, store=shop["a"], lines=[ReturnLineIn(bought.lines.get().pk, 1)])
    member.refresh_from_db()
    assert member.points_available - member.points_debt == -3

    # Return the second too: its redeemed points come back and its earned points go.
    services.return_create(order=spent, store=shop["a"], lines=[ReturnLineIn(spent.lines.get().pk, 3)])
    member.refresh_from_db()
    assert member.points_available - member.points_debt == 0  # nothing bought, nothing earned
    assert not IssuedCoupon.objects.exists()
    call_command("audit_ledgers")


def test_cancelling_an_order_gives_the_coupon_back(shop):
    member = members.member_register(phone="13500135000", channel="web")
    coupon = coupons.coupon_issue(template=make_template(amount=D("10.00")), member=member)
    order = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=shop["a"],
                                 member=member, coupon_code=coupon.code, lines=[LineIn(shop["shirt"].id, 1)]).order
    coupon.refresh_from_db()
    assert coupon.status == "redeemed"
    services.order_cancel(order=order)
    coupon.refresh_from_db()
    assert coupon.status == "issued"
    with pytest.raises(DomainError) as err:  # another member cannot use it
        other = members.member_register(phone="13400134000", channel="web")
        services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=shop["a"], member=other,
                             coupon_code=coupon.code, lines=[LineIn(shop["shirt"].id, 1)])
    assert err.value.code == "coupon_not_owned"
    call_command("audit_ledgers")


def test_member_tenders_need_a_member_and_enough_balance(shop):
    member = members.member_register(phone="13300133000", channel="pos")
    for tenders, kw, code in [
        ([TenderIn("wallet", D("100.00"))], {}, "member_required"),
        ([TenderIn("wallet", D("100.00"))], {"member": member}, "wallet_insufficient"),
        ([TenderIn("points", D("1.00")), TenderIn("cash", D("99.00"))], {"member": member}, "points_insufficient"),
    ]:
        with pytest.raises(DomainError) as err:
            services.pos_sale_create(store=shop["a"], client_uuid=uuid.uuid4(), lines=[LineIn(shop["shirt"].id, 1)],
                                     tenders=tenders, **kw)
        assert err.value.code == code
    assert not member.orders.exists()
    call_command("audit_ledgers")
