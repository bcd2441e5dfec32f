"""Store isolation: a clerk sees and acts for their own store only, by page or by id in the URL."""

import time

import pytest
from django.urls import reverse

from orders.models import Order
from payments.models import ApprovalLog
from stores.models import Role
from stores.tests.factories import StaffFactory, UserFactory

from .conftest import MANAGER_PIN, login, online_pickup_order, online_ship_order, pos_sale

pytestmark = pytest.mark.django_db


@pytest.fixture
def b_things(store_b, clerk_b, stocked, shift_b):
    shirt, jeans = stocked
    sale = pos_sale(store_b, clerk_b, shirt)
    pickup = online_pickup_order(store_b, shirt)
    return {"sale": sale, "pickup": pickup, "shift": shift_b}


def test_another_stores_ids_are_not_found(client_a, manager_a, b_things, shift_a):
    sale, pickup, shift = b_things["sale"], b_things["pickup"], b_things["shift"]
    assert client_a.get(reverse("pos:receipt", args=[sale.number])).status_code == 404
    assert client_a.get(reverse("pos:shift_report", args=[shift.pk])).status_code == 404
    assert client_a.get(reverse("pos:return_detail", args=[sale.pk])).status_code == 404
    assert client_a.post(reverse("pos:return_detail", args=[sale.pk]), {"client_uuid": "x"}).status_code == 404
    assert client_a.post(reverse("pos:sale_void", args=[sale.pk]), {"pin": MANAGER_PIN}).status_code == 404
    assert client_a.get(reverse("pos:pickup_detail", args=[pickup.pk])).status_code == 404
    assert client_a.get(reverse("pos:receipt", args=[pickup.number])).status_code == 404
    assert not sale.returns.exists() and not ApprovalLog.objects.exists()


def test_another_stores_sale_is_not_found_by_its_receipt(client_a, b_things, shift_a):
    response = client_a.get(reverse("pos:returns"), {"q": b_things["sale"].number})
    assert "没有找到可退的订单" in response.content.decode()


def test_another_stores_pickup_code_is_refused_and_audited(client_a, b_things):
    pickup = b_things["pickup"]
    response = client_a.post(reverse("pos:pickup"), {"code": pickup.pickup_code})
    assert response.status_code == 422 and "其他门店" in response.content.decode()
    response = client_a.post(reverse("pos:pickup_handover"), {"code": pickup.pickup_code})
    assert response.status_code == 422
    pickup.refresh_from_db()
    assert pickup.status == "ready_for_pickup"
    assert pickup.events.filter(kind="pickup_rejected").exists()


def test_another_stores_ship_tasks_are_not_found(client_a, client_b, store_a, stocked):
    order = online_ship_order(store_a, stocked[1])
    assert order.fulfillment == "ship_store"
    assert order.number not in client_b.get(reverse("pos:ship")).content.decode()
    assert client_b.post(reverse("pos:ship_start", args=[order.pk])).status_code == 404
    client_a.post(reverse("pos:ship_start", args=[order.pk]))
    shipment = order.shipments.get()
    assert client_b.post(reverse("pos:ship_pack", args=[shipment.pk])).status_code == 404
    assert client_b.post(reverse("pos:ship_send", args=[shipment.pk]),
                         {"carrier": "SF", "tracking_number": "1"}).status_code == 404


def test_a_multi_store_clerk_picks_a_store_kept_in_the_session(store_a, store_b, b_things):
    profile = StaffFactory(role=Role.CLERK, store=store_a)
    profile.memberships.create(store=store_b)
    client = login(profile.user)
    assert client.get(reverse("pos:sale"))["Location"] == reverse("pos:store")
    page = client.get(reverse("pos:store")).content.decode()
    assert store_a.name in page and store_b.name in page
    client.post(reverse("pos:store"), {"store": store_b.pk})
    assert client.get(reverse("pos:receipt", args=[b_things["sale"].number])).status_code == 200
    client.post(reverse("pos:store"), {"store": store_a.pk})
    assert client.get(reverse("pos:receipt", args=[b_things["sale"].number])).status_code == 404


