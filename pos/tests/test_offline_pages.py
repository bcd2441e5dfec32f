"""The connection light on the POS pages, the offline till page, its service worker and manifest,
and the catalogue snapshot the till keeps for selling offline."""

from decimal import Decimal

import pytest

from .conftest import login

D = Decimal


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/pos/sale/", "/pos/shift/", "/pos/returns/"])
def test_every_pos_page_shows_the_connection_light_in_chinese(store_a, stocked, clerk_a, shift_a, url):
    page = login(clerk_a).get(url).content.decode()
    assert 'id="connection"' in page and 'role="status"' in page
    assert 'data-text-offline="离线"' in page and 'data-text-syncing="同步中 {count} 笔"' in page
    assert "网络已断开：{count} 个扫码已排队" in page
    assert "pos/connection.js" in page


@pytest.mark.django_db(transaction=True)  # levels stamp updated_at with their commit's transaction time
def test_the_catalogue_snapshot_prices_as_the_counter_and_is_incremental(store_a, stocked, clerk_a, shift_a):
    import json

    from django.utils import timezone

    from inventory import services as stock
    from orders.models import Order
    from promotions.tests.factories import promotion

    shirt, jeans = stocked
    promotion(code="JEANS", name="牛仔裤限时特价", kind="special_price", price=D("199.00"), skus=[jeans])
    client = login(clerk_a)
    full = client.get("/pos/offline/catalogue/")
    assert full.status_code == 200 and full["Cache-Control"].startswith("max-age=0")
    body = full.json()
    assert body["full"] is True and body["store"] == "HZ001"
    items = {i["code"]: i for i in body["items"]}
    assert set(items) == {"TS-001", "JN-001"}  # store A's sellable SKUs (store B's level is not here)
    assert (items["TS-001"]["price"], items["TS-001"]["stock"], items["TS-001"]["barcode"]) == (
        "99.00", 5, shirt.barcode)
    assert items["JN-001"]["price"] == "199.00"  # the item promotion the counter applies
    # A sale at the snapshot's price syncs without a price conflict.
    sale = {"client_uuid": "7b0c5f0e-3f5e-4d49-9d7c-2f1d2b0c9a11", "till": "T1", "sequence": 1,
            "receipt_number": "HZ001-T1-000001", "sold_at": timezone.now().isoformat(),
            "lines": [{"sku_id": jeans.pk, "qty": 1, "unit_price": items["JN-001"]["price"]}],
            "tenders": [{"tender": "cash", "amount": "199.00"}]}
    result = client.post("/pos/sync/", json.dumps({"sales": [sale]}), content_type="application/json").json()
    assert result["results"][0]["status"] == "recorded" and "conflicts" not in result["results"][0]
    assert Order.objects.get().total == D("199.00")

    since = timezone.now()
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(shirt.pk, 2)])
    delta = client.get("/pos/offline/catalogue/", {"updated_since": since.isoformat()}).json()
    assert delta["full"] is False
    assert [(i["code"], i["stock"]) for i in delta["items"]] == [("TS-001", 7)]
    bad = client.get("/pos/offline/catalogue/", {"updated_since": "yesterday"})
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_input")


@pytest.mark.django_db
def test_the_offline_till_installs_as_an_app(store_a, stocked, clerk_a, shift_a):
    from django.test import Client

    client = login(clerk_a)
    till = client.get("/pos/offline/").content.decode()
    assert 'id="offline-till"' in till and 'data-store="HZ001"' in till
    assert "离线时不可用" in till and "微信/支付宝付款码" in till and "会员查询和注册" in till
    assert 'rel="manifest"' in till and "vendor/idb/umd.js" in till
    worker = Client().get("/pos/sw.js")  # the browser fetches it without asking
    assert worker.status_code == 200 and worker["Content-Type"].startswith("text/javascript")
    assert worker["Service-Worker-Allowed"] == "/pos/"
    text = worker.content.decode()
    assert "vendor/workbox-sw/workbox-sw.js" in text and "workbox-routing.prod.js" in text
    assert '"/pos/offline/"' in text and "/static/pos/offline-till.js" in text
    manifest = Client().get("/pos/manifest.webmanifest").json()
    assert (manifest["start_url"], manifest["scope"], manifest["display"]) == ("/pos/sale/", "/pos/", "standalone")
    assert Client().get("/pos/offline/catalogue/").status_code == 401


@pytest.mark.django_db
def test_the_tills_own_calls_do_not_keep_an_idle_clerk_signed_in(store_a, stocked, clerk_a, shift_a, settings):
    import json
    import time

    from pos.views import SEEN_KEY

    client = login(clerk_a)
    client.get("/pos/sale/")  # the clerk at the till
    session = client.session
    session[SEEN_KEY] = int(time.time()) - 29 * 60
    session.save()
    assert client.get("/pos/offline/catalogue/").status_code == 200  # the page's timer, 29 minutes later
    assert client.session[SEEN_KEY] == session[SEEN_KEY]  # not counted as the clerk's activity
    session = client.session
    session[SEEN_KEY] = int(time.time()) - 31 * 60
    session.save()
    gone = client.post("/pos/sync/", json.dumps({"sales": [{}]}), content_type="application/json")
    assert (gone.status_code, gone.json()["code"]) == (401, "not_signed_in")


@pytest.mark.django_db
def test_a_catalogue_refresh_in_flight_does_not_undo_the_receipt_the_clerk_just_looked_up(
        store_a, store_b, stocked, clerk_a, clerk_b, shift_a, monkeypatch):
    """Every POS page refreshes the till's catalogue in the background as it opens.  A clerk who types
    a receipt number meanwhile marks that order as found by its receipt in the session; the refresh,
    answering later, must not write back the session it read before that, or the return would ask a
    manager for a no-receipt approval."""
    import pos.offline_views as offline_views
    from orders import services as order_services
    from orders.models import Return

    from .conftest import online_pickup_order

    order = online_pickup_order(store_b, stocked[0], qty=2)
    order_services.pickup_handover(code=order.pickup_code, store=store_b, actor=clerk_b)
    clerk = login(clerk_a)
    clerk.get("/pos/returns/")
    snapshot = offline_views.offline_catalogue

    def slow_snapshot(*args, **kwargs):
        # The clerk's search, with the same session cookie, answered while the refresh is running.
        found = clerk.get("/pos/returns/", {"q": order.number})
        assert found.status_code == 302 and found["Location"] == f"/pos/returns/{order.pk}/"
        return snapshot(*args, **kwargs)

    monkeypatch.setattr(offline_views, "offline_catalogue", slow_snapshot)
    assert clerk.get("/pos/offline/catalogue/").status_code == 200
    line = order.lines.get()
    page = clerk.get(f"/pos/returns/{order.pk}/").content.decode()
    form = {"client_uuid": page.split('name="client_uuid" value="')[1].split('"')[0],
            f"qty_{line.pk}": "1", f"condition_{line.pk}": "damaged", "reason": "有污渍"}
    done = clerk.post(f"/pos/returns/{order.pk}/", form)
    assert done.status_code == 302 and done["Location"].startswith("/pos/returns/slip/")
    assert Return.objects.get().order == order
