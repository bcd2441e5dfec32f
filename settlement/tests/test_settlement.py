"""Settlement of business days: a multi-store day adds up to the fen, the split and its reversal,
idempotence, immutability, late events, resumable steps, business-day windows and the rules."""

import io
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from members.models import CommissionEntry, CommissionRule
from orders import services as order_services
from orders.models import Channel, Fulfillment
from orders.services import LineIn, ReturnLineIn, TenderIn
from settlement import services
from settlement.exceptions import BeforeFirstDay, DayNotOver, EarlierDayOpen, InvalidCutoff
from settlement.models import (
    PartyShare,
    SettlementDay,
    SettlementStatement,
    SplitLine,
    SplitRule,
    StatementTender,
    StoreSettlement,
    TenderLine,
    WalletTransfer,
)
from settlement.tests.scenario import build_day, end_of_today, pay_online, shift_days, shop
from payments.models import Payment, Refund
from stores.models import Role
from stores.tests.factories import StaffFactory

pytestmark = pytest.mark.django_db
D = Decimal


def today() -> date:
    return services.business_day_of(timezone.now())


def settle(day: date | None = None, now: datetime | None = None) -> list[SettlementDay]:
    return services.settlement_run(until=day or today(), now=now or end_of_today())


def statement(store, channel, day: date | None = None) -> SettlementStatement:
    return SettlementStatement.objects.get(store=store, channel=channel, business_day=day or today())


def money_moved(lo, hi) -> Decimal:
    paid = Payment.objects.filter(status="captured", captured_at__gte=lo, captured_at__lt=hi) \
        .aggregate(s=Sum("amount"))["s"] or D("0")
    refunded = Refund.objects.filter(status="succeeded", completed_at__gte=lo, completed_at__lt=hi) \
        .aggregate(s=Sum("amount"))["s"] or D("0")
    return paid - refunded


def snapshot() -> dict:
    tables = (SettlementDay, StoreSettlement, SettlementStatement, StatementTender, SplitLine, TenderLine,
              WalletTransfer, PartyShare)
    return {m.__name__: list(m.objects.order_by("pk").values()) for m in tables}


def audit_clean() -> str:
    out = io.StringIO()
    call_command("audit_ledgers", stdout=out)
    assert "all ledgers consistent" in out.getvalue()
    return out.getvalue()


# --- a whole day --------------------------------------------------------------------------------


