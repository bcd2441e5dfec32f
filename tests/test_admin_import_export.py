"""Head-office admin: catalog and opening-stock imports (upload → dry-run preview → apply),
CSV/XLSX exports of orders and members, and regional managers scoped to their region."""

import csv
import io
import uuid
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from catalog.models import Product, Sku
from catalog.tests.factories import BrandFactory, CategoryFactory, SkuFactory, ean13
from inventory import services as stock
from inventory.models import MoveReason, StockLevel, StockMove
from members.tests.factories import MemberFactory, TierFactory
from orders import services as orders
from orders.models import Channel, Fulfillment, Order
from orders.services import LineIn, ReturnLineIn, TenderIn
from payments.models import Payment
from stores.models import Role
from stores.services import staff_create
from stores.tests.factories import CityFactory, RegionFactory, StoreFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Lake-view-2026"
CATALOG_HEADER = ("product_code,product_name,category,brand,sku_code,barcode,sku_name,color,size,list_price,"
                  "cost_price")
GOOD = [f"P001,纯棉圆领T恤,tshirts,chumian,P001-BK-M,{ean13(101)},纯棉圆领T恤 黑色 M,黑色,M,79.00,30.00",
        f"P001,纯棉圆领T恤,tshirts,chumian,P001-BK-L,{ean13(102)},纯棉圆领T恤 黑色 L,黑色,L,79.00,30.00"]


def staff(role, username, **kwargs):
    return staff_create(username=username, password=PASSWORD, display_name=username, role=role,
                        employee_no=f"E-{username}", **kwargs).user


def csv_file(name: str, header: str, *lines: str, encoding="utf-8"):
    content = io.BytesIO(("\n".join([header, *lines]) + "\n").encode(encoding))
    content.name = name
    return content


def preview_counts(response) -> dict[str, int]:
    return {str(label): count for label, count in response.context["preview"].counts}


def preview_errors(response) -> list[tuple[int, str]]:
    return [(row, column) for row, column, _message in response.context["preview"].errors]


