"""The API says which promotion took how much off each line: the create response, the order read
and the list carry per-line ``promotions`` and the order's ``promotion_discount``."""

from decimal import Decimal

import pytest

from o2o.apiauth import SCOPES, partner_key_create
from orders.models import OrderLinePromotion
from tests.api.conftest import bearer, place
from tests.test_promotions import goods, promotions  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
D = Decimal


def test_the_order_lists_each_lines_promotions_and_their_total(store_a, goods, promotions):  # noqa: F811
    shirt, jeans, socks = goods
    _, raw = partner_key_create(name="mini program", channel="mini_program", scopes=SCOPES)
    client = bearer(raw)

    created = place(client, store=store_a, lines=[{"sku": shirt.id, "qty": 2}, {"sku": socks.id, "qty": 1},
                                                  {"sku": jeans.id, "qty": 1}])

    assert created.status_code == 201, created.content
    body = created.json()
    # By hand: shirts 198.00 − 49.50 (second half price); socks 19.90 free (gift); jeans 249 → 199
    # (−50.00); then 满减 300−30 on 347.50: −30.00.  Total off: 149.40; due 317.50.
    assert (body["promotion_discount"], body["discount_total"], body["total"]) == ("149.40", "149.40", "317.50")
    lines = {ln["sku"]: ln for ln in body["lines"]}
    by_code: dict[str, Decimal] = {}
    for ln in body["lines"]:
        assert sum((D(p["amount"]) for p in ln["promotions"]), D("0")) == D(ln["discount"])
        for p in ln["promotions"]:
            by_code[p["code"]] = by_code.get(p["code"], D("0")) + D(p["amount"])
    assert by_code == {"SHIRT2": D("49.50"), "SOCKS": D("19.90"), "JEANS": D("50.00"), "M300": D("30.00")}
    gift = next(p for p in lines[socks.id]["promotions"] if p["code"] == "SOCKS")
    socks_promo = next(p for p in promotions if p.code == "SOCKS")
    assert gift == {"promotion": socks_promo.pk, "code": "SOCKS", "name": "买二赠袜", "kind": "gift",
                    "amount": "19.90", "gift_qty": 1}
    assert lines[socks.id]["line_total"] == "0.00"
    assert {p["kind"] for p in lines[jeans.id]["promotions"]} == {"special_price", "threshold_off"}

    read = client.get(f"/api/v1/orders/{body['id']}/")
    assert read.status_code == 200
    assert read.json()["lines"] == body["lines"]
    assert read.json()["promotion_discount"] == "149.40"
    listed = client.get("/api/v1/orders/").json()["results"]
    assert [(o["id"], o["promotion_discount"]) for o in listed] == [(body["id"], "149.40")]
    assert OrderLinePromotion.objects.filter(line__order_id=body["id"]).count() == sum(
        len(ln["promotions"]) for ln in body["lines"])


def test_an_order_without_promotions_says_so(store_a, goods):  # noqa: F811
    shirt, _, _ = goods
    _, raw = partner_key_create(name="mini program", channel="mini_program", scopes=SCOPES)

    body = place(bearer(raw), store=store_a, lines=[{"sku": shirt.id, "qty": 2}]).json()

    assert body["promotion_discount"] == "0.00"
    assert body["lines"][0]["promotions"] == []


def test_the_schema_documents_the_promotions_of_a_line(client):
    schema = client.get("/api/v1/schema/?format=json")
    assert schema.status_code == 200, schema.status_code
    text = schema.content.decode()
    assert "OrderLinePromotionOut" in text and "promotion_discount" in text