def test_a_clerk_taken_off_their_store_loses_it_on_the_next_request(client_a, clerk_a, store_a, shift_a):
    assert client_a.get(reverse("pos:sale")).status_code == 200
    clerk_a.staff.memberships.filter(store=store_a).delete()
    response = client_a.get(reverse("pos:sale"))
    assert response.status_code == 403 and "不属于任何门店" in response.content.decode()
    response = client_a.post("/pos/till/price/", "{}", content_type="application/json")
    assert response.status_code == 403 and response.json()["code"] == "not_store_staff"


def test_a_deactivated_staff_profile_loses_the_pos_on_the_next_request(client_a, clerk_a, shift_a):
    assert client_a.get(reverse("pos:sale")).status_code == 200
    clerk_a.staff.is_active = False
    clerk_a.staff.save(update_fields=["is_active"])
    assert client_a.get(reverse("pos:sale")).status_code == 403


def test_a_clerk_taken_off_the_store_in_their_session_goes_on_at_the_store_left(store_a, store_b, b_things):
    profile = StaffFactory(role=Role.CLERK, store=store_a)
    profile.memberships.create(store=store_b)
    client = login(profile.user)
    client.post(reverse("pos:store"), {"store": store_b.pk})
    assert client.get(reverse("pos:receipt", args=[b_things["sale"].number])).status_code == 200
    profile.memberships.filter(store=store_b).delete()
    assert client.get(reverse("pos:receipt", args=[b_things["sale"].number])).status_code == 404
    page = client.get(reverse("pos:sale"))
    assert page.status_code == 200 and store_a.name in page.content.decode()


def test_a_regional_manager_picks_among_the_regions_stores(store_a, store_b, b_things):
    store_b.city.region = store_a.city.region
    store_b.city.save(update_fields=["region"])
    profile = StaffFactory(role=Role.REGIONAL_MANAGER, region=store_a.city.region)
    client = login(profile.user)
    assert client.get(reverse("pos:sale"))["Location"] == reverse("pos:store")
    client.post(reverse("pos:store"), {"store": store_b.pk})
    assert client.get(reverse("pos:receipt", args=[b_things["sale"].number])).status_code == 200


def test_a_store_not_theirs_cannot_be_picked(client_a, store_b):
    assert client_a.post(reverse("pos:store"), {"store": store_b.pk}).status_code == 404


def test_a_login_without_a_store_gets_nothing(db):
    client = login(UserFactory())
    response = client.get(reverse("pos:sale"))
    assert response.status_code == 403 and "不属于任何门店" in response.content.decode()


def test_login_page_signs_a_clerk_in(clerk_a):
    from django.test import Client

    client = Client()
    page = client.get(reverse("pos:login")).content.decode()
    assert "门店收银登录" in page
    response = client.post(reverse("pos:login"), {"username": clerk_a.username, "password": "wrong"})
    assert "用户名或密码错误" in response.content.decode()
    response = client.post(reverse("pos:login"), {"username": clerk_a.username, "password": "pass-1234"})
    assert response["Location"] == reverse("pos:home")


def test_an_idle_login_is_signed_out(client_a, settings):
    settings.POS_IDLE_TIMEOUT_MINUTES = 30
    assert client_a.get(reverse("pos:shift")).status_code == 200
    session = client_a.session
    session["pos_seen"] = int(time.time()) - 31 * 60
    session.save()
    response = client_a.get(reverse("pos:shift"))
    assert response["Location"] == reverse("pos:login")
    assert client_a.get(reverse("pos:shift"))["Location"].startswith(reverse("pos:login"))


def test_forms_need_the_csrf_token(clerk_a, shift_a):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(clerk_a)
    assert client.post(reverse("pos:sale_scan"), {"code": "x"}).status_code == 403