def test_a_multi_store_day_adds_up_to_the_fen():
    s = shop()
    out = build_day(s)
    [day] = settle()
    a, b, c = s["a"], s["b"], s["c"]

    # Then: the day's money equals every payment less every refund, and so does its revenue.
    moved = money_moved(day.window_start, day.window_end)
    assert moved == D("1127.17")
    assert (day.status, day.payments_total - day.refunds_total, day.net) == ("closed", moved, moved)
    statements = SettlementStatement.objects.filter(store_settlement__day=day)
    assert sum(st.tender_net for st in statements) == moved
    assert sum(st.net for st in statements) == moved
    assert {(st.store_id, st.channel) for st in statements} == {
        (a.pk, "pos"), (a.pk, "mini_program"), (b.pk, "pos"), (c.pk, "web"), (None, "web"), (None, "mini_program")}

    # The pickup at A: e-commerce keeps 10.5 % of every line, A the rest; the coat returned at B
    # reverses exactly what its sale split, with the sale's rule.
    pickup = statement(a, "mini_program")
    assert (pickup.sales_net, pickup.returns_net, pickup.net) == (D("413.33"), D("286.15"), D("127.18"))
    coat = out["pickup_a"].lines.get(sku=s["coat"])
    sale, ret = SplitLine.objects.get(order_line=coat, kind="sale"), SplitLine.objects.get(order_line=coat,
                                                                                          kind="return")
    assert (sale.rule, sale.net, sale.ecommerce_amount, sale.store_id, sale.store_amount) == (
        s["rules"]["online"], D("286.15"), D("30.05"), a.pk, D("256.10"))
    assert (ret.rule, ret.sale_line_id, ret.net, ret.ecommerce_amount, ret.store_amount) == (
        s["rules"]["online"], sale.pk, D("-286.15"), D("-30.05"), D("-256.10"))
    for line in SplitLine.objects.filter(statement=pickup, kind="sale"):
        assert line.ecommerce_amount == (line.net * D("0.105")).quantize(D("0.01"))
    assert (pickup.split_ecommerce, pickup.split_store) == (D("13.36"), D("113.82"))
    # The 20.00 coupon is borne by e-commerce; the returned coat's share of it (13.85) came back.
    assert (pickup.coupon_discount, pickup.coupon_cost_ecommerce, pickup.coupon_cost_store) == (
        D("6.15"), D("6.15"), D("0.00"))
    # Its money went online: the no-store statement of the channel took it and refunded the coat.
    online = statement(None, "mini_program")
    assert (online.payments_total, online.refunds_total, online.net) == (D("413.33"), D("286.15"), D("0.00"))

    # The member of C's guide buying at B: C's store gets 5 % of each line, B the rest.
    guided = SplitLine.objects.filter(order=out["guided_b"])
    assert {(g.rule_id, g.guide_store_id, g.guide_store_amount, g.store_amount) for g in guided} == {
        (s["rules"]["guided"].pk, c.pk, D("15.00"), D("285.00")), (s["rules"]["guided"].pk, c.pk, D("5.00"),
                                                                  D("95.00"))}
    counter_b = statement(b, "pos")
    assert (counter_b.split_guide_store, counter_b.points_redeemed, counter_b.points_redeemed_value) == (
        D("20.00"), 1000, D("10.00"))
    tenders_b = {t.tender: (t.payments_amount, t.refunds_amount) for t in counter_b.tenders.all()}
    assert tenders_b == {"cash": (D("33.33"), D("0.00")), "exchange_credit": (D("33.33"), D("33.33")),
                         "points": (D("10.00"), D("0.00")), "unionpay_card": (D("66.67"), D("0.00")),
                         "wallet": (D("390.00"), D("0.00"))}
    # The exchange: the cap back (33.33) and a shirt sold (100.00), the difference paid by card.
    assert (counter_b.sales_net, counter_b.returns_net) == (D("533.33"), D("33.33"))

    # Wallet money recharged at C and spent at B: C holds it, B is owed it.
    store_b, store_c = StoreSettlement.objects.get(day=day, store=b), StoreSettlement.objects.get(day=day, store=c)
    assert (store_b.wallet_cross_in_principal + store_b.wallet_cross_in_bonus) == D("390.00")
    assert (store_c.wallet_cross_out_principal, store_c.wallet_cross_out_bonus) == (
        store_b.wallet_cross_in_principal, store_b.wallet_cross_in_bonus)
    assert (store_c.wallet_recharged_principal, store_c.wallet_recharged_bonus) == (D("500.00"), D("50.00"))
    transfer = WalletTransfer.objects.get(store_settlement=store_b)
    assert (transfer.sold_store, transfer.principal + transfer.bonus) == (c, D("390.00"))

    # Warehouse shipment: no store, so e-commerce keeps it all; the cancelled pickup nets to zero.
    shipped = statement(None, "web")
    assert (shipped.sales_net, shipped.split_ecommerce, shipped.split_store) == (D("300.00"), D("300.00"), 0)
    cancelled = statement(c, "web")
    assert (cancelled.sales_net, cancelled.cancelled_net, cancelled.net) == (D("200.00"), D("200.00"), 0)

    # Cash at A: taken and paid out at the counter; points issued on the pickup's money.
    store_a = StoreSettlement.objects.get(day=day, store=a)
    assert (store_a.cash_payments, store_a.cash_refunds, store_a.cash_net) == (D("299.99"), D("100.00"),
                                                                              D("199.99"))
    assert pickup.points_issued == 413
    # Each party's share: the day's net split between e-commerce and the stores, to the fen.
    shares = PartyShare.objects.filter(store_settlement__day=day)
    assert sum(p.total for p in shares) == moved
    audit_clean()


def test_each_step_records_the_refunds_its_insert_found_as_a_recount_finds_them():
    """A step counts its refunds as it writes their lines (cash refunds handed out at another store are
    passed over before their payment is read); the count on its marker is what a later recount of the
    window finds, so no refund of the day is ever taken for a late one."""
    s = shop()
    build_day(s)
    [day] = settle()
    window = {"lo": day.window_start, "hi": day.window_end}
    found = 0
    for marker in StoreSettlement.objects.filter(day=day):
        step = services._Step(marker=marker, day=day, store_id=marker.store_id,
                              params={"store": marker.store_id}, statements={})
        written = TenderLine.objects.filter(kind="refund", statement__store_settlement=marker).count()
        assert marker.refunds == services._counts(step, window)["refunds"] == written
        found += marker.refunds
    assert found == Refund.objects.filter(status="succeeded", completed_at__gte=day.window_start,
                                          completed_at__lt=day.window_end).count() > 0


