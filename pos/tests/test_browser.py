"""The POS in a real headless Chromium against a live server: keystrokes, htmx swaps, printing pages.

One browser for the module; each flow gets a fresh 1024×768 context.  The screenshots of the main
screens go to build/screenshots/; `make screenshots` refreshes docs/screenshots/.
"""

import os
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client

from members.codes import member_code_mint
from orders import services as order_services
from orders.models import Order, Return
from payments import shifts
from payments.models import Payment, PosShift

from .conftest import online_pickup_order, pos_sale

D = Decimal

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser(chromium_launch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls of the tests are
    # still plain synchronous code, run one at a time.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(**chromium_launch)
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def live_server_idle(seconds: float = 15) -> None:
    """Wait until no other connection to the test database is running a statement or holds a
    transaction open: a request the page sent by itself (a catalogue refresh, a sync) may still be
    answering after the browser closed, and the flush after the test would deadlock with it."""
    import time

    from django.db import connection

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')")
            if not cur.fetchone()[0]:
                return
        time.sleep(0.05)


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1024, "height": 768}, base_url=live_server.url)
    context.set_default_timeout(15000)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    yield tab
    context.close()
    live_server_idle()


@pytest.fixture
def shot(screenshot_dir):
    def take(page, name):
        page.screenshot(path=str(screenshot_dir / name))

    return take


@pytest.fixture
def sign_in_as(page, live_server):
    """Reuse a session made on the server instead of typing the login again."""

    def sign_in(user):
        # Leave the previous clerk's page first: a request of theirs still in flight (a timer, a
        # background refresh) would otherwise answer with their session cookie after the switch.
        page.goto("about:blank")
        page.context.clear_cookies()
        client = Client()
        client.force_login(user)
        page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                                   "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])

    return sign_in


def settled(page):
    """Wait until htmx has no request in flight and has finished swapping and settling."""
    page.wait_for_function("() => !document.querySelector("
                           "'.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")


def scan(page, code):
    """What a USB scanner does: type the code into whatever has focus, then Enter, at keyboard speed."""
    page.keyboard.type(code, delay=5)
    page.keyboard.press("Enter")


def test_a_shift_and_a_sale_with_member_coupon_points_and_split_tender(page, shot, store_a, clerk_a, stocked,
                                                                        member, coupon, guide_a):
    from playwright.sync_api import expect

    shirt, jeans = stocked
    clerk_a.set_password("clerk-pass-2026")
    clerk_a.save()
    page.goto("/pos/login/")
    page.fill("#id_username", clerk_a.username)
    page.fill("#id_password", "clerk-pass-2026")
    page.keyboard.press("Enter")
    page.wait_for_url("**/pos/shift/")
    page.fill("#id_opening_float", "500")
    page.keyboard.press("Enter")
    page.wait_for_url("**/pos/sale/")

    scan(page, jeans.barcode)
    scan(page, shirt.barcode)
    scan(page, shirt.barcode)
    expect(page.locator("[data-due]")).to_have_attribute("data-due", "447.00")
    scan(page, "6901234567892")
    expect(page.locator("#scan-error")).to_contain_text("未知的条码")
    page.keyboard.press("F4")
    # the member's dynamic code from her app: it names her and proves she is here (points may pay)
    page.keyboard.type(member_code_mint(member=member).code)
    page.keyboard.press("Enter")
    expect(page.locator(".memberinfo")).to_contain_text("王芳")
    settled(page)
    page.fill("#coupon", coupon.code)
    page.press("#coupon", "Enter")
    expect(page.locator("[data-testid=coupon-discount]")).to_contain_text("20.00")
    settled(page)
    with page.expect_response("**/pos/sale/guide/"):
        page.select_option("#guide", str(guide_a.pk))
    settled(page)
    expect(page.locator("#guide")).to_have_value(str(guide_a.pk))
    page.fill("#id_points", "1000")  # 10.00
    page.fill("#id_card_amount", "200")
    page.fill("#id_card_reference", "UP889201")
    page.keyboard.press("F8")
    page.keyboard.type("220")
    expect(page.locator("[data-change]")).to_have_text("¥3.00")  # 427 − 10 − 200 = 217 in cash
    shot(page, "pos-sale.png")
    page.keyboard.press("F9")
    page.wait_for_url(re.compile(r".*/pos/receipts/PS\d+/$"))
    expect(page.locator("[data-testid=change]")).to_have_text("¥3.00")
    shot(page, "pos-receipt.png")

    order = Order.objects.get()
    assert (order.total, order.member_id, order.guide_id) == (D("427.00"), member.pk, guide_a.pk)
    tenders = dict(Payment.objects.filter(reference=order.number).values_list("tender", "amount"))
    assert tenders == {"points": D("10.00"), "unionpay_card": D("200.00"), "cash": D("217.00")}


