"""Selling with the network cut, in a real headless Chromium against a live server: the offline till
sells from the catalogue kept in the browser across a reload, the queue syncs exactly once even when
the sync is cut and repeated, and sales queued in a closed browser sync when it opens again."""

import io
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from inventory import services as stock
from inventory.models import StockLevel, StockMove
from orders.models import Order
from payments import shifts
from pos.models import OfflineSale

from .test_browser import browser, live_server_idle  # noqa: F401 - the module-scoped Chromium

D = Decimal

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _server_idle_before_the_flush(live_server):
    yield
    live_server_idle()


def signed_in_context(browser, live_server, user, storage_state=None):
    context = browser.new_context(viewport={"width": 1024, "height": 768}, base_url=live_server.url,
                                  storage_state=storage_state)
    context.set_default_timeout(20000)
    if storage_state is None:
        client = Client()
        client.force_login(user)
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                              "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])
    return context


def till_ready(page):
    """The offline till has its catalogue and the service worker controls the page."""
    page.goto("/pos/offline/")
    page.wait_for_selector("[data-catalogue-status]:not([data-count='0'])")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null || "
                           "navigator.serviceWorker.ready.then(() => false)")
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")


def sell(page, n, shirt, jeans):
    """Sale n (1-based): a shirt, and a pair of jeans every fourth sale, paid in cash."""
    from playwright.sync_api import expect

    page.focus("#offline-scan")
    page.keyboard.type(shirt.barcode, delay=2)
    page.keyboard.press("Enter")
    due = "99.00"
    if n % 4 == 0:
        page.keyboard.type(jeans.code, delay=2)
        page.keyboard.press("Enter")
        due = "348.00"
    expect(page.locator("[data-offline-total]")).to_have_text(f"¥{due}")
    page.keyboard.press("F8")
    page.keyboard.type("500")
    page.keyboard.press("F9")
    expect(page.locator("#offline-receipt")).to_be_visible()
    expect(page.locator("[data-receipt-number]")).to_have_text(re.compile(rf"^HZ001-T[0-9A-F]{{6}}-{n:06d}$"))
    expect(page.locator("[data-receipt-total]")).to_have_text(f"¥{due}")
    return D(due)


def audit_clean():
    call_command("audit_ledgers", stdout=io.StringIO())


@pytest.fixture
def plenty(store_a, stocked):
    shirt, jeans = stocked
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(shirt.id, 25), (jeans.id, 7)])  # 30 shirts, 10 jeans
    return shirt, jeans


def test_twenty_offline_sales_across_a_reload_sync_once_even_when_the_sync_is_cut(
        browser, live_server, screenshot_dir, store_a, clerk_a, plenty, shift_a):
    from playwright.sync_api import expect

    shirt, jeans = plenty
    context = signed_in_context(browser, live_server, clerk_a)
    page = context.new_page()
    till_ready(page)
    context.set_offline(True)
    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-state", "offline")
    expect(connection.locator("[data-label]")).to_have_text("离线")
    expect(page.locator("[data-testid=offline-unavailable]")).to_contain_text("付款码")
    paid = D("0")
    for n in range(1, 11):
        paid += sell(page, n, shirt, jeans)
    reloaded = page.reload()  # the service worker serves the till; the queue is in IndexedDB
    assert reloaded.from_service_worker
    expect(connection).to_have_attribute("data-pending", "10")
    for n in range(11, 21):
        paid += sell(page, n, shirt, jeans)
    expect(connection).to_have_attribute("data-pending", "20")
    expect(connection.locator("[data-detail]")).to_have_text("20 笔离线销售待同步")
    page.screenshot(path=str(screenshot_dir / "pos-offline-till.png"))
    assert not Order.objects.exists()

    # The first sync's answer is lost on the way back (the server applied its batch): the till
    # sends that batch again, and the server answers it from the sales it already recorded.
    cuts = []

    def cut_once(route):
        if not cuts:
            cuts.append(route.fetch().status)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/pos/sync/", cut_once)
    context.set_offline(False)
    expect(connection).to_have_attribute("data-pending", "0", timeout=60000)
    expect(connection).to_have_attribute("data-state", "online")
    assert cuts == [200]
    page.reload()
    expect(page.locator("[data-offline-queue] tr")).to_have_count(0)
    context.close()

    orders = Order.objects.filter(channel="pos")
    assert orders.count() == 20 and OfflineSale.objects.count() == 20
    assert sum(o.total for o in orders) == paid == D("99.00") * 20 + D("249.00") * 5
    for order in orders:  # stock moved once per line
        moves = StockMove.objects.filter(reason="sale", reference=order.number)
        assert sorted((m.sku_id, m.qty) for m in moves) == sorted((ln.sku_id, -ln.qty) for ln in order.lines.all())
    assert StockLevel.objects.get(warehouse=store_a.warehouse, sku=shirt, bucket="sellable").on_hand == 10
    assert StockLevel.objects.get(warehouse=store_a.warehouse, sku=jeans, bucket="sellable").on_hand == 5
    assert shifts.shift_expected_cash(shift_a) == shift_a.opening_float + paid
    receipts = sorted(OfflineSale.objects.values_list("sequence", flat=True))
    assert receipts == list(range(1, 21))
    assert set(OfflineSale.objects.values_list("sold_by", flat=True)) == {clerk_a.pk}
    assert set(orders.values_list("created_by", flat=True)) == {clerk_a.pk}
    audit_clean()


