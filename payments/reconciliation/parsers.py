"""Provider statement files: decode, recognise the layout, parse to rows.  No database access.

Three layouts:

* WeChat Pay trade bill (交易账单, bill type ALL): a header line, one line per transaction with every
  field prefixed by a backtick (so spreadsheets keep long numbers as text), then a summary section
  (``总交易单数,应结订单总金额,退款总金额,…`` and one line of totals).  A payment is a row with
  交易状态 SUCCESS (amount: 应结订单金额, else 订单金额); a refund is a row with REFUND (微信退款单号,
  商户退款单号, 退款金额).  Other states (REVOKED, CLOSED, …) move no money and are kept as ignored.
* Alipay business detail (业务明细): ``#`` comment lines above and below the table (account, period,
  totals, export time), cells padded with tabs.  业务类型 交易 is a payment (订单金额（元）), 退款 a refund
  (its amount from 商家实收（元）, else 订单金额（元）, as a positive number; our refund number in
  退款批次号/请求号).
* Generic CSV: ``provider_ref, our_ref, type (payment|refund), amount, time`` and optionally ``fee``.

Each row carries the provider's fee as the merchant bears it (WeChat 手续费; Alipay 服务费, whose
sign is the other way round): positive when charged on a payment, negative when given back with a
refund.

Files are read as UTF-8 (with or without a byte-order mark), else as GB18030 (a superset of GBK,
which provider exports commonly use).  Any malformed content raises ``InvalidStatement`` with the
line number; nothing is half parsed.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from o2o.errors import InvalidInput
from o2o.money import money, money_parse

PAYMENT, REFUND, IGNORED = "payment", "refund", "ignored"
LAYOUTS = ("wechat", "alipay", "generic")
MAX_BYTES = 50 * 1024 * 1024


class InvalidStatement(InvalidInput):
    code = "invalid_statement"
    default_message = _("The statement file cannot be read.")


@dataclass(frozen=True)
class Row:
    row_no: int
    kind: str
    provider_ref: str
    our_ref: str
    amount: Decimal
    occurred_at: datetime | None
    status: str = ""
    raw: dict = field(default_factory=dict, compare=False)
    # The provider's fee (手续费 / 服务费) on this row, as the merchant bears it: positive when
    # charged (a payment), negative when given back (a refund); zero when the file names none.
    fee: Decimal = Decimal("0.00")

    @property
    def net(self) -> Decimal:
        """What the row moves on the merchant's account: a payment less its fee, a refund (negative)
        plus the fee given back."""
        if self.kind == PAYMENT:
            return self.amount - self.fee
        if self.kind == REFUND:
            return -self.amount - self.fee
        return Decimal("0.00")


@dataclass
class Parsed:
    layout: str
    encoding: str
    rows: list[Row]
    period_start: datetime | None = None
    period_end: datetime | None = None


def decode(data: bytes) -> tuple[str, str]:
    """The file's text and the encoding that read it: UTF-8 (BOM or not), else GB18030."""
    if not isinstance(data, (bytes, bytearray)) or not data.strip():
        raise InvalidStatement(_("The file is empty."), code="statement_empty")
    if len(data) > MAX_BYTES:
        raise InvalidStatement(_("The file is too large."), code="statement_too_large")
    if b"\x00" in data:
        raise InvalidStatement(_("This is not a text (CSV) file."), code="statement_not_text")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise InvalidStatement(_("The file is neither UTF-8 nor GBK/GB18030 text."), code="statement_encoding")


def detect_layout(text: str) -> str:
    head = text[:4000]
    if "微信订单号" in head and "商户订单号" in head:
        return "wechat"
    if "支付宝交易号" in head:
        return "alipay"
    first = next((line for line in head.splitlines() if line.strip()), "")
    if "provider_ref" in first and "our_ref" in first:
        return "generic"
    raise InvalidStatement(_("Unknown statement layout: expected a WeChat Pay trade bill, an Alipay business "
                             "detail or the generic CSV columns."), code="statement_layout")