@pytest.fixture
def hq(client):
    user = staff(Role.HQ_ADMIN, "chen")
    client.force_login(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return user


@pytest.fixture
def refs():
    return CategoryFactory(code="tshirts", name="T恤"), BrandFactory(code="chumian", name="初棉")


# --- catalog import --------------------------------------------------------------------------

CATALOG_IMPORT = "admin:catalog_sku_import"


def test_sku_changelist_links_to_the_import_page(client, hq):
    response = client.get(reverse("admin:catalog_sku_changelist"))
    assert response.status_code == 200
    assert reverse(CATALOG_IMPORT) in response.content.decode()


def test_catalog_upload_previews_without_writing_then_apply_imports(client, hq, refs):
    # Given a GBK-encoded CSV as Excel on a Chinese Windows saves it
    upload_file = csv_file("catalog.csv", CATALOG_HEADER, *GOOD, encoding="gbk")

    # When it is uploaded, the page previews the dry run and nothing is written
    response = client.post(reverse(CATALOG_IMPORT), {"file": upload_file})
    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview.ok and response.context["token"]
    assert preview_counts(response) == {"rows": 2, "products to create": 1, "SKUs to create": 2,
                                        "SKUs to update": 0}
    assert not Product.objects.exists() and not Sku.objects.exists()
    assert 'name="apply"' in response.content.decode()

    # Then confirming applies exactly the previewed rows
    response = client.post(reverse(CATALOG_IMPORT), {"apply": "1", "token": response.context["token"]},
                           follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:catalog_sku_changelist")
    assert Sku.objects.get(code="P001-BK-L").color == "黑色"
    assert Product.objects.get(code="P001").name == "纯棉圆领T恤"
    assert any("Imported catalog.csv" in str(m) for m in response.context["messages"])


def test_catalog_apply_is_one_time(client, hq, refs):
    response = client.post(reverse(CATALOG_IMPORT), {"file": csv_file("c.csv", CATALOG_HEADER, GOOD[0])})
    token = response.context["token"]
    client.post(reverse(CATALOG_IMPORT), {"apply": "1", "token": token})
    Sku.objects.filter(code="P001-BK-M").update(list_price=Decimal("59.00"))

    again = client.post(reverse(CATALOG_IMPORT), {"apply": "1", "token": token}, follow=True)

    assert Sku.objects.get(code="P001-BK-M").list_price == Decimal("59.00")
    assert any("no longer current" in str(m) for m in again.context["messages"])


def test_catalog_bad_rows_are_listed_by_row_and_cannot_be_applied(client, hq, refs):
    bad_barcode = GOOD[0].replace(ean13(101), "6901234567890")  # wrong check digit
    unknown_category = GOOD[1].replace(",tshirts,", ",nosuch,")
    negative = "P002,帆布鞋,tshirts,,P002-WH-40,,帆布鞋 白色 40,白色,40,-5.00,"
    good = "P004,腰带,tshirts,,P004-105,,腰带 105cm,,105cm,99.00,"
    upload_file = csv_file("bad.csv", CATALOG_HEADER, bad_barcode, unknown_category, negative, good)

    response = client.post(reverse(CATALOG_IMPORT), {"file": upload_file})

    assert response.status_code == 200
    assert not response.context["preview"].ok and response.context["token"] == ""
    assert preview_errors(response) == [(1, "barcode"), (2, "category"), (3, "list_price")]
    page = response.content.decode()
    assert "Unknown category “nosuch”." in page and 'name="apply"' not in page
    assert not Sku.objects.exists()


def test_catalog_errors_speak_the_users_language(client, hq, refs):
    unknown_category = GOOD[1].replace(",tshirts,", ",nosuch,")
    upload_file = csv_file("bad.csv", CATALOG_HEADER, unknown_category)
    response = client.post(reverse(CATALOG_IMPORT), {"file": upload_file}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "未知类目“nosuch”。" in response.content.decode()


def test_catalog_xlsx_upload_previews(client, hq, refs):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(CATALOG_HEADER.split(","))
    for line in GOOD:
        sheet.append(line.split(","))
    content = io.BytesIO()
    book.save(content)
    content.seek(0)
    content.name = "catalog.xlsx"

    response = client.post(reverse(CATALOG_IMPORT), {"file": content})

    assert response.context["preview"].ok
    assert preview_counts(response)["SKUs to create"] == 2


def test_an_unreadable_or_empty_file_is_a_form_error(client, hq):
    not_xlsx = io.BytesIO(b"PK\x03\x04 not really a zip")
    not_xlsx.name = "broken.xlsx"
    response = client.post(reverse(CATALOG_IMPORT), {"file": not_xlsx})
    assert response.status_code == 200
    assert response.context["form"].errors["file"] == ["The file could not be read as CSV or XLSX."]

    response = client.post(reverse(CATALOG_IMPORT), {"file": csv_file("empty.csv", CATALOG_HEADER)})
    assert response.context["form"].errors["file"] == ["The file has no data rows."]

    response = client.post(reverse(CATALOG_IMPORT), {"file": csv_file("x.txt", CATALOG_HEADER, GOOD[0])})
    assert response.context["form"].errors["file"] == ["Upload a .csv or .xlsx file."]


def test_regional_manager_cannot_import(client, store_a):
    client.force_login(staff(Role.REGIONAL_MANAGER, "wang", region=store_a.city.region))
    assert client.get(reverse(CATALOG_IMPORT)).status_code == 403
    assert client.get(reverse("admin:inventory_stocklevel_import")).status_code == 403


# --- opening stock import --------------------------------------------------------------------

STOCK_IMPORT = "admin:inventory_stocklevel_import"
STOCK_HEADER = "warehouse,sku,qty"


def test_opening_stock_preview_then_apply_in_one_go(client, hq, central, store_a):
    SkuFactory(code="TS-1")
    SkuFactory(code="SO-1", barcode=ean13(777))
    upload_file = csv_file("opening.csv", STOCK_HEADER, f"{central.code},TS-1,40",
                           f"{central.code},{ean13(777)},12", f"{store_a.warehouse.code},TS-1,5")

    response = client.post(reverse(STOCK_IMPORT), {"file": upload_file})

    assert response.context["preview"].ok
    assert preview_counts(response) == {"rows": 3, "warehouses to stock": 2, "stock levels to open": 3,
                                        "units to receive": 57}
    assert not StockLevel.objects.exists() and not StockMove.objects.exists()

    token = response.context["token"]
    response = client.post(reverse(STOCK_IMPORT), {"apply": "1", "token": token}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:inventory_stocklevel_changelist")
    levels = {(lv.warehouse.code, lv.sku.code): lv.on_hand
              for lv in StockLevel.objects.select_related("warehouse", "sku")}
    assert levels == {(central.code, "TS-1"): 40, (central.code, "SO-1"): 12,
                      (store_a.warehouse.code, "TS-1"): 5}
    moves = StockMove.objects.all()
    assert {m.reason for m in moves} == {MoveReason.OPENING} and {m.actor_id for m in moves} == {hq.pk}


def test_opening_stock_bad_rows_change_nothing(client, hq, central):
    SkuFactory(code="TS-1")
    SkuFactory(code="OLD-1")
    stock.stock_receive(warehouse=central, lines=[(Sku.objects.get(code="OLD-1").id, 3)])
    before = list(StockLevel.objects.values_list("id", "on_hand"))
    upload_file = csv_file("opening.csv", "warehouse_code,sku_code,quantity",
                           "NOWHERE,TS-1,4",  # unknown warehouse
                           f"{central.code},NO-SUCH,4",  # unknown SKU
                           f"{central.code},TS-1,-2",  # bad quantity
                           f"{central.code},TS-1,2.5",  # bad quantity
                           f"{central.code},OLD-1,7",  # already stocked
                           f"{central.code},TS-1,4",  # fine on its own
                           f"{central.code},TS-1,1")  # the same level twice

    response = client.post(reverse(STOCK_IMPORT), {"file": upload_file})

    assert not response.context["preview"].ok and response.context["token"] == ""
    assert preview_errors(response) == [(1, "warehouse"), (2, "sku"), (3, "qty"), (4, "qty"), (5, "sku"),
                                        (7, "sku")]
    page = response.content.decode()
    assert "Unknown warehouse “NOWHERE”." in page and 'name="apply"' not in page
    assert list(StockLevel.objects.values_list("id", "on_hand")) == before


def test_opening_stock_warehouses_outside_the_users_scope_are_unknown(central, store_a, store_b):
    from inventory.importers import stock_opening_import

    sku = SkuFactory(code="TS-1")
    rows = [{"warehouse": central.code, "sku": "TS-1", "qty": "4"}]
    result = stock_opening_import(rows=rows, dry_run=False, warehouse_ids={store_a.warehouse_id})
    assert [(e.row, e.column) for e in result.errors] == [(1, "warehouse")]
    assert not StockLevel.objects.filter(sku=sku).exists()


def test_a_domain_error_from_the_service_is_a_message_not_a_500(client, hq, central, monkeypatch):
    from inventory.exceptions import UnknownWarehouse

    SkuFactory(code="TS-1")

    def refuse(**kwargs):
        raise UnknownWarehouse(params={"warehouse": "CW01"})

    monkeypatch.setattr("inventory.importers.stock_receive", refuse)
    upload_file = csv_file("o.csv", STOCK_HEADER, f"{central.code},TS-1,4")
    response = client.post(reverse(STOCK_IMPORT), {"file": upload_file})
    response = client.post(reverse(STOCK_IMPORT), {"apply": "1", "token": response.context["token"]})

    assert response.status_code == 200
    assert response.context["preview"] is None
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert not StockLevel.objects.exists()


# --- exports ---------------------------------------------------------------------------------


def export(client, model: str, action: str, objects):
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [o.pk for o in objects]}
    return client.post(reverse(f"admin:{model}_changelist"), data)


def csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content if response.streaming else [response.content]).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def xlsx_rows(response) -> list[tuple]:
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    return [tuple(row) for row in book.worksheets[0].iter_rows(values_only=True)]


def pos_sale(store, sku, qty=1):
    total = sku.list_price * qty
    return orders.pos_sale_create(store=store, client_uuid=uuid.uuid4(), lines=[LineIn(sku.id, qty)],
                                  tenders=[TenderIn("cash", total)]).order


@pytest.fixture
def sales(store_a, store_b, skus):
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(s.id, 10) for s in skus])
    stock.stock_receive(warehouse=store_b.warehouse, lines=[(s.id, 10) for s in skus])
    return [pos_sale(store_a, skus[0], 2), pos_sale(store_b, skus[1]), pos_sale(store_a, skus[2])]


