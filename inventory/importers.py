"""Opening stock from a table: one row per warehouse and SKU with the units on the shelf.

Columns (the first row names them): ``warehouse`` (warehouse code), ``sku`` (SKU code or
barcode) and ``qty``; ``warehouse_code``, ``sku_code``, ``barcode`` and ``quantity`` are read
as the same columns.  Reading the file is ``o2o.tables.table_rows``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db.models import Q
from django.utils.translation import gettext as _

from catalog.models import Sku
from catalog.validators import barcode_normalize
from inventory.models import Bucket, MoveReason, StockLevel
from inventory.services import stock_receive
from o2o.db import service
from stores.models import Warehouse

COLUMNS = ["warehouse", "sku", "qty"]
ALIASES = {"warehouse_code": "warehouse", "sku_code": "sku", "barcode": "sku", "quantity": "qty"}
REFERENCE = "opening import"


@dataclass
class RowError:
    row: int  # 1-based data row (the header is row 0)
    column: str
    message: str


@dataclass
class OpeningStockResult:
    dry_run: bool
    rows: int = 0
    warehouses: int = 0
    skus: int = 0
    units: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _columns(row: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, value in row.items():
        out.setdefault(ALIASES.get(name, name), value)
    return out


def _qty(value: str) -> int | None:
    try:
        number = Decimal(value.replace(",", ""))
    except InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value() or number <= 0:
        return None
    return int(number)


def _sku_index(values: set[str]) -> dict[str, Sku]:
    """SKUs by the code or (normalised) barcode the file names them with, in one query."""
    barcodes = {}
    for value in values:
        try:
            normalized = barcode_normalize(value)
        except ValueError:
            continue
        # A UPC-A is the EAN-13 with a leading 0; the catalog may hold either form.
        forms = {normalized}
        if len(normalized) == 12:
            forms.add("0" + normalized)
        elif len(normalized) == 13 and normalized.startswith("0"):
            forms.add(normalized[1:])
        barcodes[value] = forms
    wanted = {b for forms in barcodes.values() for b in forms}
    found = list(Sku.objects.filter(Q(code__in=values) | Q(barcode__in=wanted)).only("id", "code", "barcode"))
    by_code = {s.code: s for s in found}
    by_barcode = {s.barcode: s for s in found if s.barcode}
    index = {}
    for value in values:
        by_form = (by_barcode[b] for b in barcodes.get(value, ()) if b in by_barcode)
        sku = by_code.get(value) or next(by_form, None)
        if sku is not None:
            index[value] = sku
    return index


def _check(rows: list[dict[str, str]], warehouse_ids: set[int] | None, result: OpeningStockResult):
    """Checked lines as {(warehouse_id, sku_id): (row, qty)}; errors go on ``result``."""
    rows = [_columns(r) for r in rows]
    warehouses = Warehouse.objects.filter(code__in={r.get("warehouse", "") for r in rows})
    if warehouse_ids is not None:
        warehouses = warehouses.filter(pk__in=warehouse_ids)  # others read as unknown: no leak of names
    by_code = {w.code: w for w in warehouses}
    skus = _sku_index({r.get("sku", "") for r in rows if r.get("sku")})
    lines: dict[tuple[int, int], tuple[int, int]] = {}
    for number, row in enumerate(rows, start=1):
        before = len(result.errors)
        for column in COLUMNS:
            if not row.get(column):
                result.errors.append(RowError(number, column, _("This column is required.")))
        if len(result.errors) > before:
            continue
        warehouse = by_code.get(row["warehouse"])
        if warehouse is None:
            result.errors.append(RowError(number, "warehouse", _("Unknown warehouse “%(code)s”.")
                                          % {"code": row["warehouse"]}))
        elif not warehouse.is_active:
            result.errors.append(RowError(number, "warehouse", _("Warehouse %(code)s is not active.")
                                          % {"code": warehouse.code}))
        sku = skus.get(row["sku"])
        if sku is None:
            result.errors.append(RowError(number, "sku", _("No SKU has the code or barcode “%(value)s”.")
                                          % {"value": row["sku"]}))
        qty = _qty(row["qty"])
        if qty is None:
            result.errors.append(RowError(number, "qty", _("“%(value)s” is not a whole number of units above "
                                                           "zero.") % {"value": row["qty"]}))
        if len(result.errors) > before:
            continue
        key = (warehouse.pk, sku.pk)
        if key in lines:
            result.errors.append(RowError(number, "sku", _("%(sku)s at %(warehouse)s repeated (row %(row)d).")
                                          % {"sku": sku.code, "warehouse": warehouse.code,
                                             "row": lines[key][0]}))
            continue
        lines[key] = (number, qty)
    return lines, {w.pk: w.code for w in by_code.values()}, skus


@service
def stock_opening_import(*, rows: list[dict[str, str]], dry_run: bool, actor=None,
                         warehouse_ids: set[int] | None = None) -> OpeningStockResult:
    """Put opening stock on the shelves from table rows, all or nothing.

    Every row is checked first (a warehouse among ``warehouse_ids`` when given, a known SKU
    code or barcode, a whole quantity above zero, one row per warehouse and SKU, and no
    sellable stock there yet: opening stock starts a level, later corrections are counts or
    adjustments).  With any error, or with ``dry_run``, nothing is written.  Otherwise one
    ``stock_receive(reason=OPENING)`` per warehouse, all in this one transaction, with the
    locks and the ``stock.changed`` outbox messages that service takes and queues.
    """
    result = OpeningStockResult(dry_run=dry_run, rows=len(rows))
    lines, warehouse_codes, skus = _check(rows, warehouse_ids, result)
    warehouse_ids_used, sku_ids_used = {key[0] for key in lines}, {key[1] for key in lines}
    stocked = StockLevel.objects.filter(bucket=Bucket.SELLABLE, on_hand__gt=0, warehouse_id__in=warehouse_ids_used,
                                        sku_id__in=sku_ids_used)
    sku_codes = {s.pk: s.code for s in skus.values()}
    for level in stocked.only("warehouse_id", "sku_id", "on_hand"):
        if (level.warehouse_id, level.sku_id) not in lines:
            continue
        number = lines[(level.warehouse_id, level.sku_id)][0]
        result.errors.append(RowError(number, "sku", _("%(warehouse)s already holds %(on_hand)d of %(sku)s; "
                                                       "correct it with a count or an adjustment.")
                                      % {"warehouse": warehouse_codes[level.warehouse_id],
                                         "on_hand": level.on_hand, "sku": sku_codes[level.sku_id]}))
    result.errors.sort(key=lambda e: e.row)
    by_warehouse: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (warehouse_id, sku_id), (_row, qty) in lines.items():
        by_warehouse[warehouse_id].append((sku_id, qty))
    result.warehouses = len(by_warehouse)
    result.skus = len(lines)
    result.units = sum(qty for _row, qty in lines.values())
    if result.errors or dry_run:
        return result
    for warehouse_id in sorted(by_warehouse):
        stock_receive(warehouse=warehouse_id, lines=by_warehouse[warehouse_id], actor=actor,
                      reason=MoveReason.OPENING, reference=REFERENCE)
    return result
