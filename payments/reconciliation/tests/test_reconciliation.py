"""Reconciliation: provider statements parsed in every layout and encoding, matched to our payments and
refunds, every kind of mismatch, idempotent imports, every malformed input refused whole, resolving
with a note, the command and the admin."""

import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.urls import reverse
from openpyxl import load_workbook

from o2o.errors import InvalidInput
from payments.models import Payment
from payments.reconciliation import parsers, services
from payments.reconciliation.models import Mismatch, ReconciliationRun, StatementRow
from payments.reconciliation.tests import samples
from payments.tests.factories import PaymentFactory, RefundFactory

pytestmark = pytest.mark.django_db
D = Decimal
SH = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int = 0, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SH)


def payment(number, txn, amount, provider="wechat_pay", hour=10, status="captured", **kw):
    return PaymentFactory(number=number, provider=provider, tender=provider if provider != "unionpay"
                          else "unionpay_card", provider_txn_id=txn, amount=D(amount), status=status,
                          captured_at=at(hour) if status == "captured" else None, **kw)


def refund(pay, number, provider_refund_id, amount, hour=15, status="succeeded", method="original"):
    return RefundFactory(payment=pay, number=number, provider_refund_id=provider_refund_id, amount=D(amount),
                         status=status, method=method, completed_at=at(hour) if status != "pending" else None)


def results(run) -> dict[int, str]:
    return dict(run.rows.values_list("row_no", "result"))


def mismatches(run) -> set[tuple[str, str]]:
    return set(run.mismatches.values_list("kind", "reference"))


@pytest.fixture
def wechat_day():
    """Our side of a WeChat Pay day, and the provider's bill of it (GBK)."""
    ours = {
        "ok": payment("PY001", "4200001", "99.00"),
        "differs": payment("PY002", "4200002", "120.00"),
        "refunded": payment("PY003", "4200003", "300.00"),
        "theirs_missing": payment("PY004", "4200004", "45.50", hour=22),
        "other_day": payment("PY005", "4200005", "10.00", hour=1, ),
    }
    Payment.objects.filter(pk=ours["other_day"].pk).update(captured_at=at(1, day=24))
    ours["refund"] = refund(ours["refunded"], "RF001", "5030001", "50.00")
    ours["refund_missing"] = refund(ours["ok"], "RF002", "5030002", "9.00", hour=18)
    ours["cash_refund"] = refund(ours["ok"], "RF003", None, "1.00", method="cash")
    bill = samples.wechat_bill([
        samples.wechat_payment("2026-11-23 10:00:01", "4200001", "PY001", "99.00"),
        samples.wechat_payment("2026-11-23 10:00:02", "4200002", "PY002", "121.00"),
        samples.wechat_payment("2026-11-23 10:00:03", "4200003", "PY003", "300.00"),
        samples.wechat_payment("2026-11-23 11:00:00", "4200099", "PY099", "66.00"),
        samples.wechat_refund("2026-11-23 15:00:00", "4200003", "PY003", "5030001", "RF001", "50.00", "300.00"),
        samples.wechat_payment("2026-11-23 12:00:00", "4200098", "PY098", "5.00", state="REVOKED"),
        samples.wechat_payment("2026-11-23 10:00:01", "4200001", "PY001", "99.00"),
    ])
    return ours, samples.encode(bill, "gbk")


def test_a_wechat_bill_in_gbk_is_matched_and_every_mismatch_reported(wechat_day):
    ours, data = wechat_day
    result = services.reconciliation_import(data=data, file_name="wx_20261123.csv")

    run = result.run
    assert result.created and (run.provider, run.layout, run.encoding) == ("wechat_pay", "wechat", "gb18030")
    assert (run.period_start, run.period_end) == (at(0), at(0, day=24))
    assert results(run) == {2: "matched", 3: "amount_mismatch", 4: "matched", 5: "missing_ours", 6: "matched",
                            7: "ignored", 8: "duplicate"}
    assert mismatches(run) == {("amount_mismatch", "4200002"), ("missing_ours", "4200099"), ("duplicate", "4200001"),
                               ("missing_theirs", "4200004"), ("missing_theirs", "5030002")}
    differs = run.mismatches.get(kind="amount_mismatch")
    assert (differs.their_amount, differs.our_amount, differs.payment) == (D("121.00"), D("120.00"), ours["differs"])
    assert run.rows.get(row_no=6).refund == ours["refund"]
    assert (run.matched, run.missing_ours, run.missing_theirs, run.amount_mismatches, run.duplicates,
            run.ignored) == (3, 1, 2, 1, 1, 1)
    assert (run.their_payments, run.their_refunds) == (D("685.00"), D("50.00"))