def parse(data: bytes, *, layout: str = "auto", progress: Callable[[int], None] | None = None) -> Parsed:
    """Decode and parse a statement file.  ``progress(n)`` is called with each batch of rows read."""
    text, encoding = decode(data)
    layout = detect_layout(text) if layout in ("", "auto", None) else layout
    if layout not in LAYOUTS:
        raise InvalidStatement(_("Unknown statement layout."), code="statement_layout", params={"layout": layout})
    parser = {"wechat": _parse_wechat, "alipay": _parse_alipay, "generic": _parse_generic}[layout]
    parsed = parser(text, progress or (lambda n: None))
    parsed.layout, parsed.encoding = layout, encoding
    if not parsed.rows:
        raise InvalidStatement(_("The statement has no transactions."), code="statement_no_rows")
    if parsed.period_start is None:
        parsed.period_start, parsed.period_end = _days_spanned(r.occurred_at for r in parsed.rows)
    return parsed


# --- cells ----------------------------------------------------------------------------------------


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _cell(value: str | None) -> str:
    return (value or "").strip().lstrip("`").strip()


def _amount(value: str, *, line: int, column: str, signed: bool = False) -> Decimal:
    try:
        return money_parse(_cell(value), signed=signed, symbols=True)
    except ValueError:
        raise InvalidStatement(_("Line %(line)s: %(column)s is not an amount.") % {"line": line, "column": column},
                               code="statement_bad_amount", params={"line": line, "column": column}) from None


TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S",
                "%Y年%m月%d日 %H:%M:%S")


