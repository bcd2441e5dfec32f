"""Park and recall in a real headless Chromium: one clerk parks a sale, a colleague recalls and completes it."""

import re
from decimal import Decimal

import pytest

from orders.models import Order
from pos.models import PosBasket
from stores.models import Role
from stores.tests.factories import StaffFactory

from .test_browser import browser, page, scan, settled, shot, sign_in_as  # noqa: F401 - the module's fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_park_a_sale_then_a_colleague_recalls_and_completes_it(page, shot, sign_in_as, store_a, clerk_a,  # noqa: F811
                                                               stocked, shift_a):
    from playwright.sync_api import expect

    shirt, jeans = stocked
    colleague = StaffFactory(role=Role.CLERK, store=store_a, display_name="王磊").user
    sign_in_as(clerk_a)
    page.goto("/pos/sale/")
    scan(page, shirt.barcode)
    settled(page)
    scan(page, jeans.barcode)
    expect(page.locator("[data-due]")).to_have_attribute("data-due", "348.00")
    settled(page)  # the scan's workspace swap is over: a note typed now is not replaced by it
    page.fill("[data-testid=park-form] input[name=label]", "试衣间 3号")
    expect(page.locator("[data-testid=park-form] input[name=label]")).to_have_value("试衣间 3号")
    page.locator("[data-testid=park]").click()
    expect(page.locator(".messages")).to_contain_text("已挂单")
    expect(page.locator("[data-testid=parked-link]")).to_contain_text("挂单列表 (1)")
    expect(page.locator(".lines-table .empty")).to_be_visible()  # a new, empty sale

    sign_in_as(colleague)
    page.goto("/pos/parked/")
    row = page.locator("[data-testid=parked-row]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("¥348.00")
    expect(row).to_contain_text("试衣间 3号")
    expect(row).to_contain_text("张伟")
    shot(page, "pos-parked.png")
    row.locator("[data-testid=recall]").click()
    page.wait_for_url("**/pos/sale/")
    expect(page.locator("[data-due]")).to_have_attribute("data-due", "348.00")
    page.keyboard.press("F8")
    page.keyboard.type("400")
    expect(page.locator("[data-change]")).to_have_text("¥52.00")
    page.keyboard.press("F9")
    page.wait_for_url(re.compile(r".*/pos/receipts/PS\d+/$"))

    order = Order.objects.get()
    assert (order.total, order.created_by_id) == (Decimal("348.00"), colleague.pk)
    assert PosBasket.objects.get(state=PosBasket.State.RECALLED).recalled_by_id == colleague.pk
