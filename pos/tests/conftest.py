"""POS fixtures: two stores with clerks and a manager, stocked SKUs, an open shift, logged-in clients."""

import uuid
from decimal import Decimal

import pytest
from django.test import Client

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from orders import services as order_services
from orders.models import Channel, Fulfillment
from orders.services import LineIn
from payments import approvals, shifts
from payments.providers.sandbox import sandbox_notification
from stores.models import Role
from stores.tests.factories import StaffFactory
from tests.concurrency import run_at_once

MANAGER_PIN = "4321"


@pytest.fixture(autouse=True)
def _private_attempt_counters(monkeypatch):
    # Each test counts PIN attempts under its own Redis keys: runs share one Redis.
    token = uuid.uuid4().hex
    monkeypatch.setattr(approvals, "_attempt_key", lambda user: f"pos-test:{token}:{user.pk}")


@pytest.fixture
def shirt(db):
    return SkuFactory(code="TS-001", name="纯棉T恤 白色 M", list_price=Decimal("99.00"))


@pytest.fixture
def jeans(db):
    return SkuFactory(code="JN-001", name="直筒牛仔裤 蓝色 30", list_price=Decimal("249.00"))


@pytest.fixture
def stocked(central, store_a, store_b, shirt, jeans):
    """Store A holds 5 shirts and 3 jeans; store B 5 shirts; central 50 of each."""
    stock.stock_receive(warehouse=central, lines=[(shirt.id, 50), (jeans.id, 50)])
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(shirt.id, 5), (jeans.id, 3)])
    stock.stock_receive(warehouse=store_b.warehouse, lines=[(shirt.id, 5)])
    return shirt, jeans


@pytest.fixture
def clerk_a(store_a):
    return StaffFactory(role=Role.CLERK, store=store_a, display_name="张伟").user


@pytest.fixture
def clerk_b(store_b):
    return StaffFactory(role=Role.CLERK, store=store_b).user


@pytest.fixture
def manager_a(store_a):
    profile = StaffFactory(role=Role.STORE_MANAGER, store=store_a, display_name="李娜")
    approvals.manager_pin_set(user=profile.user, pin=MANAGER_PIN)
    return profile.user


@pytest.fixture
def manager_b(store_b):
    profile = StaffFactory(role=Role.STORE_MANAGER, store=store_b)
    approvals.manager_pin_set(user=profile.user, pin="9999")
    return profile.user


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def client_a(clerk_a):
    return login(clerk_a)


@pytest.fixture
def client_b(clerk_b):
    return login(clerk_b)


@pytest.fixture
def shift_a(store_a, clerk_a):
    return shifts.shift_open(store=store_a, actor=clerk_a, opening_float=Decimal("200.00"))


@pytest.fixture
def shift_b(store_b, clerk_b):
    return shifts.shift_open(store=store_b, actor=clerk_b, opening_float=Decimal("100.00"))


def htmx(client: Client, url: str, data: dict | None = None):
    return client.post(url, data or {}, HTTP_HX_REQUEST="true")


def pay_online(order):
    payment = order_services.order_payment_start(order=order, tender="sandbox")
    headers, body = sandbox_notification(payment)
    order_services.order_payment_notify(provider="sandbox", headers=headers, body=body)
    order.refresh_from_db()
    return order


def online_pickup_order(store, sku, qty=1, phone="+8613800138000", external_id=None):
    order = order_services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP, store=store,
                                       external_id=external_id or uuid.uuid4().hex[:12], customer_phone=phone,
                                       customer_name="王芳", lines=[LineIn(sku.id, qty)]).order
    return pay_online(order)


def online_ship_order(store, sku, qty=1, phone="+8613900139000"):
    """A web order shipped from ``store`` (only its stockroom has the goods in the city)."""
    order = order_services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_STORE,
                                       ship_city_id=store.city_id, ship_address="文三路 1 号",
                                       external_id=uuid.uuid4().hex[:12], customer_phone=phone,
                                       customer_name="陈晨", lines=[LineIn(sku.id, qty)]).order
    return pay_online(order)


def pos_sale(store, clerk, sku, qty=1, tenders=None, phone=""):
    from orders.services import TenderIn
    total = sku.list_price * qty
    return order_services.pos_sale_create(store=store, client_uuid=uuid.uuid4(), lines=[LineIn(sku.id, qty)],
                                          tenders=tenders or [TenderIn("cash", total)], actor=clerk,
                                          customer_phone=phone).order


@pytest.fixture
def member(store_a):
    from members.services import members, points, wallet

    person = members.member_register(phone="13800138000", channel="pos", store_id=store_a.pk, name="王芳")
    points.points_adjust(member=person, points=5000, reason="welcome points")
    wallet.wallet_recharge(member=person, reference="RC-POS-1", principal=Decimal("100.00"),
                           bonus=Decimal("10.00"))
    person.refresh_from_db()
    return person


@pytest.fixture
def coupon(member):
    from members.services import coupons
    from members.tests.test_coupons import make_template

    return coupons.coupon_issue(template=make_template(amount=Decimal("20.00")), member=member)


@pytest.fixture
def guide_a(store_a):
    return StaffFactory(role=Role.GUIDE, store=store_a, display_name="刘洋", guide_code="G-HZ001-01")


def at_once(submit, n: int = 2) -> list:
    """Run ``submit`` in ``n`` threads released together (a double click); returns their results."""
    return run_at_once([submit] * n)