def _time(value: str, *, line: int, column: str) -> datetime:
    text = _cell(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
        for fmt in TIME_FORMATS:
            try:
                moment = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if moment is None:
        raise InvalidStatement(_("Line %(line)s: %(column)s is not a time.") % {"line": line, "column": column},
                               code="statement_bad_time", params={"line": line, "column": column})
    return moment.replace(tzinfo=_zone()) if moment.tzinfo is None else moment


def _ref(value: str, *, line: int, column: str, required: bool = True) -> str:
    text = _cell(value)
    if (required and not text) or len(text) > 64:
        raise InvalidStatement(_("Line %(line)s: %(column)s is missing or too long.") % {"line": line,
                                                                                         "column": column},
                               code="statement_bad_reference", params={"line": line, "column": column})
    return text


def _days_spanned(times: Iterable[datetime | None]) -> tuple[datetime | None, datetime | None]:
    days = sorted({t.astimezone(_zone()).date() for t in times if t is not None})
    if not days:
        return None, None
    start = datetime.combine(days[0], datetime.min.time(), tzinfo=_zone())
    end = datetime.combine(days[-1], datetime.min.time(), tzinfo=_zone())
    return start, end + timedelta(days=1)


def _records(lines: list[str], first_line: int) -> Iterable[tuple[int, list[str]]]:
    """CSV records with the file line number each starts on; a broken quote is malformed input."""
    reader = csv.reader(io.StringIO("\n".join(lines)), strict=True)
    try:
        for record in reader:
            yield first_line + reader.line_num - 1, record
    except csv.Error as exc:
        raise InvalidStatement(_("Line %(line)s: malformed CSV (%(error)s).") % {
            "line": first_line + reader.line_num - 1, "error": exc}, code="statement_malformed") from None


def _header_index(header: list[str], names: dict[str, tuple[str, ...]], *, line: int) -> dict[str, int]:
    clean = [_cell(h).replace("\ufeff", "") for h in header]
    index, missing = {}, []
    for key, candidates in names.items():
        found = next((clean.index(c) for c in candidates if c in clean), None)
        if found is None:
            missing.append(candidates[0])
        index[key] = found
    if missing:
        raise InvalidStatement(_("Line %(line)s: the header lacks %(columns)s.") % {
            "line": line, "columns": ", ".join(missing)}, code="statement_bad_header",
            params={"line": line, "columns": missing})
    return index


def _optional_index(header: list[str], names: tuple[str, ...]) -> int | None:
    clean = [_cell(h).replace("\ufeff", "") for h in header]
    return next((clean.index(c) for c in names if c in clean), None)


FEE_TEXT = re.compile(r"[-+]?\d{1,12}(\.\d{1,6})?")


def _fee_exact(record: list[str], at: int | None, *, line: int, column: str, sign: int = 1) -> Decimal:
    """The fee cell as the merchant bears it, exactly as written (WeChat prints five decimals);
    ``sign`` -1 for files that show a charge as negative."""
    if at is None or at >= len(record) or not _cell(record[at]):
        return Decimal("0")
    text = _cell(record[at]).replace(",", "")
    if not FEE_TEXT.fullmatch(text):
        raise InvalidStatement(_("Line %(line)s: %(column)s is not an amount.") % {"line": line, "column": column},
                               code="statement_bad_amount", params={"line": line, "column": column})
    return sign * Decimal(text)


def _fee(record: list[str], at: int | None, *, line: int, column: str, sign: int = 1) -> Decimal:
    """The fee rounded to the fen, as it is settled."""
    return money(_fee_exact(record, at, line=line, column=column, sign=sign))


def _get(record: list[str], index: dict[str, int], key: str, *, line: int) -> str:
    i = index[key]
    if i >= len(record):
        raise InvalidStatement(_("Line %(line)s: too few columns.") % {"line": line}, code="statement_short_row",
                               params={"line": line})
    return record[i]


# --- WeChat Pay -------------------------------------------------------------------------------------

WECHAT_COLUMNS = {
    "time": ("交易时间",), "txn": ("微信订单号",), "out_trade_no": ("商户订单号",), "state": ("交易状态",),
    "settled": ("应结订单金额", "订单金额"), "refund_id": ("微信退款单号",), "out_refund_no": ("商户退款单号",),
    "refund": ("退款金额", "申请退款金额"),
}
WECHAT_SUMMARY = "总交易单数"
WECHAT_FEE = ("手续费",)


def _parse_wechat(text: str, progress) -> Parsed:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip())
    header_line = start + 1
    body_end = next((i for i in range(start + 1, len(lines)) if _cell(lines[i].split(",")[0]) == WECHAT_SUMMARY),
                    None)
    records = list(_records(lines[start:body_end], header_line))
    index = _header_index(records[0][1], WECHAT_COLUMNS, line=header_line)
    fee_at = _optional_index(records[0][1], WECHAT_FEE)
    rows, fees_exact = [], Decimal("0")
    for line, record in records[1:]:
        if not any(_cell(c) for c in record):
            continue
        exact = _fee_exact(record, fee_at, line=line, column=WECHAT_FEE[0])
        fees_exact += exact
        fee = money(exact)
        state = _cell(_get(record, index, "state", line=line)).upper()
        when = _time(_get(record, index, "time", line=line), line=line, column="交易时间")
        raw = {h: _cell(v) for h, v in zip((_cell(h) for h in records[0][1]), record)}
        if state == "SUCCESS":
            rows.append(Row(line, PAYMENT, _ref(_get(record, index, "txn", line=line), line=line, column="微信订单号"),
                            _ref(_get(record, index, "out_trade_no", line=line), line=line, column="商户订单号"),
                            _amount(_get(record, index, "settled", line=line), line=line, column="应结订单金额"),
                            when, state, raw, fee))
        elif state == "REFUND":
            rows.append(Row(line, REFUND,
                            _ref(_get(record, index, "refund_id", line=line), line=line, column="微信退款单号"),
                            _ref(_get(record, index, "out_refund_no", line=line), line=line, column="商户退款单号"),
                            _amount(_get(record, index, "refund", line=line), line=line, column="退款金额"),
                            when, state, raw, fee))
        else:
            rows.append(Row(line, IGNORED, _cell(_get(record, index, "txn", line=line))[:64],
                            _cell(_get(record, index, "out_trade_no", line=line))[:64], Decimal("0.00"), when, state,
                            raw))
        if len(rows) % 1000 == 0:
            progress(1000)
    progress(len(rows) % 1000)
    if body_end is not None:
        _wechat_summary_check(lines, body_end, rows, fees_exact if fee_at is not None else None)
    return Parsed(layout="wechat", encoding="", rows=rows)