def test_orders_export_csv_has_the_selected_orders(client, hq, sales):
    chosen = sales[:2]
    response = export(client, "orders_order", "export_csv", chosen)

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"] and ".csv" in response["Content-Disposition"]
    header, *rows = csv_rows(response)
    assert header[:6] == ["order number", "channel", "fulfillment", "store code", "store", "status"]
    assert [r[0] for r in rows] == [o.number for o in chosen]
    first = rows[0]
    assert first[3] == sales[0].store.code and Decimal(first[header.index("total")]) == Decimal("198.00")
    assert Decimal(first[header.index("paid")]) == sales[0].paid_total


def test_orders_export_xlsx_opens_with_openpyxl(client, hq, sales):
    response = export(client, "orders_order", "export_xlsx", sales)

    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    header, *rows = xlsx_rows(response)
    assert header[0] == "order number"
    assert sorted(r[0] for r in rows) == sorted(o.number for o in sales)
    totals = {r[0]: Decimal(str(r[header.index("total")])) for r in rows}
    assert totals == {o.number: o.total for o in sales}


def test_members_export_carries_phone_tier_and_balances(client, hq):
    gold = TierFactory(code="platinum", name="铂金卡")
    rich = MemberFactory(phone="+8613800138000", tier=gold, points_available=1200,
                         wallet_principal=Decimal("300.00"), wallet_bonus=Decimal("30.00"))
    plain = MemberFactory(phone="+8613900139000")

    header, *rows = csv_rows(export(client, "members_member", "export_csv", [rich, plain]))

    by_phone = {r[0]: dict(zip(header, r)) for r in rows}
    assert set(by_phone) == {"+8613800138000", "+8613900139000"}
    row = by_phone["+8613800138000"]
    assert (row["tier"], row["points available"], row["wallet principal"], row["wallet bonus"]) == (
        gold.name, "1200", "300.00", "30.00")

    header, *rows = xlsx_rows(export(client, "members_member", "export_xlsx", [rich]))
    assert rows[0][0] == "+8613800138000" and rows[0][header.index("tier")] == gold.name