def test_sales_queued_in_a_closed_browser_sync_when_it_opens_again(
        browser, live_server, screenshot_dir, store_a, clerk_a, plenty, shift_a):
    from playwright.sync_api import expect

    shirt, jeans = plenty
    context = signed_in_context(browser, live_server, clerk_a)
    page = context.new_page()
    till_ready(page)
    context.set_offline(True)
    for n in range(1, 4):
        sell(page, n, shirt, jeans)
    expect(page.locator("#connection")).to_have_attribute("data-pending", "3")
    saved = context.storage_state(indexed_db=True)
    context.close()
    assert not Order.objects.exists()

    reopened = signed_in_context(browser, live_server, clerk_a, storage_state=saved)
    page = reopened.new_page()
    page.goto("/pos/sale/")
    expect(page.locator("#connection")).to_have_attribute("data-pending", "0", timeout=60000)
    reopened.close()
    assert Order.objects.filter(channel="pos").count() == 3
    assert sorted(OfflineSale.objects.values_list("sequence", flat=True)) == [1, 2, 3]
    audit_clean()


def test_a_scan_while_the_network_is_down_is_queued_with_a_message_and_sent_on_reconnect(
        browser, live_server, screenshot_dir, store_a, clerk_a, plenty, shift_a):
    from playwright.sync_api import expect

    shirt, _ = plenty
    context = signed_in_context(browser, live_server, clerk_a)
    page = context.new_page()
    page.goto("/pos/sale/")
    context.set_offline(True)
    page.focus("#scan")
    page.keyboard.type(shirt.barcode, delay=2)
    page.keyboard.press("Enter")
    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-state", "offline")
    expect(connection.locator("[data-detail]")).to_contain_text("1 个扫码已排队")
    page.screenshot(path=str(screenshot_dir / "pos-offline-banner.png"))
    context.set_offline(False)
    expect(page.locator("[data-due]")).to_have_attribute("data-due", "99.00", timeout=20000)
    expect(connection).to_have_attribute("data-state", "online")
    context.close()