def _wechat_summary_check(lines: list[str], at: int, rows: list[Row], fees: Decimal | None) -> None:
    """The summary must agree with the rows: a truncated or edited file is refused."""
    records = [r for _, r in _records(lines[at:at + 2], at + 1)]
    if len(records) < 2:
        raise InvalidStatement(_("The WeChat Pay bill's summary has no totals line."), code="statement_summary")
    summary = {_cell(k): _cell(v) for k, v in zip(records[0], records[1])}
    paid = sum((r.amount for r in rows if r.kind == PAYMENT), Decimal("0.00"))
    refunded = sum((r.amount for r in rows if r.kind == REFUND), Decimal("0.00"))
    checks = [("总交易单数", str(len(rows))), ("应结订单总金额", str(paid)), ("退款总金额", str(refunded))]
    if fees is not None:
        checks.append(("手续费总金额", str(fees)))
    for key, expected in checks:
        if key in summary:
            value = summary[key]
            if key == "总交易单数":
                same = value == expected
            elif key == "手续费总金额":  # five decimals, as the rows
                same = bool(FEE_TEXT.fullmatch(value.replace(",", ""))) and Decimal(value.replace(",", "")) == \
                    Decimal(expected)
            else:
                same = _amount(value, line=at + 2, column=key) == Decimal(expected)
            if not same:
                raise InvalidStatement(
                    _("The WeChat Pay bill's summary (%(key)s %(value)s) does not match its rows (%(expected)s).")
                    % {"key": key, "value": value, "expected": expected}, code="statement_summary",
                    params={"column": key})


# --- Alipay ------------------------------------------------------------------------------------------

ALIPAY_COLUMNS = {
    "trade_no": ("支付宝交易号",), "out_trade_no": ("商户订单号",), "type": ("业务类型",),
    "time": ("完成时间", "创建时间"), "amount": ("订单金额（元）", "订单金额(元)"),
    "received": ("商家实收（元）", "商家实收(元)"), "refund_no": ("退款批次号/请求号",),
}
ALIPAY_FEE = ("服务费（元）", "服务费(元)")
ALIPAY_PERIOD = re.compile(r"起始日期[:：]\[(?P<start>[^\]]+)\].*终止日期[:：]\[(?P<end>[^\]]+)\]")
ALIPAY_TOTALS = re.compile(r"交易合计[:：](?P<trades>\d+)笔.*退款合计[:：](?P<refunds>\d+)笔")