# --- region scoping --------------------------------------------------------------------------


@pytest.fixture
def regions(skus):
    """Store X in region 浙江, store Y in region 江苏, each with one POS sale; a web pickup
    order at Y paid online (a payment with no store)."""
    zj = CityFactory(code="HZ", region=RegionFactory(code="ZJ", name="浙江"))
    js = CityFactory(code="NJ", name="南京", region=RegionFactory(code="JS", name="江苏"))
    store_x, store_y = StoreFactory(code="X01", city=zj), StoreFactory(code="Y01", city=js)
    for store in (store_x, store_y):
        stock.stock_receive(warehouse=store.warehouse, lines=[(s.id, 10) for s in skus])
    web = orders.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store_y,
                             lines=[LineIn(skus[3].id, 1)]).order
    online = orders.order_payment_start(order=web, tender="wechat_pay")
    return {"x": store_x, "y": store_y, "order_x": pos_sale(store_x, skus[0]),
            "order_y": pos_sale(store_y, skus[1]), "web_y": web, "online_y": online, "zj": zj.region,
            "js": js.region}


def changelist_pks(client, model: str) -> set[int]:
    response = client.get(reverse(f"admin:{model}_changelist"))
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def test_regional_manager_sees_only_their_regions_orders_and_payments(client, regions):
    client.force_login(staff(Role.REGIONAL_MANAGER, "wang", region=regions["zj"]))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    order_x, order_y = regions["order_x"], regions["order_y"]

    assert changelist_pks(client, "orders_order") == {order_x.pk}
    payments_x = set(Payment.objects.filter(reference=order_x.number).values_list("pk", flat=True))
    assert payments_x and changelist_pks(client, "payments_payment") == payments_x

    # an order or payment of region 江苏, opened by id, is not found
    response = client.get(reverse("admin:orders_order_change", args=[order_y.pk]))
    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert response["Location"] == reverse("admin:index")
    payment_y = Payment.objects.filter(reference=order_y.number).first()
    assert client.get(reverse("admin:payments_payment_change", args=[payment_y.pk])).status_code in (302, 404)
    assert client.get(reverse("admin:payments_payment_change", args=[regions["online_y"].pk])).status_code in (
        302, 404)
    # while their own region's order opens
    assert client.get(reverse("admin:orders_order_change", args=[order_x.pk])).status_code == 200


def test_online_payments_follow_their_orders_store(client, regions):
    client.force_login(staff(Role.REGIONAL_MANAGER, "li", region=regions["js"]))
    order_y, web_y = regions["order_y"], regions["web_y"]

    assert changelist_pks(client, "orders_order") == {order_y.pk, web_y.pk}
    references = [order_y.number, web_y.number]
    expected = set(Payment.objects.filter(reference__in=references).values_list("pk", flat=True))
    assert regions["online_y"].store_id is None and regions["online_y"].pk in expected
    assert changelist_pks(client, "payments_payment") == expected


def test_regional_export_contains_only_their_region(client, regions):
    client.force_login(staff(Role.REGIONAL_MANAGER, "wang", region=regions["zj"]))
    everything = [regions["order_x"], regions["order_y"], regions["web_y"]]
    data = {"action": "export_csv", "select_across": "1", "index": "0",
            helpers.ACTION_CHECKBOX_NAME: [o.pk for o in everything]}
    _header, *rows = csv_rows(client.post(reverse("admin:orders_order_changelist"), data))
    assert [r[0] for r in rows] == [regions["order_x"].number]


def test_hq_sees_every_order_and_payment(client, hq, regions):
    assert changelist_pks(client, "orders_order") == set(Order.objects.values_list("pk", flat=True))
    assert changelist_pks(client, "payments_payment") == set(Payment.objects.values_list("pk", flat=True))


def test_returns_are_scoped_to_the_region(client, regions):
    returns = {}
    for key, store in (("order_x", regions["x"]), ("order_y", regions["y"])):
        order = regions[key]
        returns[key] = orders.return_create(order=order, store=store,
                                            lines=[ReturnLineIn(order.lines.get().pk, 1)])
    client.force_login(staff(Role.REGIONAL_MANAGER, "wang", region=regions["zj"]))

    assert changelist_pks(client, "orders_return") == {returns["order_x"].pk}
    response = client.get(reverse("admin:orders_return_change", args=[returns["order_y"].pk]))
    assert response.status_code in (302, 404)
