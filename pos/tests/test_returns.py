"""Returns and exchanges at the counter: by receipt or by phone, online orders included."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from inventory.models import StockLevel
from orders import services as order_services
from orders.models import Order, Return
from payments import shifts
from payments.models import ApprovalLog, Payment, Refund

from .conftest import MANAGER_PIN, htmx, online_pickup_order, pos_sale

pytestmark = pytest.mark.django_db
D = Decimal


def level(store, sku, bucket="sellable"):
    found = StockLevel.objects.filter(warehouse=store.warehouse, sku=sku, bucket=bucket).first()
    return found.on_hand if found else 0


def return_uuid(html: str) -> str:
    return re.search(r'name="client_uuid" value="([^"]+)"', html).group(1)


def test_return_by_receipt_refunds_cash_from_the_drawer(client_a, store_a, clerk_a, stocked, shift_a):
    shirt, _ = stocked
    order = pos_sale(store_a, clerk_a, shirt, qty=2)
    response = client_a.get(reverse("pos:returns"), {"q": order.number})
    assert response["Location"] == reverse("pos:return_detail", args=[order.pk])
    page = client_a.get(response["Location"]).content.decode()
    line = order.lines.get()
    response = client_a.post(reverse("pos:return_detail", args=[order.pk]), {
        "client_uuid": return_uuid(page), f"qty_{line.pk}": "1", f"condition_{line.pk}": "damaged",
        "reason": "尺码不合适"})
    ret = Return.objects.get()
    assert response["Location"] == reverse("pos:return_slip", args=[ret.number])
    assert ret.refund_total == D("99.00") and ret.store == store_a
    assert level(store_a, shirt, "damaged") == 1
    refund = Refund.objects.get()
    assert refund.method == "cash" and refund.amount == D("99.00")
    assert shifts.shift_expected_cash(shift_a) == D("299.00")  # 200 + 198 − 99
    slip = client_a.get(response["Location"]).content.decode()
    assert ret.number in slip and "¥99.00" in slip
    assert not ApprovalLog.objects.exists()


def test_a_resubmitted_return_is_taken_once(client_a, store_a, clerk_a, stocked, shift_a):
    order = pos_sale(store_a, clerk_a, stocked[0], qty=2)
    client_a.get(reverse("pos:returns"), {"q": order.number})
    page = client_a.get(reverse("pos:return_detail", args=[order.pk])).content.decode()
    line = order.lines.get()
    data = {"client_uuid": return_uuid(page), f"qty_{line.pk}": "1", f"condition_{line.pk}": "sellable"}
    first = client_a.post(reverse("pos:return_detail", args=[order.pk]), data)
    second = client_a.post(reverse("pos:return_detail", args=[order.pk]), data)
    assert first["Location"] == second["Location"]
    assert Return.objects.count() == 1 and Refund.objects.count() == 1


def test_an_online_order_from_another_store_is_returned_here(client_a, store_a, store_b, clerk_b, stocked,
                                                             shift_a):
    shirt, _ = stocked
    order = online_pickup_order(store_b, shirt)
    order_services.pickup_handover(code=order.pickup_code, store=store_b, actor=clerk_b)
    client_a.get(reverse("pos:returns"), {"q": order.number})
    page = client_a.get(reverse("pos:return_detail", args=[order.pk])).content.decode()
    assert "微信小程序" in page
    line = order.lines.get()
    client_a.post(reverse("pos:return_detail", args=[order.pk]), {
        "client_uuid": return_uuid(page), f"qty_{line.pk}": "1", f"condition_{line.pk}": "sellable"})
    ret = Return.objects.get()
    refund = Refund.objects.get()
    assert ret.store == store_a and level(store_a, shirt) == 6
    assert refund.method == "original" and refund.payment.tender == "sandbox"  # back to the account, not the drawer
    assert shifts.shift_expected_cash(shift_a) == D("200.00")


def test_found_by_phone_needs_a_manager_for_a_refund_without_receipt(client_a, store_a, clerk_a, manager_a, stocked,
                                                                     shift_a):
    shirt, _ = stocked
    order = pos_sale(store_a, clerk_a, shirt, phone="+8613800138000")
    response = client_a.get(reverse("pos:returns"), {"q": "138 0013 8000"})
    html = response.content.decode()
    assert order.number in html and "无小票退货需要店长授权" in html
    page = client_a.get(reverse("pos:return_detail", args=[order.pk])).content.decode()
    line = order.lines.get()
    data = {"client_uuid": return_uuid(page), f"qty_{line.pk}": "1", f"condition_{line.pk}": "sellable"}
    response = client_a.post(reverse("pos:return_detail", args=[order.pk]), data)
    assert "店长授权" in response.content.decode() and not Return.objects.exists()
    response = client_a.post(reverse("pos:return_detail", args=[order.pk]), {**data, "pin": "0000"})
    assert response.status_code == 422 and not Return.objects.exists()
    response = client_a.post(reverse("pos:return_detail", args=[order.pk]), {**data, "pin": MANAGER_PIN,
                                                                             "approval_reason": "小票遗失"})
    ret = Return.objects.get()
    log = ApprovalLog.objects.get()
    assert (log.action, log.clerk, log.manager, log.reference, log.reason) == (
        "refund_no_receipt", clerk_a, manager_a, ret.number, "小票遗失")


def test_a_late_return_needs_a_manager_recorded_on_the_return(client_a, store_a, clerk_a, manager_a, stocked,
                                                              shift_a):
    order = pos_sale(store_a, clerk_a, stocked[0])
    Order.objects.filter(pk=order.pk).update(handed_over_at=order.handed_over_at - timedelta(days=30))
    client_a.get(reverse("pos:returns"), {"q": order.number})
    page = client_a.get(reverse("pos:return_detail", args=[order.pk])).content.decode()
    assert "超出退货期" in page
    line = order.lines.get()
    client_a.post(reverse("pos:return_detail", args=[order.pk]), {
        "client_uuid": return_uuid(page), f"qty_{line.pk}": "1", f"condition_{line.pk}": "sellable",
        "pin": MANAGER_PIN})
    ret = Return.objects.get()
    assert ret.approved_by == manager_a
    assert ApprovalLog.objects.get().action == "late_return"


def test_return_errors_are_shown(client_a, store_a, clerk_a, stocked, shift_a):
    order = pos_sale(store_a, clerk_a, stocked[0])
    client_a.get(reverse("pos:returns"), {"q": order.number})
    page = client_a.get(reverse("pos:return_detail", args=[order.pk])).content.decode()
    line = order.lines.get()
    response = client_a.post(reverse("pos:return_detail", args=[order.pk]), {
        "client_uuid": return_uuid(page), f"qty_{line.pk}": "0", f"condition_{line.pk}": "sellable"})
    assert response.status_code == 422 and "请至少在一行输入退货数量" in response.content.decode()
    response = client_a.post(reverse("pos:return_detail", args=[order.pk]), {
        "client_uuid": return_uuid(page), f"qty_{line.pk}": "2", f"condition_{line.pk}": "sellable"})
    assert response.status_code == 422
    assert not Return.objects.exists()


def test_no_refund_without_an_open_shift(client_a, store_a, clerk_a, stocked, shift_a):
    order = pos_sale(store_a, clerk_a, stocked[0])
    shifts.shift_close(shift=shift_a, actor=clerk_a, counts={"100": 3})
    client_a.get(reverse("pos:returns"), {"q": order.number})
    page = client_a.get(reverse("pos:return_detail", args=[order.pk])).content.decode()
    line = order.lines.get()
    response = client_a.post(reverse("pos:return_detail", args=[order.pk]), {
        "client_uuid": return_uuid(page), f"qty_{line.pk}": "1", f"condition_{line.pk}": "sellable"})
    assert response.status_code == 422 and "没有打开的班次" in response.content.decode()
    assert not Return.objects.exists()


def test_exchange_returns_a_shirt_for_jeans_paying_the_difference(client_a, store_a, clerk_a, stocked, shift_a):
    shirt, jeans = stocked
    order = pos_sale(store_a, clerk_a, shirt)
    client_a.get(reverse("pos:returns"), {"q": order.number})
    page = client_a.get(reverse("pos:return_detail", args=[order.pk])).content.decode()
    line = order.lines.get()
    response = client_a.post(reverse("pos:return_detail", args=[order.pk]), {
        "client_uuid": return_uuid(page), f"qty_{line.pk}": "1", f"condition_{line.pk}": "sellable",
        "exchange": "1"})
    assert response["Location"] == reverse("pos:sale")
    page = client_a.get(reverse("pos:sale")).content.decode()
    uid = re.search(r'name="client_uuid" value="([^"]+)"', page).group(1)
    response = htmx(client_a, reverse("pos:sale_scan"), {"code": jeans.barcode})
    assert 'data-due="150.00"' in response.content.decode()  # 249 − 99 credit
    response = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "200"})
    new = Order.objects.get(client_uuid=uid)
    assert response["HX-Redirect"] == reverse("pos:receipt", args=[new.number])
    ret = Return.objects.get()
    assert ret.exchange_order == new
    tenders = {p.tender: p.amount for p in Payment.objects.filter(reference=new.number)}
    assert tenders == {"exchange_credit": D("99.00"), "cash": D("150.00")}
    assert level(store_a, shirt) == 5 and level(store_a, jeans) == 2