def _parse_alipay(text: str, progress) -> Parsed:
    lines = text.splitlines()
    period_start = period_end = totals = None
    table: list[str] = []
    first = None
    for i, line in enumerate(lines, start=1):
        if line.lstrip().startswith("#"):
            if match := ALIPAY_PERIOD.search(line):
                period_start = _time(match["start"], line=i, column="起始日期")
                period_end = _time(match["end"], line=i, column="终止日期")
            if match := ALIPAY_TOTALS.search(line):
                totals = (int(match["trades"]), int(match["refunds"]))
            continue
        if line.strip():
            first = first or i
            table.append(line)
    if not table:
        raise InvalidStatement(_("The statement has no transactions."), code="statement_no_rows")
    records = list(_records(table, first))
    index = _header_index(records[0][1], ALIPAY_COLUMNS, line=first)
    fee_at = _optional_index(records[0][1], ALIPAY_FEE)
    header = [_cell(h) for h in records[0][1]]
    rows = []
    for line, record in records[1:]:
        kind_text = _cell(_get(record, index, "type", line=line))
        when = _time(_get(record, index, "time", line=line), line=line, column="完成时间")
        raw = {h: _cell(v) for h, v in zip(header, record)}
        trade_no = _ref(_get(record, index, "trade_no", line=line), line=line, column="支付宝交易号")
        # 服务费 is negative when Alipay charges it (a trade) and positive when it gives it back (a refund).
        fee = _fee(record, fee_at, line=line, column=ALIPAY_FEE[0], sign=-1)
        if kind_text == "交易":
            rows.append(Row(line, PAYMENT, trade_no,
                            _ref(_get(record, index, "out_trade_no", line=line), line=line, column="商户订单号"),
                            _amount(_get(record, index, "amount", line=line), line=line, column="订单金额（元）"),
                            when, kind_text, raw, fee))
        elif kind_text == "退款":
            received = _amount(_cell(_get(record, index, "received", line=line)) or "0", line=line,
                               column="商家实收（元）", signed=True)
            amount = abs(received) or abs(_amount(_get(record, index, "amount", line=line), line=line,
                                                  column="订单金额（元）", signed=True))
            # Alipay has no refund id of its own here: the refund is known by our request number.
            rows.append(Row(line, REFUND, "",
                            _ref(_get(record, index, "refund_no", line=line), line=line, column="退款批次号/请求号"),
                            amount, when, kind_text, raw, fee))
        else:
            rows.append(Row(line, IGNORED, trade_no, _cell(_get(record, index, "out_trade_no", line=line))[:64],
                            Decimal("0.00"), when, kind_text, raw))
        if len(rows) % 1000 == 0:
            progress(1000)
    progress(len(rows) % 1000)
    if totals is not None:
        found = (sum(r.kind == PAYMENT for r in rows), sum(r.kind == REFUND for r in rows))
        if found != totals:
            raise InvalidStatement(_("The Alipay footer counts %(expected)s trades/refunds but the file has "
                                     "%(found)s.") % {"expected": totals, "found": found}, code="statement_summary")
    return Parsed(layout="alipay", encoding="", rows=rows, period_start=period_start, period_end=period_end)


# --- generic -------------------------------------------------------------------------------------------

GENERIC_COLUMNS = {"provider_ref": ("provider_ref",), "our_ref": ("our_ref",), "type": ("type",),
                   "amount": ("amount",), "time": ("time",)}


def _parse_generic(text: str, progress) -> Parsed:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip())
    records = list(_records(lines[start:], start + 1))
    index = _header_index(records[0][1], GENERIC_COLUMNS, line=start + 1)
    fee_at = _optional_index(records[0][1], ("fee",))
    header = [_cell(h) for h in records[0][1]]
    rows = []
    for line, record in records[1:]:
        if not any(_cell(c) for c in record):
            continue
        kind = _cell(_get(record, index, "type", line=line)).lower()
        if kind not in (PAYMENT, REFUND):
            raise InvalidStatement(_("Line %(line)s: type must be payment or refund.") % {"line": line},
                                   code="statement_bad_type", params={"line": line})
        provider_ref = _ref(_get(record, index, "provider_ref", line=line), line=line, column="provider_ref",
                            required=False)
        our_ref = _ref(_get(record, index, "our_ref", line=line), line=line, column="our_ref", required=False)
        if not provider_ref and not our_ref:
            raise InvalidStatement(_("Line %(line)s: give provider_ref or our_ref.") % {"line": line},
                                   code="statement_bad_reference", params={"line": line})
        rows.append(Row(line, kind, provider_ref, our_ref,
                        _amount(_get(record, index, "amount", line=line), line=line, column="amount"),
                        _time(_get(record, index, "time", line=line), line=line, column="time"), "",
                        {h: _cell(v) for h, v in zip(header, record)},
                        _fee(record, fee_at, line=line, column="fee")))
        if len(rows) % 1000 == 0:
            progress(1000)
    progress(len(rows) % 1000)
    return Parsed(layout="generic", encoding="", rows=rows)
