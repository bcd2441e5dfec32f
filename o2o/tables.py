"""Read an uploaded table (CSV or XLSX) into rows of strings keyed by column name.

CSV from Excel on a Chinese Windows PC is usually GBK: the bytes are tried as UTF-8
(with or without a BOM) first and read as GB18030 (a superset of GBK) when they are not.
Parsing is tablib's (openpyxl for XLSX); this module only picks the format and the encoding.
"""

from __future__ import annotations

import tablib

XLSX_MAGIC = b"PK\x03\x04"


def decode_csv(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def table_rows(data: bytes, *, filename: str = "") -> list[dict[str, str]]:
    """The rows of the first sheet (XLSX) or of the CSV, as dicts of stripped strings."""
    if filename.lower().endswith(".xlsx") or data.startswith(XLSX_MAGIC):
        dataset = tablib.Dataset().load(data, format="xlsx")
    else:
        dataset = tablib.Dataset().load(decode_csv(data), format="csv")
    headers = [str(h or "").strip().lower() for h in dataset.headers or []]
    rows = []
    for values in dataset:
        row = {h: ("" if v is None else str(v).strip()) for h, v in zip(headers, values) if h}
        if any(row.values()):
            rows.append(row)
    return rows
