"""A courier's cash-on-delivery remittance file (CSV) read into rows, each with its line in the file.

Columns: ``tracking_number``, ``amount``, ``remitted_on`` (YYYY-MM-DD); the Chinese headers couriers
print (运单号, 金额 / 代收金额, 回款日期) are accepted too.  A row that cannot be read keeps its
error, so the import reports it with its line and records nothing from the file.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from o2o.money import money_parse
from o2o.tables import decode_csv
from orders.services import CodRow

COLUMNS = ("tracking_number", "amount", "remitted_on")
HEADER_ALIASES = {"运单号": "tracking_number", "快递单号": "tracking_number", "金额": "amount",
                  "代收金额": "amount", "回款日期": "remitted_on", "日期": "remitted_on"}
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d")


class CodFileUnreadable(ValueError):
    """The file as a whole cannot be read (not text, or without the columns)."""


def _date(text: str) -> date:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


def _row(line: int, raw: dict[str, str], today: date) -> CodRow:
    tracking = (raw.get("tracking_number") or "").strip()
    if not tracking:
        return CodRow(line=line, error=_("The tracking number is missing."))
    try:
        amount = money_parse(raw.get("amount") or "", positive=True, symbols=True)
    except ValueError:
        return CodRow(line=line, tracking_number=tracking,
                      error=_("The amount is not an amount in yuan with at most two decimals."))
    try:
        remitted_on = _date((raw.get("remitted_on") or "").strip())
    except ValueError:
        return CodRow(line=line, tracking_number=tracking, error=_("The date is not a date like 2026-12-04."))
    if remitted_on > today:
        return CodRow(line=line, tracking_number=tracking, error=_("The remittance date is in the future."))
    return CodRow(line=line, tracking_number=tracking, amount=amount, remitted_on=remitted_on)


def cod_file_rows(data: bytes) -> list[CodRow]:
    """The file's rows, blank lines skipped.  Raises CodFileUnreadable."""
    try:
        text = decode_csv(data)
    except UnicodeDecodeError:
        raise CodFileUnreadable(_("This is not a text (CSV) file.")) from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise CodFileUnreadable(_("The file is empty.")) from None
    names = [HEADER_ALIASES.get(h.strip(), h.strip().lower()) for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise CodFileUnreadable(_("The file lacks the columns: %(columns)s.") % {"columns": ", ".join(missing)})
    today = timezone.localdate()
    rows = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            rows.append(_row(reader.line_num, dict(zip(names, values)), today))
    except csv.Error:
        raise CodFileUnreadable(_("The file is not a well-formed CSV file.")) from None
    return rows