def test_the_same_file_twice_changes_nothing(wechat_day):
    _, data = wechat_day
    first = services.reconciliation_import(data=data, file_name="wx.csv").run
    counts = (ReconciliationRun.objects.count(), StatementRow.objects.count(), Mismatch.objects.count())

    again = services.reconciliation_import(data=data, file_name="wx-copy.csv")
    explicit = services.reconciliation_import(data=data, file_name="wx.csv", provider="wechat_pay")

    assert (again.created, again.run, explicit.created, explicit.run) == (False, first, False, first)
    assert (ReconciliationRun.objects.count(), StatementRow.objects.count(), Mismatch.objects.count()) == counts


def test_a_later_statement_resolves_what_an_earlier_one_missed(wechat_day):
    ours, data = wechat_day
    first = services.reconciliation_import(data=data, file_name="wx.csv").run
    late = samples.wechat_bill([samples.wechat_payment("2026-11-23 22:00:00", "4200004", "PY004", "45.50"),
                                samples.wechat_payment("2026-11-23 10:00:01", "4200001", "PY001", "99.00")])
    second = services.reconciliation_import(data=samples.encode(late, "utf-8"), file_name="wx-fix.csv").run

    found = first.mismatches.get(kind="missing_theirs", payment=ours["theirs_missing"])
    assert found.resolved_at is not None and f"#{second.pk}" in found.resolution_note
    assert results(second) == {2: "matched", 3: "duplicate"}
    assert second.mismatches.get(kind="duplicate").detail == f"also in the earlier statement run #{first.pk}"
    # The refund still missing is not reported twice.
    assert not second.mismatches.filter(kind="missing_theirs").exists()


def test_an_alipay_business_detail_is_matched_by_trade_and_request_numbers():
    ok = payment("PY101", "2026112322001400001", "88.00", provider="alipay")
    payment("PY102", None, "20.00", provider="alipay", hour=11)  # no transaction id: found by its number
    back = refund(ok, "RF101", None, "8.00")
    text = samples.alipay_detail([
        samples.alipay_trade("2026112322001400001", "PY101", "2026-11-23 10:00:05", "88.00"),
        samples.alipay_trade("2026112322001400002", "PY102", "2026-11-23 11:00:00", "20.00"),
        samples.alipay_refund("2026112322001400001", "PY101", "2026-11-23 15:00:00", "8.00", "RF101", "88.00"),
    ], start="2026年11月23日 00:00:00", end="2026年11月24日 00:00:00")

    run = services.reconciliation_import(data=samples.encode(text), file_name="alipay.csv").run

    assert (run.provider, run.layout, run.encoding, run.period_start) == ("alipay", "alipay", "gb18030", at(0))
    assert results(run) == {6: "matched", 7: "matched", 8: "matched"}
    assert run.rows.get(row_no=8).refund == back and not run.mismatches.exists()


def test_a_generic_csv_needs_its_provider_and_reads_utf8_with_a_bom():
    card = payment("PY201", "T-0001", "59.90", provider="unionpay")
    text = samples.generic([("T-0001", "PY201", "payment", "59.90", "2026-11-23 10:00:00"),
                            ("", "RF999", "refund", "3.00", "2026-11-23T11:00:00+08:00")])
    data = samples.encode(text, "utf-8-sig")
    with pytest.raises(InvalidInput, match="provider_required"):
        services.reconciliation_import(data=data, file_name="unionpay.csv")

    run = services.reconciliation_import(data=data, file_name="unionpay.csv", provider="unionpay").run

    assert (run.encoding, results(run)) == ("utf-8-sig", {2: "matched", 3: "missing_ours"})
    assert run.rows.get(row_no=2).payment == card