def test_a_complete_the_network_lost_is_sent_again_on_reconnect_and_makes_one_sale(
        browser, live_server, store_a, clerk_a, plenty, shift_a):
    from playwright.sync_api import expect

    shirt, _ = plenty
    context = signed_in_context(browser, live_server, clerk_a)
    page = context.new_page()
    page.goto("/pos/sale/")
    page.focus("#scan")
    page.keyboard.type(shirt.barcode, delay=2)
    page.keyboard.press("Enter")
    expect(page.locator("[data-due]")).to_have_attribute("data-due", "99.00")
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")
    page.fill("#id_cash_tendered", "100")
    context.set_offline(True)
    page.keyboard.press("F9")
    expect(page.locator("#connection [data-detail]")).to_contain_text("结账未发出，恢复连接后自动重发")
    assert not Order.objects.exists()
    context.set_offline(False)
    page.wait_for_url(re.compile(r".*/pos/receipts/PS\d+/$"), timeout=20000)
    context.close()
    order = Order.objects.get()
    assert (order.total, order.channel) == (D("99.00"), "pos")


def test_online_the_till_sells_through_the_server_shows_a_refusal_at_once_and_prices_the_member(
        browser, live_server, screenshot_dir, store_a, clerk_a, stocked, member, shift_a):
    """Online, the till completes each sale through /pos/till/complete/: out of stock is refused on
    the spot (the clerk fixes the basket), the member is priced by /pos/till/price/, and the sale is
    made at once with the member, nothing queued."""
    from playwright.sync_api import expect

    shirt, jeans = stocked  # store A: 5 shirts, 3 jeans
    context = signed_in_context(browser, live_server, clerk_a)
    page = context.new_page()
    till_ready(page)
    completes = []
    page.on("request", lambda r: completes.append(r.url) if r.url.endswith("/pos/till/complete/") else None)
    page.focus("#offline-scan")
    page.keyboard.type(shirt.barcode, delay=2)
    page.keyboard.press("Enter")
    qty = page.locator("[data-offline-lines] tr[data-sku='TS-001'] input.qty")
    qty.fill("6")
    qty.dispatch_event("change")
    expect(page.locator("[data-offline-total]")).to_have_text("¥594.00")
    page.keyboard.press("F8")
    page.keyboard.type("600")
    page.keyboard.press("F9")
    error = page.locator("[data-offline-error]")
    expect(error).to_have_text("本店 TS-001 库存不足。")
    expect(page.locator("#offline-receipt")).to_be_hidden()
    assert not Order.objects.exists() and len(completes) == 1

    qty = page.locator("[data-offline-lines] tr[data-sku='TS-001'] input.qty")
    qty.fill("2")
    qty.dispatch_event("change")
    page.focus("#offline-scan")
    page.keyboard.type(jeans.code, delay=2)
    page.keyboard.press("Enter")
    page.fill("#till-member", "13800138000")
    page.press("#till-member", "Enter")
    expect(page.locator("[data-till-member]")).to_have_text("会员 王芳 · 5000 积分")
    expect(page.locator("#offline-till")).to_have_attribute("data-priced", "1")
    expect(page.locator("[data-offline-total]")).to_have_text("¥447.00")
    page.fill("#offline-pay [name=cash_tendered]", "500")
    page.keyboard.press("F9")
    receipt = page.locator("#offline-receipt")
    expect(receipt).to_be_visible()
    expect(receipt).to_have_attribute("data-mode", "online")
    expect(page.locator("[data-receipt-number]")).to_have_text(re.compile(r"^PS\d+$"))
    expect(page.locator("[data-receipt-total]")).to_have_text("¥447.00")
    expect(page.locator("[data-receipt-change]")).to_have_text("¥53.00")
    page.screenshot(path=str(screenshot_dir / "pos-till-online.png"))
    expect(page.locator("#connection")).to_have_attribute("data-pending", "0")
    context.close()

    order = Order.objects.get()
    assert (order.total, order.member_id, order.created_by_id) == (D("447.00"), member.pk, clerk_a.pk)
    assert not OfflineSale.objects.exists()
    assert StockLevel.objects.get(warehouse=store_a.warehouse, sku=shirt, bucket="sellable").on_hand == 3
    assert StockLevel.objects.get(warehouse=store_a.warehouse, sku=jeans, bucket="sellable").on_hand == 2
    assert shifts.shift_expected_cash(shift_a) == shift_a.opening_float + D("447.00")
    audit_clean()