def test_rerunning_a_day_changes_nothing():
    build_day(shop())
    settle()
    before = snapshot()

    again = settle()
    call_command("settle_day", "--day", today().isoformat(), stdout=io.StringIO())

    assert snapshot() == before
    assert again[0].pk == before["SettlementDay"][0]["id"]


def test_closed_settlement_rows_cannot_change_in_the_database():
    build_day(shop())
    [day] = settle()
    line, tender = SplitLine.objects.first(), TenderLine.objects.first()
    st = SettlementStatement.objects.first()

    for sql, params in [("UPDATE orders_splitline SET net = net + 1 WHERE id = %s", [line.pk]),
                        ("DELETE FROM orders_tenderline WHERE id = %s", [tender.pk]),
                        ("UPDATE orders_settlementstatement SET net = 0 WHERE id = %s", [st.pk]),
                        ("DELETE FROM orders_storesettlement WHERE day_id = %s", [day.pk]),
                        ("UPDATE orders_settlementday SET net = 0 WHERE id = %s", [day.pk])]:
        with pytest.raises(DatabaseError, match="cannot change"), transaction.atomic(), \
                connection.cursor() as cur:
            cur.execute(sql, params)


# --- late events --------------------------------------------------------------------------------


def test_a_return_after_close_is_settled_in_the_next_day_reversing_the_closed_sale():
    s = shop()
    sale = order_services.pos_sale_create(store=s["a"], client_uuid=uuid.uuid4(), actor=s["clerk_a"],
                                          lines=[LineIn(s["coat"].id, 2)], tenders=[TenderIn("cash", D("600.00"))]
                                          ).order
    shift_days(1)
    [yesterday] = settle(today() - timedelta(days=1))
    closed = snapshot()

    # Today the customer brings one coat back to store B.
    order_services.return_create(order=sale, store=s["b"], actor=s["clerk_b"],
                                 lines=[ReturnLineIn(sale.lines.get().pk, 1)])
    [day] = settle()

    assert SplitLine.objects.filter(statement__business_day=yesterday.day).count() == 1
    assert list(SettlementStatement.objects.filter(business_day=yesterday.day).values()) == \
        closed["SettlementStatement"]
    ret = SplitLine.objects.get(kind="return")
    assert ret.statement.business_day == day.day
    assert (ret.statement.store, ret.statement.channel) == (s["a"], "pos")  # against the original sale
    assert ret.sale_line == SplitLine.objects.get(kind="sale")
    assert ret.sale_line.statement.business_day == yesterday.day
    refund = TenderLine.objects.get(kind="refund")
    assert (refund.tender, refund.amount, refund.statement.store) == ("cash", D("-300.00"), s["b"])
    assert day.net == day.payments_total - day.refunds_total == D("-300.00")
    audit_clean()


def test_an_event_committed_after_its_day_closed_is_an_adjustment_of_the_next_day():
    s = shop()
    order_services.pos_sale_create(store=s["a"], client_uuid=uuid.uuid4(), lines=[LineIn(s["shirt"].id, 1)],
                                   tenders=[TenderIn("cash", D("100.00"))])
    shift_days(1)
    [yesterday] = settle(today() - timedelta(days=1))
    closed = snapshot()
    # A sale whose transaction was still open at the cut-off commits now, stamped yesterday.
    late = order_services.pos_sale_create(store=s["a"], client_uuid=uuid.uuid4(), lines=[LineIn(s["cap"].id, 2)],
                                          tenders=[TenderIn("unionpay_card", D("66.66"), card_reference="C-9")]
                                          ).order
    with connection.cursor() as cur:
        cur.execute("UPDATE orders_order SET paid_at = %s WHERE id = %s",
                    [yesterday.window_end - timedelta(seconds=1), late.pk])
        cur.execute("UPDATE payments_payment SET captured_at = %s WHERE reference = %s",
                    [yesterday.window_end - timedelta(seconds=1), late.number])

    [day] = settle()

    assert list(SettlementStatement.objects.filter(business_day=yesterday.day).values()) == \
        closed["SettlementStatement"]
    counter = statement(s["a"], "pos", day.day)
    assert (counter.adjustments_net, counter.tender_adjustments, counter.net) == (D("66.66"), D("66.66"),
                                                                                  D("66.66"))
    assert all(line.adjustment for line in SplitLine.objects.filter(statement=counter))
    assert StoreSettlement.objects.get(day=day, store=s["a"]).late_lines == 2  # its one line and its payment
    audit_clean()


