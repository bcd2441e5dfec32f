"""Catalog import from CSV/XLSX: dry run, row-level errors, GBK files, all or nothing."""

from decimal import Decimal
from io import BytesIO

import openpyxl
import pytest

from o2o.tables import table_rows
from catalog.models import Product, Sku
from catalog.services import catalog_import
from catalog.tests.factories import BrandFactory, CategoryFactory, SkuFactory, ean13

pytestmark = pytest.mark.django_db

HEADER = "product_code,product_name,category,brand,sku_code,barcode,sku_name,color,size,list_price,cost_price"


@pytest.fixture
def refs():
    return CategoryFactory(code="tshirts", name="T恤"), BrandFactory(code="chumian", name="初棉")


def csv_bytes(*lines, encoding="utf-8"):
    return ("\n".join([HEADER, *lines]) + "\n").encode(encoding)


GOOD = [f"P001,纯棉圆领T恤,tshirts,chumian,P001-BK-M,{ean13(101)},纯棉圆领T恤 黑色 M,黑色,M,79.00,30.00",
        f"P001,纯棉圆领T恤,tshirts,chumian,P001-BK-L,{ean13(102)},纯棉圆领T恤 黑色 L,黑色,L,79.00,30.00"]


def test_dry_run_reports_what_would_happen_and_writes_nothing(refs):
    result = catalog_import(rows=table_rows(csv_bytes(*GOOD)), dry_run=True)
    assert result.ok and result.dry_run
    assert (result.rows, result.products_created, result.skus_created, result.skus_updated) == (2, 1, 2, 0)
    assert not Product.objects.exists() and not Sku.objects.exists()


def test_import_creates_then_updates_by_code(refs):
    catalog_import(rows=table_rows(csv_bytes(*GOOD)), dry_run=False)
    sku = Sku.objects.get(code="P001-BK-M")
    assert (sku.product.code, sku.product.category.code, sku.list_price, sku.barcode) == (
        "P001", "tshirts", Decimal("79.00"), ean13(101))

    repriced = GOOD[0].replace(",79.00,", ",69.00,")
    result = catalog_import(rows=table_rows(csv_bytes(repriced)), dry_run=False)
    assert (result.products_created, result.skus_created, result.skus_updated) == (0, 0, 1)
    assert Sku.objects.get(code="P001-BK-M").list_price == Decimal("69.00")


def test_bad_rows_are_reported_per_row_and_nothing_is_written(refs):
    SkuFactory(code="OLD-1", barcode=ean13(555))
    bad_barcode = GOOD[0].replace(ean13(101), "6901234567890")  # wrong check digit
    unknown_category = GOOD[1].replace(",tshirts,", ",nosuch,")
    negative = "P002,帆布鞋,tshirts,,P002-WH-40,,帆布鞋 白色 40,白色,40,-5.00,"
    taken = f"P003,袜子,tshirts,,P003-OS,{ean13(555)},袜子 均码,,均码,29.00,"
    good = "P004,腰带,tshirts,,P004-105,,腰带 105cm,,105cm,99.00,"
    result = catalog_import(rows=table_rows(csv_bytes(bad_barcode, unknown_category, negative, taken, good)),
                            dry_run=False)
    assert not result.ok
    assert [(e.row, e.column) for e in result.errors] == [(1, "barcode"), (2, "category"), (3, "list_price"),
                                                          (4, "barcode")]
    assert "nosuch" in result.errors[1].message
    assert Sku.objects.filter(code__startswith="P00").count() == 0


def test_gbk_encoded_csv_imports(refs):
    data = csv_bytes(*GOOD, encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    rows = table_rows(data)
    assert rows[0]["product_name"] == "纯棉圆领T恤"
    assert catalog_import(rows=rows, dry_run=False).ok
    assert Sku.objects.get(code="P001-BK-L").color == "黑色"


def test_utf8_with_bom_and_xlsx_read_alike(refs):
    from_bom = table_rows(csv_bytes(*GOOD, encoding="utf-8-sig"))
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    for line in GOOD:
        sheet.append(line.split(","))
    buffer = BytesIO()
    book.save(buffer)
    from_xlsx = table_rows(buffer.getvalue(), filename="catalog.xlsx")
    assert from_bom == from_xlsx
    assert from_bom[1]["sku_code"] == "P001-BK-L"