def test_our_payment_not_captured_or_captured_by_another_transaction_is_missing_on_our_side():
    payment("PY301", None, "10.00", status="cancelled")
    payment("PY302", "4200302", "10.00")
    bill = samples.wechat_bill([samples.wechat_payment("2026-11-23 10:00:00", "4200301", "PY301", "10.00"),
                                samples.wechat_payment("2026-11-23 10:00:00", "4200399", "PY302", "10.00")])
    run = services.reconciliation_import(data=samples.encode(bill), file_name="wx.csv").run
    details = dict(run.mismatches.filter(kind="missing_ours").values_list("reference", "detail"))
    assert details == {"4200301": "our payment PY301 is cancelled",
                       "4200399": "our payment PY302 was captured by transaction 4200302, not this one"}


# --- malformed input: refused whole ----------------------------------------------------------------

GOOD = samples.wechat_bill([samples.wechat_payment("2026-11-23 10:00:00", "4200001", "PY001", "10.00")])


@pytest.mark.parametrize("data,code", [
    (b"", "statement_empty"),
    (b"   \r\n", "statement_empty"),
    (b"PK\x03\x04\x00\x00binary", "statement_not_text"),
    ("交易时间,微信订单号".encode("utf-8") + b"\xff\xfe\xfa", "statement_encoding"),
    (samples.encode("order,amount\n1,2\n"), "statement_layout"),
    (samples.encode(GOOD.replace("交易状态", "状态")), "statement_bad_header"),
    (samples.encode(GOOD.replace("`10.00,`0.00", "`10.005,`0.00", 1)), "statement_bad_amount"),
    (samples.encode(GOOD.replace("`10.00,`0.00", "`abc,`0.00", 1)), "statement_bad_amount"),
    (samples.encode(GOOD.replace("2026-11-23 10:00:00", "23/11/2026")), "statement_bad_time"),
    (samples.encode(GOOD.replace("`4200001", "`")), "statement_bad_reference"),
    (samples.encode(GOOD.replace("`1,", "`2,", 1)), "statement_summary"),
    (samples.encode(samples.WECHAT_HEADER + "\r\n" + samples.WECHAT_SUMMARY + "\r\n`0,`0.00,`0.00,`0,`0,`0,`0\r\n"),
     "statement_no_rows"),
    (samples.encode(GOOD.replace(",`NATIVE", ',"NATIVE', 1)), "statement_malformed"),
    (samples.encode(samples.WECHAT_HEADER + "\r\n`2026-11-23 10:00:00,`wx\r\n"), "statement_short_row"),
    (samples.encode(samples.generic([("T1", "PY1", "charge", "1.00", "2026-11-23 10:00:00")])),
     "statement_bad_type"),
    (samples.encode(samples.generic([("", "", "payment", "1.00", "2026-11-23 10:00:00")])),
     "statement_bad_reference"),
    (samples.encode(samples.generic([("T1", "PY1", "payment", "-1.00", "2026-11-23 10:00:00")])),
     "statement_bad_amount"),
    (samples.encode(samples.alipay_detail([samples.alipay_trade("2026", "PY1", "2026-11-23 10:00:00", "1.00")],
                                          start="2026年11月23日 00:00:00", end="2026年11月24日 00:00:00",
                                          totals=(2, 0))), "statement_summary"),
])
def test_malformed_statements_are_refused_and_nothing_is_written(data, code):
    before = (ReconciliationRun.objects.count(), StatementRow.objects.count(), Mismatch.objects.count())
    with pytest.raises(parsers.InvalidStatement) as caught:
        services.reconciliation_import(data=data, file_name="x.csv", provider="wechat_pay")
    assert caught.value.code == code
    assert (ReconciliationRun.objects.count(), StatementRow.objects.count(), Mismatch.objects.count()) == before


def test_a_bill_without_its_summary_section_is_still_read():
    run = services.reconciliation_import(data=samples.encode(GOOD.split("总交易单数")[0]), file_name="x.csv").run
    assert (run.rows_total, run.missing_ours) == (1, 1)


def test_an_unknown_provider_is_refused():
    with pytest.raises(InvalidInput, match="provider_required"):
        services.reconciliation_import(data=samples.encode(GOOD), file_name="x.csv", provider="paypal")


def test_the_same_bill_in_utf8_and_gbk_reads_the_same():
    utf8, gbk = parsers.parse(GOOD.encode("utf-8")), parsers.parse(GOOD.encode("gbk"))
    assert (utf8.encoding, gbk.encoding) == ("utf-8-sig", "gb18030")
    assert utf8.rows == gbk.rows