# --- resumable steps ----------------------------------------------------------------------------


def test_a_crash_between_store_steps_resumes_where_it_stopped():
    s = shop()
    build_day(s)
    real_step = services.store_step
    calls = []

    def crash_on_third(**kwargs):
        calls.append(kwargs["store_id"])
        if len(calls) == 3:
            raise SystemExit("worker killed")
        return real_step(**kwargs)

    with mock.patch.object(services, "store_step", crash_on_third), pytest.raises(SystemExit):
        settle()
    day = SettlementDay.objects.get()
    assert day.status == "running"
    done = set(StoreSettlement.objects.filter(day=day).values_list("store_id", flat=True))
    assert done == set(calls[:2])

    with mock.patch.object(services, "store_step", wraps=real_step) as resumed:
        [day] = settle()
    assert {c.kwargs["store_id"] for c in resumed.call_args_list} == {s["a"].pk, s["b"].pk, s["c"].pk, None} - done
    assert day.status == "closed" and day.stores_settled == 4
    assert day.net == money_moved(day.window_start, day.window_end) == D("1127.17")
    assert SplitLine.objects.filter(kind="sale").values("order_line").distinct().count() == \
        SplitLine.objects.filter(kind="sale").count()
    audit_clean()


def test_a_step_already_done_is_skipped():
    build_day(shop())
    [day] = settle()
    assert services.store_step(day_id=day.pk, store_id=None) is False


# --- days and windows ---------------------------------------------------------------------------


def test_a_day_that_has_not_ended_is_refused():
    shop()
    with pytest.raises(DayNotOver):
        services.settlement_run(until=today(), now=timezone.now())
    assert not SettlementDay.objects.exists()


def test_days_are_settled_in_order_and_missed_days_first():
    shop()
    first = today() - timedelta(days=5)
    settle(first)
    with pytest.raises(EarlierDayOpen):
        services.settlement_day_settle(day=first + timedelta(days=2), now=end_of_today())
    days = settle(first + timedelta(days=3))
    assert [d.day for d in days] == [first + timedelta(days=i) for i in (1, 2, 3)]
    windows = list(SettlementDay.objects.order_by("day").values_list("window_start", "window_end"))
    assert all(prev[1] == nxt[0] for prev, nxt in zip(windows, windows[1:]))
    with pytest.raises(BeforeFirstDay):
        settle(first - timedelta(days=1))
    assert settle(first)[0].day == first  # a closed day is simply returned


def test_the_cutoff_hour_sets_the_business_day(settings):
    settings.SETTLEMENT_CUTOFF_HOUR = 4
    local = timezone.get_current_timezone()
    assert services.business_day_of(datetime(2026, 3, 2, 3, 59, tzinfo=local)) == date(2026, 3, 1)
    assert services.business_day_of(datetime(2026, 3, 2, 4, 0, tzinfo=local)) == date(2026, 3, 2)
    assert services.day_start(date(2026, 3, 2)).hour == 4
    settings.SETTLEMENT_CUTOFF_HOUR = 24
    with pytest.raises(InvalidCutoff):
        services.cutoff_hour()
    settings.SETTLEMENT_CUTOFF_HOUR = "0"
    with pytest.raises(InvalidCutoff):
        services.cutoff_hour()


def test_a_later_cutoff_keeps_days_contiguous(settings):
    shop()
    first = today() - timedelta(days=3)
    settle(first)
    settings.SETTLEMENT_CUTOFF_HOUR = 6
    [second] = settle(first + timedelta(days=1))
    day_one = SettlementDay.objects.get(day=first)
    assert second.window_start == day_one.window_end
    assert timezone.localtime(second.window_end).hour == 6 and second.cutoff_hour == 6


# --- split rules --------------------------------------------------------------------------------