def test_return_of_an_online_order_at_the_counter(page, shot, sign_in_as, store_a, store_b, clerk_a, clerk_b, stocked,
                                                  shift_a):
    from playwright.sync_api import expect

    shirt, _ = stocked
    order = online_pickup_order(store_b, shirt, qty=2)
    order_services.pickup_handover(code=order.pickup_code, store=store_b, actor=clerk_b)
    sign_in_as(clerk_a)
    page.goto("/pos/returns/")
    page.keyboard.type(order.number)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/pos/returns/{order.pk}/")
    line = order.lines.get()
    page.fill(f"input[name=qty_{line.pk}]", "1")
    page.select_option(f"select[name=condition_{line.pk}]", "damaged")
    page.fill("#id_reason", "有污渍")
    shot(page, "pos-return.png")
    page.get_by_role("button", name="退货退款").click()
    page.wait_for_url("**/pos/returns/slip/**")
    expect(page.locator("[data-testid=refund-total]")).to_have_text("¥99.00")
    ret = Return.objects.get()
    assert ret.store == store_a and ret.order == order


def test_pickup_handover_by_scanned_code(page, shot, sign_in_as, store_a, clerk_a, stocked):
    from playwright.sync_api import expect

    order = online_pickup_order(store_a, stocked[1])
    sign_in_as(clerk_a)
    page.goto("/pos/pickup/")
    # the scanner types into the code field once the page has given it the focus
    expect(page.locator("#id_code")).to_be_focused()
    page.keyboard.type(f"o2o:pickup:{order.pickup_code}")
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=pickup-order]")).to_contain_text(order.number)
    shot(page, "pos-pickup.png")
    page.keyboard.press("Enter")  # the confirm button has the focus
    expect(page.locator("[data-testid=handed]")).to_contain_text(order.number)
    order.refresh_from_db()
    assert order.status == "picked_up"


def test_shift_close_with_a_count_that_is_short(page, shot, sign_in_as, store_a, clerk_a, stocked, shift_a):
    from playwright.sync_api import expect

    pos_sale(store_a, clerk_a, stocked[0], qty=2)  # 198.00 cash: 398.00 expected
    shifts.shift_cash_move(shift=shift_a, kind="out", amount=D("100"), reason="存入保险柜", actor=clerk_a)
    sign_in_as(clerk_a)
    page.goto("/pos/shift/")
    for denomination, count in (("100", "2"), ("50", "1"), ("20", "2"), ("5", "1"), ("1", "2"), ("0.5", "1")):
        page.fill(f"input[name='count_{denomination}']", count)
    expect(page.locator("[data-count-total]")).to_have_text("¥297.50")
    page.get_by_role("button", name="关班并打印 Z 报表").click()
    page.wait_for_url("**/pos/shifts/**")
    # the label says short; the amount carries no sign (短款 ¥0.50, not 短款 ¥-0.50)
    expect(page.locator("[data-testid=over-short]")).to_have_text("¥0.50")
    expect(page.locator("tr.total.short")).to_contain_text("短款")
    shot(page, "pos-shift-close.png")
    shift = PosShift.objects.get(pk=shift_a.pk)
    assert (shift.expected_cash, shift.counted_cash, shift.over_short) == (D("298.00"), D("297.50"), D("-0.50"))