# --- resolving -------------------------------------------------------------------------------------


def test_a_mismatch_is_resolved_once_with_a_note_saying_who_and_when(wechat_day, hq_user):
    run = services.reconciliation_import(data=wechat_day[1], file_name="wx.csv").run
    mismatch = run.mismatches.get(kind="missing_ours")
    for bad in ("", "   ", "x" * 301, None):
        with pytest.raises(InvalidInput):
            services.mismatch_resolve(mismatch=mismatch, actor=hq_user, note=bad)

    done = services.mismatch_resolve(mismatch=mismatch.pk, actor=hq_user, note="WeChat refunded it on 11-24")

    assert (done.resolved_by, done.resolution_note) == (hq_user, "WeChat refunded it on 11-24")
    assert done.resolved_at is not None
    with pytest.raises(services.MismatchAlreadyResolved):
        services.mismatch_resolve(mismatch=mismatch, actor=hq_user, note="again")
    with pytest.raises(IntegrityError), transaction.atomic():
        Mismatch.objects.filter(pk=mismatch.pk).update(resolution_note="")


# --- the command -----------------------------------------------------------------------------------


def test_the_command_imports_with_a_progress_bar_and_once(wechat_day, tmp_path):
    path = tmp_path / "wx_20261123.csv"
    path.write_bytes(wechat_day[1])
    out, err = io.StringIO(), io.StringIO()
    call_command("import_statement", str(path), stdout=out, stderr=err)
    assert "3 matched, 1 missing on our side, 2 missing on theirs, 1 amount mismatches, 1 duplicates" in \
        out.getvalue()
    assert "rows" in err.getvalue()

    again = io.StringIO()
    call_command("import_statement", str(path), stdout=again, stderr=io.StringIO())
    assert "already imported" in again.getvalue() and ReconciliationRun.objects.count() == 1

    path.write_bytes(b"\x00")
    with pytest.raises(CommandError, match="statement_not_text"):
        call_command("import_statement", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_statement", str(tmp_path / "nope.csv"))


# --- the admin -------------------------------------------------------------------------------------


def test_admin_upload_resolve_and_export(client, hq_user, wechat_day):
    client.force_login(hq_user)
    add = reverse("admin:payments_reconciliationrun_add")
    assert client.get(add).status_code == 200
    bad = client.post(add, {"file": io.BytesIO(b"\x00"), "layout": "auto", "provider": ""})
    assert bad.status_code == 200 and "not a text" in bad.content.decode()

    upload = io.BytesIO(wechat_day[1])
    upload.name = "wx_20261123.csv"
    response = client.post(add, {"file": upload, "layout": "auto", "provider": ""})
    run = ReconciliationRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{run.pk}/change/")
    assert client.get(response["Location"]).status_code == 200
    changelist = reverse("admin:payments_mismatch_changelist")
    assert client.get(changelist + "?resolved=no").context["cl"].result_count == 5

    ids = list(run.mismatches.filter(kind="missing_theirs").values_list("pk", flat=True))
    ask = client.post(changelist, {"action": "resolve", "_selected_action": ids})
    assert ask.status_code == 200 and 'name="note"' in ask.content.decode()
    done = client.post(changelist, {"action": "resolve", "_selected_action": ids, "apply": "1",
                                    "note": "captured after the bill cut-off"})
    assert done.status_code == 302
    assert set(Mismatch.objects.filter(pk__in=ids).values_list("resolution_note", "resolved_by")) == {
        ("captured after the bill cut-off", hq_user.pk)}

    csv_export = client.post(changelist, {"action": "export_csv", "_selected_action": ids})
    body = b"".join(csv_export.streaming_content).decode("utf-8-sig")
    assert "captured after the bill cut-off" in body and "4200004" in body
    xlsx = client.post(reverse("admin:payments_reconciliationrun_changelist"),
                       {"action": "export_mismatches_xlsx", "_selected_action": [run.pk]})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.max_row == 1 + run.mismatches.count()
    assert client.get(reverse("admin:payments_statementrow_changelist") + "?result__exact=duplicate") \
        .context["cl"].result_count == 1
