"""买赠 returns, through the counter's return page and the API's returns endpoint: the goods back without
the gift withhold the gift's value; the gift brought back later gets that value refunded; both together
refund the goods in full.  Totals to the fen, and the ledgers audit clean after each step."""

import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from o2o.apiauth import SCOPES, partner_key_create
from orders.models import Order, OrderLinePromotion, Return
from pos.tests.conftest import htmx, login
from stores.models import Role
from tests.api.conftest import bearer, idem, pay, place, staff_client
from tests.test_promotions import clerk, goods, pos_basket, promotions  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
D = Decimal


def audit_clean():
    out = StringIO()
    call_command("audit_ledgers", stdout=out)  # raises CommandError on any violation
    assert "all ledgers consistent" in out.getvalue()


def counter_sale(client, lines) -> Order:
    uid, _ = pos_basket(client, lines)
    htmx(client, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "1000"})
    return Order.objects.get(client_uuid=uid)


def counter_return(client, order: Order, qty_by_line: dict[int, int]) -> Return:
    client.get(reverse("pos:returns"), {"q": order.number})  # by receipt
    page = client.get(reverse("pos:return_detail", args=[order.pk])).content.decode()
    uid = re.search(r'name="client_uuid" value="([^"]+)"', page).group(1)
    data = {"client_uuid": uid, "reason": "不想要了"}
    for line in order.lines.all():
        data[f"qty_{line.pk}"] = str(qty_by_line.get(line.pk, 0))
        data[f"condition_{line.pk}"] = "sellable"
    response = client.post(reverse("pos:return_detail", args=[order.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return Return.objects.get(client_uuid=uid)


def test_at_the_counter_the_gift_brought_back_later_gets_its_withheld_value_refunded(clerk, goods, promotions):
    shirt, _, socks = goods
    client = login(clerk)
    sale = counter_sale(client, [(shirt, 2), (socks, 1)])
    # shirts 198.00 − 49.50 (second half price) = 148.50; socks 19.90, free with two shirts.
    assert (sale.total, sale.paid_total) == (D("148.50"), D("148.50"))
    lines = {ln.sku_id: ln for ln in sale.lines.all()}

    # A back (one shirt), B (the socks) kept: one shirt no longer earns them, their 19.90 is withheld.
    first = counter_return(client, sale, {lines[shirt.id].pk: 1})
    assert first.refund_total == D("74.25") - D("19.90") == D("54.35")
    gift = OrderLinePromotion.objects.get(line__order=sale, code="SOCKS")
    assert (gift.gift_taken_back, gift.gift_value_taken_back) == (1, D("19.90"))
    audit_clean()

    # B back later: the 19.90 paid for it at A's return is refunded.
    second = counter_return(client, sale, {lines[socks.id].pk: 1})
    assert second.refund_total == D("19.90")
    assert second.lines.get().refund_amount == D("19.90")
    gift.refresh_from_db()
    assert (gift.gift_taken_back, gift.gift_value_taken_back) == (0, D("0.00"))
    sale.refresh_from_db()
    assert sale.refunded_total == D("74.25")  # exactly one shirt's share of the sale
    slip = client.get(reverse("pos:return_slip", args=[second.number])).content.decode()
    assert "¥19.90" in slip
    audit_clean()

    # The last shirt: its share, nothing withheld; the whole sale is refunded, not a fen more.
    last = counter_return(client, sale, {lines[shirt.id].pk: 1})
    assert last.refund_total == D("74.25")
    sale.refresh_from_db()
    assert sale.refunded_total == sale.paid_total == D("148.50")
    assert sum(ln.refunded_amount for ln in sale.lines.all()) == D("148.50")
    audit_clean()


def test_at_the_counter_the_goods_and_the_gift_together_refund_the_goods_in_full(clerk, goods, promotions):
    shirt, _, socks = goods
    client = login(clerk)
    sale = counter_sale(client, [(shirt, 2), (socks, 1)])
    lines = {ln.sku_id: ln for ln in sale.lines.all()}

    ret = counter_return(client, sale, {lines[shirt.id].pk: 2, lines[socks.id].pk: 1})

    assert ret.refund_total == D("148.50")
    by_line = {rl.order_line_id: rl.refund_amount for rl in ret.lines.all()}
    assert by_line == {lines[shirt.id].pk: D("148.50"), lines[socks.id].pk: D("0.00")}
    gift = OrderLinePromotion.objects.get(line__order=sale, code="SOCKS")
    assert (gift.gift_taken_back, gift.gift_value_taken_back) == (0, D("0.00"))
    audit_clean()


def test_through_the_api_the_gift_returned_after_the_goods_gets_its_value_back(store_a, goods, promotions):
    shirt, _, socks = goods
    _, raw = partner_key_create(name="mini program", channel="mini_program", scopes=SCOPES)
    client = bearer(raw)
    order = place(client, store=store_a, lines=[{"sku": shirt.id, "qty": 2}, {"sku": socks.id, "qty": 1}]).json()
    # Online: the same 148.50, and 满减 300−30 is not reached.
    assert order["total"] == "148.50"
    pay(client, order["id"])
    _, staff = staff_client(store_a, Role.CLERK)
    assert staff.post("/api/v1/pickups/handover/", {"code": order["pickup_code"]}, format="json",
                      **idem()).status_code == 200
    lines = {ln["sku"]: ln["id"] for ln in order["lines"]}
    url = f"/api/v1/orders/{order['id']}/returns/"

    goods_back = client.post(url, {"store": store_a.pk, "lines": [{"order_line": lines[shirt.id], "qty": 1}]},
                             format="json", **idem())
    assert goods_back.status_code == 201, goods_back.content
    assert goods_back.json()["refund_total"] == "54.35"
    gift_back = client.post(url, {"store": store_a.pk, "lines": [{"order_line": lines[socks.id], "qty": 1}]},
                            format="json", **idem())
    assert gift_back.status_code == 201, gift_back.content
    assert gift_back.json()["refund_total"] == "19.90"
    assert gift_back.json()["lines"] == [{"order_line": lines[socks.id], "qty": 1, "condition": "sellable",
                                          "refund_amount": "19.90"}]

    detail = client.get(f"/api/v1/orders/{order['id']}/").json()
    assert detail["refunded_total"] == "74.25"
    assert sum(D(p["amount"]) for p in detail["payments"] if p["status"] == "captured") == D("148.50")
    audit_clean()
    rest = client.post(url, {"store": store_a.pk, "lines": [{"order_line": lines[shirt.id], "qty": 1}]},
                       format="json", **idem())
    assert rest.json()["refund_total"] == "74.25"
    assert client.get(f"/api/v1/orders/{order['id']}/").json()["refunded_total"] == "148.50"
    audit_clean()


def test_the_audit_catches_a_gift_back_whose_withheld_value_was_kept(clerk, goods, promotions):  # noqa: F811
    shirt, _, socks = goods
    client = login(clerk)
    sale = counter_sale(client, [(shirt, 2), (socks, 1)])
    lines = {ln.sku_id: ln for ln in sale.lines.all()}
    counter_return(client, sale, {lines[shirt.id].pk: 1})
    counter_return(client, sale, {lines[socks.id].pk: 1})
    audit_clean()

    # Planted: the gift is back but its 19.90 still counts as withheld (as before the refund existed).
    OrderLinePromotion.objects.filter(line__order=sale, code="SOCKS").update(
        gift_taken_back=1, gift_value_taken_back=D("19.90"))
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=out)
    assert f"order {sale.number}: the gift of SOCKS is back but 1 unit(s), 19.90, are still withheld" in out.getvalue()