def test_a_pickup_handover_uses_the_order_service(client_a, store_a, stocked):
    order = online_pickup_order(store_a, stocked[0], qty=2)
    page = client_a.get(reverse("pos:pickup")).content.decode()
    assert order.number in page  # waiting for pickup
    response = client_a.post(reverse("pos:pickup"), {"code": f"o2o:pickup:{order.pickup_code}"})
    html = response.content.decode()
    assert response.status_code == 200 and "确认交付" in html and order.number in html
    response = client_a.post(reverse("pos:pickup_handover"), {"code": order.pickup_code})
    assert f"订单 {order.number} 已交付" in response.content.decode()
    order.refresh_from_db()
    assert order.status == "picked_up"
    response = client_a.post(reverse("pos:pickup_handover"), {"code": order.pickup_code})
    assert response.status_code == 422  # not twice


def test_unknown_pickup_code(client_a):
    response = client_a.post(reverse("pos:pickup"), {"code": "00000000"})
    assert response.status_code == 422 and "未知的提货码" in response.content.decode()


def test_ship_from_store_start_pack_and_ship_with_tracking(client_a, store_a, stocked):
    order = online_ship_order(store_a, stocked[1], qty=2)
    page = client_a.get(reverse("pos:ship")).content.decode()
    assert order.number in page
    client_a.post(reverse("pos:ship_start", args=[order.pk]))
    shipment = order.shipments.get()
    client_a.post(reverse("pos:ship_pack", args=[shipment.pk]))
    response = client_a.post(reverse("pos:ship_send", args=[shipment.pk]), {"carrier": "", "tracking_number": ""})
    assert response.status_code == 422 and "请输入快递公司和运单号" in response.content.decode()
    client_a.post(reverse("pos:ship_send", args=[shipment.pk]), {"carrier": "顺丰", "tracking_number": "SF1234567"})
    order.refresh_from_db()
    shipment.refresh_from_db()
    assert order.status == "shipped" and shipment.tracking_number == "SF1234567"
    assert order.number not in client_a.get(reverse("pos:ship")).content.decode()
    response = client_a.post(reverse("pos:ship_start", args=[order.pk]))
    assert response.status_code == 404


def test_nothing_left_to_pick_is_an_error_next_to_the_order(client_a, store_a, stocked):
    order = online_ship_order(store_a, stocked[1])
    client_a.post(reverse("pos:ship_start", args=[order.pk]))
    response = client_a.post(reverse("pos:ship_start", args=[order.pk]))
    assert response.status_code == 422 and "本店没有待发货的商品" in response.content.decode()
    assert Order.objects.get(pk=order.pk).shipments.count() == 1


def test_a_cash_on_delivery_order_is_shipped_from_the_store_unpaid(client_a, store_a, stocked):
    from orders import services as order_services
    from orders.models import Channel, Fulfillment
    from orders.services import LineIn

    placed = order_services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_STORE,
                                        ship_city_id=store_a.city_id, ship_address="文三路 1 号",
                                        external_id="COD-1", customer_name="陈晨",
                                        lines=[LineIn(stocked[1].id, 1)]).order
    assert placed.number not in client_a.get(reverse("pos:ship")).content.decode()  # unpaid: not yet
    order_services.order_cod_choose(order=placed)

    assert placed.number in client_a.get(reverse("pos:ship")).content.decode()
    client_a.post(reverse("pos:ship_start", args=[placed.pk]))
    shipment = placed.shipments.get()
    client_a.post(reverse("pos:ship_pack", args=[shipment.pk]))
    client_a.post(reverse("pos:ship_send", args=[shipment.pk]), {"carrier": "顺丰", "tracking_number": "SF7654321"})
    placed.refresh_from_db()
    assert placed.status == "shipped" and placed.paid_at is None  # the courier collects the money