def test_a_sale_paid_by_a_scanned_payment_code(page, shot, sign_in_as, store_a, clerk_a, stocked, shift_a):
    from playwright.sync_api import expect

    shirt, _ = stocked
    sign_in_as(clerk_a)
    page.goto("/pos/sale/")
    scan(page, shirt.barcode)
    expect(page.locator("[data-due]")).to_have_attribute("data-due", "99.00")
    settled(page)
    page.keyboard.press("F7")
    scan(page, "134567890123450001")  # the sandbox declines it: insufficient balance
    expect(page.locator("[data-testid=payment-code-error]")).to_be_visible()
    shot(page, "pos-sale-payment-code-declined.png")
    assert not Order.objects.exists()
    settled(page)
    expect(page.locator("#id_payment_code")).to_be_focused()
    scan(page, "134567890123456789")  # the customer's next code: WeChat Pay takes the 99.00
    page.wait_for_url(re.compile(r".*/pos/receipts/PS\d+/$"))
    expect(page.locator("[data-testid=receipt-tender-wechat_pay]")).to_contain_text("微信支付")
    shot(page, "pos-receipt-payment-code.png")
    order = Order.objects.get()
    assert list(Payment.objects.filter(status="captured").values_list("reference", "tender", "amount")) == [
        (order.number, "wechat_pay", D("99.00"))]


def test_the_sale_screen_fits_1024x768_and_shows_what_is_left_to_collect(page, shot, sign_in_as, store_a, clerk_a,
                                                                         stocked, member, coupon, guide_a, shift_a):
    from playwright.sync_api import expect

    shirt, jeans = stocked
    sign_in_as(clerk_a)
    page.goto("/pos/sale/")
    scan(page, jeans.barcode)
    scan(page, shirt.barcode)
    expect(page.locator("[data-due]")).to_have_attribute("data-due", "348.00")
    settled(page)
    # a product found by its name, not its barcode
    page.focus("#scan")
    page.keyboard.type("纯棉")
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=search-results]")).to_contain_text(shirt.name)
    settled(page)
    page.keyboard.press("Enter")  # the first match has the focus
    expect(page.locator("[data-due]")).to_have_attribute("data-due", "447.00")
    settled(page)
    page.keyboard.press("F4")
    # the member's dynamic code from her app: it names her and proves she is here (points may pay)
    page.keyboard.type(member_code_mint(member=member).code)
    page.keyboard.press("Enter")
    expect(page.locator(".memberinfo")).to_contain_text("王芳")
    settled(page)
    expect(page.locator("[data-testid=member-coupons]")).to_contain_text(coupon.template.name)
    with page.expect_response("**/pos/sale/guide/"):  # another redraw of the sale keeps the offer
        page.select_option("#guide", str(guide_a.pk))
    settled(page)
    # her coupons are offered under her name: one click applies it
    page.locator("[data-testid=member-coupons] button", has_text=coupon.template.name).click()
    expect(page.locator("[data-testid=coupon-discount]")).to_contain_text("20.00")
    expect(page.locator("#coupon")).to_have_value(coupon.code)
    settled(page)

    # split the tenders: points show their value, the still-due line counts down to zero
    page.fill("#id_points", "1000")
    expect(page.locator("[data-testid=points-value]")).to_have_text("= ¥10.00")
    page.fill("#id_card_amount", "200")
    page.fill("#id_card_reference", "UP889201")
    expect(page.locator("[data-remaining]")).to_have_text("¥217.00")
    page.keyboard.press("F8")
    page.keyboard.type("100")
    expect(page.locator("[data-remaining]")).to_have_text("¥117.00")
    expect(page.locator("[data-change]")).to_have_text("¥0.00")
    page.fill("#id_cash_tendered", "220")
    expect(page.locator("[data-remaining]")).to_have_text("¥0.00")
    expect(page.locator("[data-change]")).to_have_text("¥3.00")

    # everything, the complete button included, is on the 1024×768 screen without scrolling
    complete = page.locator("button.complete").bounding_box()
    assert complete["y"] + complete["height"] <= 768, complete
    panel = page.eval_on_selector(".panel", "p => [p.scrollHeight, p.clientHeight]")
    assert panel[0] <= panel[1], f"the panel scrolls: {panel}"
    shot(page, "pos-sale-1024x768.png")

    # the shortcut sheet
    page.locator("#scan").focus()
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    expect(page.locator("#shortcuts")).to_contain_text("Alt 1")
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).to_be_hidden()

    page.keyboard.press("F9")
    page.wait_for_url(re.compile(r".*/pos/receipts/PS\d+/$"))
    expect(page.locator("[data-testid=points-frozen]")).to_be_visible()
    order = Order.objects.get()
    assert order.total == D("427.00") and order.lines.count() == 2
