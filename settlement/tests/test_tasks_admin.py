"""Settlement jobs called directly (retries, domain errors, the beat job) and the head-office admin:
statements by day, store and channel, drill-down to the lines and the rule, exports, the schedule."""

import io
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from o2o.errors import DomainError
from o2o.schedule import BEAT_SCHEDULE
from settlement import services, tasks
from settlement.exceptions import DayNotOver
from settlement.models import SettlementDay, SettlementStatement, SplitLine, SplitRule, StoreSettlement
from settlement.tests.scenario import build_day, end_of_today, shift_days, shop

pytestmark = pytest.mark.django_db
D = Decimal


def yesterday():
    return services.business_day_of(timezone.now()) - timedelta(days=1)


# --- jobs ---------------------------------------------------------------------------------------


def test_the_jobs_ack_late_and_retry_only_transient_errors():
    for task in (tasks.settlement_day, tasks.settlement_daily):
        assert task.acks_late and task.reject_on_worker_lost
        assert OperationalError in task.autoretry_for and ConnectionError in task.autoretry_for
        assert not any(issubclass(DomainError, e) for e in task.autoretry_for)
        assert task.retry_backoff and task.retry_backoff_max == 600 and task.max_retries == 6


def test_a_transient_database_error_is_retried_then_the_day_settles():
    build_day(shop())
    shift_days(1)
    real = services.settlement_run
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)

    with mock.patch.object(services, "settlement_run", flaky):
        result = tasks.settlement_day.apply(args=[yesterday().isoformat()])

    assert result.successful() and len(calls) == 2
    assert SettlementDay.objects.get(day=yesterday()).status == "closed"


def test_a_domain_error_fails_the_job_without_retrying():
    shop()
    with mock.patch.object(services, "settlement_run", wraps=services.settlement_run) as run:
        result = tasks.settlement_day.apply(args=[(yesterday() + timedelta(days=2)).isoformat()])
    assert result.failed() and isinstance(result.result, DayNotOver)
    assert run.call_count == 1 and not SettlementDay.objects.exists()


def test_the_beat_job_settles_the_last_ended_day(monkeypatch):
    build_day(shop())
    shift_days(1)
    # The job runs at midday: just after midnight, yesterday is still within its grace period and
    # the last ended day is the one before (a run then would rightly settle that one).
    midday = services.day_start(services.business_day_of(timezone.now())) + timedelta(hours=12)
    monkeypatch.setattr("django.utils.timezone.now", lambda: midday)
    result = tasks.settlement_daily.apply()
    assert result.get() == yesterday().isoformat()
    assert SettlementDay.objects.get().net == D("1127.17")
    assert tasks.settlement_daily.apply().successful()  # again: nothing to do
    assert SettlementDay.objects.count() == 1


# --- admin --------------------------------------------------------------------------------------


@pytest.fixture
def settled(client, hq_user):
    s = shop()
    build_day(s)
    [day] = services.settlement_run(until=services.business_day_of(timezone.now()), now=end_of_today())
    client.force_login(hq_user)
    return s, day


def url(model: str, view: str = "changelist", *args) -> str:
    return reverse(f"admin:settlement_{model}_{view}", args=args)


def test_statements_by_day_store_and_channel_drill_down_to_lines_and_rules(client, settled):
    s, day = settled
    listing = client.get(url("settlementstatement") + f"?business_day={day.day.isoformat()}&channel__exact=pos")
    assert listing.status_code == 200
    assert {st.store for st in listing.context["cl"].result_list} == {s["a"], s["b"]}
    pickup = SettlementStatement.objects.get(store=s["a"], channel="mini_program")
    page = client.get(url("settlementstatement", "change", pickup.pk))
    assert page.status_code == 200 and f"statement__id__exact={pickup.pk}" in page.content.decode()

    lines = client.get(url("splitline") + f"?statement__id__exact={pickup.pk}")
    assert lines.status_code == 200
    assert {line.rule for line in lines.context["cl"].result_list} == {s["rules"]["online"]}
    line = SplitLine.objects.filter(statement=pickup, kind="sale").first()
    detail = client.get(url("splitline", "change", line.pk)).content.decode()
    assert "线上订单门店履约" in detail and "10.50" in detail
    assert client.get(url("splitline") + f"?q={s['a'].code}").status_code == 200
    # Cash: the two counter sales taken, the counter return paid out.
    assert client.get(url("tenderline") + "?tender__exact=cash").context["cl"].result_count == 3


def test_days_and_store_settlements_show_parties_wallet_and_cash(client, settled):
    s, day = settled
    assert client.get(url("settlementday")).status_code == 200
    page = client.get(url("settlementday", "change", day.pk), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "E-commerce department" in page
    assert s["c"].code in page  # the cross-store wallet table names the store that sold the recharge
    store_b = StoreSettlement.objects.get(day=day, store=s["b"])
    assert client.get(url("storesettlement")).status_code == 200
    assert client.get(url("storesettlement", "change", store_b.pk)).status_code == 200


def test_statements_and_lines_export_as_csv_and_xlsx(client, settled):
    _, day = settled
    ids = list(SettlementStatement.objects.values_list("pk", flat=True))
    csv_response = client.post(url("settlementstatement"), {"action": "export_csv", "_selected_action": ids})
    rows = b"".join(csv_response.streaming_content).decode("utf-8-sig").strip().splitlines()
    assert len(rows) == 1 + len(ids) and "1127.17" not in rows[0]
    xlsx = client.post(url("settlementstatement"), {"action": "export_lines_xlsx", "_selected_action": ids})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.max_row == 1 + SplitLine.objects.count()
    nets = [row[14] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert sum(Decimal(str(n)) for n in nets) == day.net


def test_a_rule_in_use_shows_its_terms_read_only(client, settled):
    s, _ = settled
    used = s["rules"]["online"]
    page = client.get(url("splitrule", "change", used.pk)).content.decode()
    assert 'name="ecommerce_percent"' not in page and 'name="name"' in page
    fresh = SplitRule.objects.create(name="新规则", ecommerce_percent=D("5.00"), valid_from=timezone.localdate()
                                     + timedelta(days=30))
    assert 'name="ecommerce_percent"' in client.get(url("splitrule", "change", fresh.pk)).content.decode()
    response = client.post(url("splitrule", "add"), {"name": "全渠道", "priority": 5, "channel": "",
                                                    "fulfillment": "", "guide_condition": "",
                                                    "ecommerce_percent": "70", "guide_store_percent": "40",
                                                    "is_active": "on", "note": ""})
    assert response.status_code == 200 and not SplitRule.objects.filter(name="全渠道").exists()


def test_the_beat_schedule_page_lists_every_job(client, hq_user, django_user_model):
    client.force_login(hq_user)
    page = client.get(url("scheduledjob"))
    assert page.status_code == 200
    body = page.content.decode()
    assert all(name in body for name in BEAT_SCHEDULE)
    assert "orders.settlement.tasks.settlement_daily" in body and "cron: 30 0 * * *" in body
    clerk = django_user_model.objects.create_user("clerk-x", password="pw-123456", is_staff=True)
    client.force_login(clerk)
    assert client.get(url("scheduledjob")).status_code == 403
