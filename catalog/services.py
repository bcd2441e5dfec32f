"""Catalog writes: the import of products, SKUs, barcodes and prices from a table."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from catalog.models import Brand, Category, Product, Sku
from catalog.validators import barcode_normalize
from o2o.db import service
from o2o.money import money_parse

COLUMNS = ["product_code", "product_name", "category", "brand", "sku_code", "barcode", "sku_name", "color", "size",
           "list_price", "cost_price"]
REQUIRED = ["product_code", "product_name", "category", "sku_code", "sku_name", "list_price"]


@dataclass
class RowError:
    row: int  # 1-based data row (the header is row 0)
    column: str
    message: str


@dataclass
class ImportResult:
    dry_run: bool
    rows: int = 0
    products_created: int = 0
    skus_created: int = 0
    skus_updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _price(value: str, column: str, number: int, errors: list[RowError]) -> Decimal | None:
    try:
        price = money_parse(value, signed=True, symbols=True)
    except ValueError:
        errors.append(RowError(number, column, _("“%(value)s” is not an amount.") % {"value": value}))
        return None
    if price < 0:
        errors.append(RowError(number, column, _("A price cannot be negative.")))
        return None
    return price


def _check_row(number: int, row: dict[str, str], categories, brands, errors: list[RowError]) -> dict | None:
    before = len(errors)
    for column in REQUIRED:
        if not row.get(column):
            errors.append(RowError(number, column, _("This column is required.")))
    if len(errors) > before:
        return None
    category = categories.get(row["category"])
    if category is None:
        errors.append(RowError(number, "category", _("Unknown category “%(code)s”.") % {"code": row["category"]}))
    brand = None
    if row.get("brand"):
        brand = brands.get(row["brand"])
        if brand is None:
            errors.append(RowError(number, "brand", _("Unknown brand “%(code)s”.") % {"code": row["brand"]}))
    barcode = None
    if row.get("barcode"):
        try:
            barcode = barcode_normalize(row["barcode"])
        except ValueError:
            errors.append(RowError(number, "barcode", _("%(value)s is not a valid EAN-13, EAN-8 or UPC-A barcode.")
                                   % {"value": row["barcode"]}))
    list_price = _price(row["list_price"], "list_price", number, errors)
    cost_price = _price(row["cost_price"], "cost_price", number, errors) if row.get("cost_price") else Decimal("0.00")
    if len(errors) > before:
        return None
    return {"product_code": row["product_code"], "product_name": row["product_name"], "category": category,
            "brand": brand, "code": row["sku_code"], "barcode": barcode, "name": row["sku_name"],
            "color": row.get("color", ""), "size": row.get("size", ""), "list_price": list_price,
            "cost_price": cost_price}


@service
def catalog_import(*, rows: list[dict[str, str]], dry_run: bool) -> ImportResult:
    """Create or update products and SKUs (by code) from table rows, all or nothing.

    Every row is checked first (required columns, known category and brand codes, barcode
    check digits, non-negative prices, a barcode or SKU code used once in the file and not
    by another SKU); with any error, or with ``dry_run``, nothing is written and the result
    says what would happen.  Runs in one transaction; takes no explicit locks (unique
    constraints guard concurrent imports); no side effects.
    """
    result = ImportResult(dry_run=dry_run, rows=len(rows))
    categories = {c.code: c for c in Category.objects.filter(code__in={r.get("category", "") for r in rows})}
    brands = {b.code: b for b in Brand.objects.filter(code__in={r.get("brand", "") for r in rows})}
    checked: list[dict] = []
    seen_codes: dict[str, int] = {}
    seen_barcodes: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        item = _check_row(number, row, categories, brands, result.errors)
        if item is None:
            continue
        if item["code"] in seen_codes:
            result.errors.append(RowError(number, "sku_code", _("SKU code repeated (row %(row)d).")
                                          % {"row": seen_codes[item["code"]]}))
            continue
        if item["barcode"] and item["barcode"] in seen_barcodes:
            result.errors.append(RowError(number, "barcode", _("Barcode repeated (row %(row)d).")
                                          % {"row": seen_barcodes[item["barcode"]]}))
            continue
        seen_codes[item["code"]] = number
        if item["barcode"]:
            seen_barcodes[item["barcode"]] = number
        checked.append(item | {"row": number})
    taken = dict(Sku.objects.filter(barcode__in=list(seen_barcodes)).values_list("barcode", "code"))
    for item in checked:
        owner = taken.get(item["barcode"])
        if owner and owner != item["code"]:
            result.errors.append(RowError(item["row"], "barcode", _("Barcode already used by SKU %(code)s.")
                                          % {"code": owner}))
    existing_skus = {s.code: s for s in Sku.objects.filter(code__in=list(seen_codes))}
    existing_products = {p.code: p for p in Product.objects.filter(code__in={i["product_code"] for i in checked})}
    new_products = {i["product_code"]: i for i in checked if i["product_code"] not in existing_products}
    result.products_created = len(new_products)
    result.skus_created = sum(1 for i in checked if i["code"] not in existing_skus)
    result.skus_updated = len(checked) - result.skus_created
    if result.errors or dry_run:
        return result
    created = Product.objects.bulk_create([Product(code=code, name=i["product_name"], category=i["category"],
                                                   brand=i["brand"]) for code, i in new_products.items()])
    products = existing_products | {p.code: p for p in created}
    fields = ["barcode", "name", "color", "size", "list_price", "cost_price"]
    new, changed = [], []
    for item in checked:
        values = {f: item[f] for f in fields}
        sku = existing_skus.get(item["code"])
        if sku is None:
            new.append(Sku(product=products[item["product_code"]], code=item["code"], **values))
        else:
            for name, value in values.items():
                setattr(sku, name, value)
            sku.updated_at = timezone.now()  # bulk_update does not apply auto_now
            changed.append(sku)
    Sku.objects.bulk_create(new)
    Sku.objects.bulk_update(changed, fields + ["updated_at"])
    return result
