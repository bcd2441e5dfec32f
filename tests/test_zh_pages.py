"""The UI in Simplified Chinese: the admin index, a changelist, the partner-key form, the Z report and
the POS pages show Chinese words, not Django's defaults, English leftovers or a word of the wrong
meaning ("找零" — cash change — for the admin's "Change")."""

import re
import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from members.services import members as member_services
from members.services import points as points_services
from orders import services as order_services
from orders.services import LineIn, TenderIn
from payments import shifts
from pos import parking
from pos.basket import Basket, BasketLine
from stores.models import Role
from stores.tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

# Words that are English on purpose: product names, codes, units, brand names.
ALLOWED = {"o2o", "pos", "sku", "skus", "api", "id", "pin", "csv", "xlsx", "json", "url", "webhook", "webhooks",
           "wechat", "pay", "alipay", "unionpay", "cny", "qr", "utc", "tab", "enter", "esc", "alt", "f1", "f2",
           "f3", "f4", "f5", "f6", "f7", "f8", "f9", "ctrl", "shift", "x", "z"}
SCRIPT = re.compile(r"<(script|style|svg|template)\b.*?</\1>", re.S | re.I)
TAG = re.compile(r"<[^>]+>")


def visible_text(html: str) -> str:
    html = SCRIPT.sub(" ", html)
    html = re.sub(r"<(input|option)[^>]*>", " ", html)  # typed values, e.g. a username
    return re.sub(r"\s+", " ", TAG.sub(" ", html)).replace("&nbsp;", " ")


def english_phrases(html: str, *, names=()) -> list[str]:
    """Runs of two or more English words of the page's own text (names of test data left out)."""
    text = visible_text(html)
    for name in names:
        text = text.replace(name, " ")
    phrases = re.findall(r"[A-Za-z][a-z]+(?:[ ,'-]+[A-Za-z][a-z]+)+", text)
    return [p for p in phrases if any(w.lower() not in ALLOWED for w in re.findall(r"[A-Za-z]+", p))]


def zh(client: Client, url: str):
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200, url
    return response.content.decode()


@pytest.fixture
def hq(db):
    user = UserFactory(username="hq-zh", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def assert_chinese(page: str, url: str, *, names=()):
    assert "Django" not in visible_text(page), f"{url}: Django's name instead of ours"
    english = english_phrases(page, names=names)
    assert not english, f"{url} shows English in the Chinese UI: {english[:8]}"


def test_admin_index_is_ours_and_says_change_as_edit(hq):
    page = zh(hq, reverse("admin:index"))

    assert "o2o 后台" in page
    assert "Django 管理" not in page and "Django 站点管理员" not in page
    assert "找零" not in page, "cash change (找零) where the admin means edit (修改)"
    assert "修改" in page
    assert_chinese(page, "/admin/", names=["hq-zh"])


def test_changelists_and_partner_key_form_in_chinese(hq, store_a):
    person = member_services.member_register(phone="13800138000", channel="pos", store_id=store_a.pk, name="王芳")
    points_services.points_adjust(member=person, points=200, reason="客服补偿")

    entries = zh(hq, reverse("admin:members_pointsentry_changelist"))
    assert "积分调整" in entries and "库存调整" not in entries
    assert_chinese(entries, "points entries", names=["hq-zh"])

    for name in ["admin:orders_order_changelist", "admin:stores_store_changelist", "admin:o2o_partnerkey_add",
                 "admin:members_coupontemplate_add", "admin:members_couponcampaign_add"]:
        page = zh(hq, reverse(name))
        assert "找零" not in page, name
        assert_chinese(page, name, names=["hq-zh"])


@pytest.fixture
def sold_and_closed(store_a, stocked, skus):
    clerk = StaffFactory(role=Role.CLERK, store=store_a, display_name="张伟").user
    shift = shifts.shift_open(store=store_a, actor=clerk, opening_float=Decimal("200.00"))
    shifts.shift_cash_move(shift=shift, kind="out", amount=Decimal("50.00"), reason="存入保险柜", actor=clerk)
    sku = skus[0]
    order = order_services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(sku.id, 1)],
                                           tenders=[TenderIn("cash", sku.list_price)], actor=clerk).order
    return clerk, shift, order


def test_z_report_and_pos_pages_in_chinese(sold_and_closed, store_a, skus):
    clerk, shift, order = sold_and_closed
    client = Client()
    client.force_login(clerk)
    names = [clerk.username, *[s.name for s in skus], store_a.name]

    sale = zh(client, reverse("pos:sale"))
    assert "找零" in sale  # the sale screen's change *is* cash given back
    assert_chinese(sale, "POS sale", names=names)
    receipt = zh(client, reverse("pos:receipt", args=[order.number]))
    assert_chinese(receipt, "receipt", names=names)
    assert_chinese(zh(client, reverse("pos:shift")), "POS shift", names=names)

    shifts.shift_close(shift=shift, actor=clerk, counts={"100": 2, "50": 1, "10": 0})
    report = zh(client, reverse("pos:shift_report", args=[shift.pk]))
    assert "现金销售" in report and "存入保险柜" in report
    assert "cash sales" not in report
    assert_chinese(report, "Z report", names=names)


def test_pos_sign_in_in_chinese(db):
    page = zh(Client(), reverse("pos:login"))
    assert_chinese(page, "POS sign in")


def test_parked_sales_hand_over_and_their_z_report_in_chinese(sold_and_closed, store_a, skus):
    clerk, shift, _order = sold_and_closed
    colleague = StaffFactory(role=Role.CLERK, store=store_a, display_name="王磊").user
    parking.basket_open_save(store=store_a, clerk=clerk,
                             basket=Basket(uuid=str(uuid.uuid4()), lines=(BasketLine(sku_id=skus[0].id, qty=1),)))
    parking.basket_park(store=store_a, clerk=clerk, label="试衣间")
    shifts.shift_handover(shift=shift, actor=clerk, incoming=colleague, counted_cash="100")
    client = Client()
    client.force_login(clerk)
    names = [clerk.username, colleague.username, *[s.name for s in skus], store_a.name]

    parked = zh(client, reverse("pos:parked"))
    assert "挂单列表" in parked and "取单" in parked and "试衣间" in parked
    assert_chinese(parked, "parked sales", names=names)
    page = zh(client, reverse("pos:shift"))
    assert "关班时以下 1 张挂单将过期" in page and "交班记录" in page and "接班店员用户名" in page
    assert_chinese(page, "POS shift with a hand-over and a parked sale", names=names)

    parking.pos_shift_close(shift=shift, actor=colleague, counts={"100": 2})
    report = zh(client, reverse("pos:shift_report", args=[shift.pk]))
    assert "交班记录" in report and "关班时过期的挂单" in report and "按店员统计销售" in report
    assert_chinese(report, "Z report with a hand-over", names=names)