def test_the_first_matching_rule_in_priority_order_decides():
    day = date(2026, 5, 1)
    specific = SplitRule(pk=1, name="store", priority=5, store_id=7, channel="web", fulfillment="pickup")
    guide = SplitRule(pk=2, name="guide", priority=10, guide_condition="other_store")
    not_guide = SplitRule(pk=3, name="no guide", priority=10, guide_condition="not_other_store",
                          valid_from=date(2026, 6, 1))
    fallback = SplitRule(pk=4, name="online", priority=50, channel="mini_program")
    stopped = SplitRule(pk=5, name="ended", priority=1, valid_until=date(2026, 4, 30))
    inactive = SplitRule(pk=6, name="off", priority=0, is_active=False)
    rules = sorted([specific, guide, not_guide, fallback, stopped, inactive], key=lambda r: (r.priority, r.pk))

    def pick(**line):
        found = services.rule_for(rules, day=day, **line)
        return found.name if found else None

    assert pick(channel="web", fulfillment="pickup", store_id=7, guide_elsewhere=True) == "store"
    assert pick(channel="web", fulfillment="pickup", store_id=8, guide_elsewhere=True) == "guide"
    assert pick(channel="mini_program", fulfillment="pickup", store_id=8, guide_elsewhere=False) == "online"
    assert pick(channel="pos", fulfillment="in_store", store_id=8, guide_elsewhere=False) is None
    assert services.rule_for(rules, day=date(2026, 6, 1), channel="pos", fulfillment="in_store", store_id=8,
                             guide_elsewhere=False).name == "no guide"
    assert services.rule_for(rules, day=date(2026, 4, 30), channel="pos", fulfillment="in_store", store_id=8,
                             guide_elsewhere=False).name == "ended"


def test_a_rule_with_split_lines_keeps_its_terms():
    s = shop()
    build_day(s)
    settle()
    rule = SplitRule.objects.get(pk=s["rules"]["online"].pk)
    assert rule.first_used_on == today()
    rule.is_active, rule.note = False, "replaced by the 2027 terms"
    rule.save()  # deactivating it is fine
    rule.ecommerce_percent = D("12.00")
    with pytest.raises(DatabaseError, match="terms cannot change"), transaction.atomic():
        rule.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        SplitRule.objects.filter(pk=rule.pk).delete()


def test_a_rule_with_shares_over_100_percent_is_invalid():
    from django.core.exceptions import ValidationError

    rule = SplitRule(name="too much", ecommerce_percent=D("60"), guide_store_percent=D("50"))
    with pytest.raises(ValidationError):
        rule.clean()
    with pytest.raises(DatabaseError), transaction.atomic():
        rule.save()


def test_shipped_from_a_store_credits_the_shipping_store():
    s = shop()
    order = order_services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_STORE, external_id="W-SS",
                                       ship_city_id=s["a"].city_id, lines=[LineIn(s["shirt"].id, 1)]).order
    pay_online(order)

    [day] = settle()

    line = SplitLine.objects.get()
    assert (order.store, line.order_line.warehouse_id) == (None, s["a"].warehouse_id)
    assert (line.rule, line.store, line.ecommerce_amount, line.store_amount) == (
        s["rules"]["shipped"], s["a"], D("10.50"), D("89.50"))
    assert line.statement.store is None and day.net == D("100.00")
    assert PartyShare.objects.get(store=s["a"]).total == D("89.50")


# --- commission ---------------------------------------------------------------------------------


def test_guide_commission_due_within_the_day_is_released_and_reported():
    s = shop()
    guide_a = StaffFactory(role=Role.GUIDE, store=s["a"], guide_code="G-SA-09")
    CommissionRule.objects.all().update(rate_percent=D("10.00"))
    order_services.pos_sale_create(store=s["a"], client_uuid=uuid.uuid4(), guide_id=guide_a.pk,
                                   lines=[LineIn(s["coat"].id, 1)], tenders=[TenderIn("cash", D("300.00"))])
    accrual = CommissionEntry.objects.get(kind="accrual")
    due_day = services.business_day_of(accrual.frozen_until)
    end = services.day_start(due_day + timedelta(days=1)) + timedelta(minutes=20)

    [day] = services.settlement_run(until=due_day, now=end)

    release = CommissionEntry.objects.get(kind="release")
    assert release.released_delta == D("30.00")
    assert (day.commission_released, day.commission_released_amount) == (1, D("30.00"))
    assert StoreSettlement.objects.get(day=day, store=s["a"]).commission_released_amount == D("30.00")


# --- the command --------------------------------------------------------------------------------


def test_the_settle_day_command_settles_and_reports(settings):
    build_day(shop())
    out = io.StringIO()
    with mock.patch.object(services.timezone, "now", return_value=end_of_today() + timedelta(minutes=20)):
        call_command("settle_day", stdout=out)
    assert f"{today()} " in out.getvalue() and "net 1127.17" in out.getvalue()
    with pytest.raises(CommandError, match="settlement_day_not_over"):
        call_command("settle_day", "--day", (today() + timedelta(days=1)).isoformat(), stdout=io.StringIO())
