"""Settle business days: statements per store and channel, the revenue split, commission release.

A day is settled in resumable steps, each its own transaction:

1. ``_day_open`` records the day and its window (from where the previous day ended, so
   windows never overlap or leave a gap, even if the cut-off hour changes);
2. guide commission due within the window is released (``commission_release`` is itself
   idempotent);
3. one ``_store_step`` per store, then one for "no store": it writes the store's
   ``StoreSettlement`` (the step's done-marker), statements, split and tender lines, all
   or nothing, from one REPEATABLE READ snapshot;
4. ``_day_close`` totals the day and closes it.

A worker that dies between steps leaves finished steps closed and the rest untouched; the
next run skips what has a marker.  Re-running a closed day writes nothing.  Events that
commit after their day's step (a transaction still open at the cut-off) are found by
recounting the previous window and settled in the next day as adjustments.
"""

from __future__ import annotations

import logging
from time import monotonic
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import product
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from catalog.models import ProductLine
from members.services.guides import commission_release
from o2o.db import service
from o2o.money import ZERO
from orders.models import Channel, Fulfillment
from settlement import ledger, promotion_costs, sql
from settlement.exceptions import BeforeFirstDay, DayNotOver, EarlierDayOpen, InvalidCutoff
from settlement.models import (
    PartyShare,
    SettlementDay,
    SettlementStatement,
    SplitRule,
    StatementChannel,
    StatementTender,
    StoreSettlement,
    WalletTransfer,
)
from stores.models import Capability, Store
from stores.selectors import capability_enabled, capability_stores_enabled

log = logging.getLogger(__name__)

CHANNELS = list(StatementChannel.values)
ORDER_CHANNELS = list(Channel.values)
FULFILLMENTS = list(Fulfillment.values)
PRODUCT_LINES = list(ProductLine.values)


# --- business days ------------------------------------------------------------------------------


def cutoff_hour() -> int:
    """``SETTLEMENT_CUTOFF_HOUR`` (Asia/Shanghai), default 0 = midnight."""
    hour = getattr(settings, "SETTLEMENT_CUTOFF_HOUR", 0)
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        raise InvalidCutoff(params={"hour": str(hour)})
    return hour


def grace() -> timedelta:
    """How long after a cut-off the day is left alone for payments still in flight."""
    return timedelta(minutes=int(getattr(settings, "SETTLEMENT_GRACE_MINUTES", 15)))


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def day_start(day: date, *, hour: int | None = None) -> datetime:
    """The cut-off on ``day``: where business day ``day`` begins."""
    return datetime.combine(day, time(cutoff_hour() if hour is None else hour), tzinfo=_zone())


def business_day_of(instant: datetime) -> date:
    """The business day an instant belongs to."""
    return (instant.astimezone(_zone()) - timedelta(hours=cutoff_hour())).date()


def last_ended_day(now: datetime | None = None) -> date:
    """The latest business day whose end (plus the grace period) has passed."""
    now = now or timezone.now()
    return business_day_of(now - grace()) - timedelta(days=1)


# --- split rules --------------------------------------------------------------------------------


def rule_matches(rule: SplitRule, *, channel: str, fulfillment: str, store_id: int | None,
                 guide_elsewhere: bool, day: date, product_line: str = "", trade_area: bool = False) -> bool:
    """Whether ``rule`` applies to a line of this kind on business day ``day``.  ``trade_area``:
    the order is shipped to a city in some store's trade area."""
    return (rule.is_active
            and (not rule.product_line or rule.product_line == product_line)
            and (rule.territory == SplitRule.Territory.ANY
                 or (rule.territory == SplitRule.Territory.TRADE_AREA) == trade_area)
            and (not rule.channel or rule.channel == channel)
            and (not rule.fulfillment or rule.fulfillment == fulfillment)
            and (rule.store_id is None or rule.store_id == store_id)
            and (rule.guide_condition == SplitRule.GuideCondition.ANY
                 or (rule.guide_condition == SplitRule.GuideCondition.OTHER_STORE) == guide_elsewhere)
            and (rule.valid_from is None or rule.valid_from <= day)
            and (rule.valid_until is None or day <= rule.valid_until))


def rule_for(rules: list[SplitRule], **line) -> SplitRule | None:
    """The first matching rule of ``rules`` (already in priority order), or None."""
    return next((r for r in rules if rule_matches(r, **line)), None)


def rules_in_force(day: date) -> list[SplitRule]:
    return list(SplitRule.objects.filter(is_active=True, draft="")
                .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=day))
                .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=day))
                .order_by("priority", "id"))


def split_switches() -> dict:
    """The split-rules roll-out as SQL parameters: the stores where split rules are switched off, and
    the global default (for lines with no fulfilling store).  Read when a day is settled."""
    store_ids = list(Store.objects.values_list("pk", flat=True))
    on = capability_stores_enabled(Capability.SPLIT_RULES, store_ids)
    return {"split_off": sorted(set(store_ids) - on), "split_default": capability_enabled(Capability.SPLIT_RULES)}


OTHER_STORE = -1  # in the rule map: a store that no rule names


def _rule_map(day: date) -> dict[str, list]:
    """The rule for every combination a line can have, as parallel arrays for the SQL.

    Keys are channel:fulfillment:store:guide-elsewhere, where store is 0 for none, the store's
    id if a rule names it, and -1 for any other store; so the map has a few hundred entries
    however many stores there are, and the choice is made here, not per line.
    """
    return rule_map(rules_in_force(day), day)


def rule_map(rules: list[SplitRule], day: date) -> dict[str, list]:
    """The rule map of ``rules`` (in priority order) on ``day``; see ``_rule_map``.  Keys also carry
    the product line and whether the order is shipped into a trade area."""
    special = sorted({r.store_id for r in rules if r.store_id is not None})
    arrays: dict[str, list] = {"rm_key": [], "rm_rule": [], "rm_ecom": [], "rm_guide": [], "rm_credit": [],
                               "rm_trade": [], "rm_special": special}
    for channel, fulfillment, store_id, elsewhere, line, trade in product(
            ORDER_CHANNELS, FULFILLMENTS, [None, OTHER_STORE, *special], (False, True), PRODUCT_LINES,
            (False, True)):
        rule = rule_for(rules, channel=channel, fulfillment=fulfillment, store_id=store_id,
                        guide_elsewhere=elsewhere, day=day, product_line=line, trade_area=trade)
        arrays["rm_key"].append(f"{channel}:{fulfillment}:{store_id or 0}:{int(elsewhere)}:{line}:{int(trade)}")
        arrays["rm_rule"].append(rule.pk if rule else None)
        arrays["rm_ecom"].append(rule.ecommerce_percent if rule else ZERO)
        arrays["rm_guide"].append(rule.guide_store_percent if rule else ZERO)
        arrays["rm_credit"].append(bool(rule and rule.credit_trade_area))
        arrays["rm_trade"].append(rule.trade_area_percent if rule else ZERO)
    return arrays


# --- running days -------------------------------------------------------------------------------


def settlement_run(*, until: date, now: datetime | None = None) -> list[SettlementDay]:
    """Settle every business day not yet closed, oldest first, up to and including ``until``.

    The first run ever starts at ``until``; after that, a day left running by a crash and
    any days missed since the last closed one are settled first, in order.  Raises
    DayNotOver for a day that has not ended (grace period included).  Returns the days.
    """
    now = now or timezone.now()
    running = SettlementDay.objects.filter(status=SettlementDay.Status.RUNNING).order_by("day").first()
    last_closed = SettlementDay.objects.filter(status=SettlementDay.Status.CLOSED).order_by("-day").first()
    starts = [d for d in (running.day if running else None, last_closed.day + timedelta(days=1)
                          if last_closed else None) if d is not None]
    first = min(starts) if starts else until
    if until < first:
        existing = SettlementDay.objects.filter(day=until).first()
        if existing is None:
            raise BeforeFirstDay(params={"day": until.isoformat()})
        return [existing]
    days = []
    day = first
    while day <= until:
        days.append(settlement_day_settle(day=day, now=now))
        day += timedelta(days=1)
    return days


def settlement_day_settle(*, day: date, now: datetime | None = None) -> SettlementDay:
    """Settle one business day (see the module docstring).  The day before must be closed.

    Idempotent: a closed day is returned untouched; a day left running resumes at the first
    store without a marker.  Raises DayNotOver, EarlierDayOpen, BeforeFirstDay.
    """
    now = now or timezone.now()
    settled = _day_open(day=day, now=now)
    if settled.status == SettlementDay.Status.CLOSED:
        return settled
    commission_release(at=settled.window_end)
    _steps_run(settled)
    return _day_close(day_id=settled.pk)


def workers() -> int:
    """How many store steps run at once (``SETTLEMENT_WORKERS``, default 2): each is its own
    transaction on its own connection, and the database does the work, so a second core helps."""
    return max(1, int(getattr(settings, "SETTLEMENT_WORKERS", 2)))


def _steps_run(settled: SettlementDay) -> None:
    """Run the day's remaining store steps, the biggest ("no store": online money) first.

    Inside a caller's transaction (tests) they run one after another on its connection, since
    other connections could not see its data.
    """
    for _ in range(3):  # a store opened while the day was being settled gets its (empty) step too
        left = sorted(_stores_left(settled), key=lambda store_id: (store_id is not None, store_id or 0))
        if not left:
            return
        if workers() == 1 or connection.in_atomic_block or len(left) < 2:
            for store_id in left:
                store_step(day_id=settled.pk, store_id=store_id)
            continue
        with ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="settlement") as pool:
            futures = [pool.submit(_step_on_own_connection, settled.pk, store_id) for store_id in left]
            for future in futures:
                future.result()  # the first failure is raised once every step has run


def _step_on_own_connection(day_id: int, store_id: int | None) -> bool:
    try:
        return store_step(day_id=day_id, store_id=store_id)
    finally:
        connection.close()


def _stores_left(settled: SettlementDay) -> list[int | None]:
    done = set(StoreSettlement.objects.filter(day=settled).values_list("store_id", flat=True))
    stores = [pk for pk in Store.objects.order_by("pk").values_list("pk", flat=True) if pk not in done]
    return stores + ([None] if None not in done else [])


@service
def _day_open(*, day: date, now: datetime) -> SettlementDay:
    """The day's row, created with its window when first settled.  Serialized by an advisory lock."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('orders.settlement.day_open'))")
    existing = SettlementDay.objects.filter(day=day).first()
    if existing is not None:
        return existing
    previous = SettlementDay.objects.filter(day=day - timedelta(days=1)).first()
    if previous is not None and previous.status != SettlementDay.Status.CLOSED:
        raise EarlierDayOpen(params={"day": previous.day.isoformat()})
    if previous is None:
        if SettlementDay.objects.filter(day__lt=day).exists():
            raise EarlierDayOpen(params={"day": (day - timedelta(days=1)).isoformat()})
        if SettlementDay.objects.filter(day__gt=day).exists():
            raise BeforeFirstDay(params={"day": day.isoformat()})
    hour = cutoff_hour()
    start = previous.window_end if previous is not None else day_start(day, hour=hour)
    end = day_start(day + timedelta(days=1), hour=hour)
    if end > now:
        raise DayNotOver(params={"day": day.isoformat(), "ends": end.isoformat()})
    # The rules in force keep their terms from now on (split lines will name them); marking them
    # here, once, spares the store steps running side by side from updating the same rows.
    SplitRule.objects.filter(pk__in=[r.pk for r in rules_in_force(day)], first_used_on__isnull=True) \
        .update(first_used_on=day)
    return SettlementDay.objects.create(day=day, window_start=start, window_end=end, cutoff_hour=hour)


@dataclass
class _Step:
    """What one store step needs: its window, the previous window, ids and SQL parameters."""

    marker: StoreSettlement
    day: SettlementDay
    store_id: int | None
    params: dict
    statements: dict[str, int]

    def sql(self, template: str, *, column: str, late: str = "") -> str:
        return template.format(pred=sql.store_pred(column, self.store_id), late=late,
                               orders=sql.LATE_ORDERS if late else "0")


def store_step(*, day_id: int, store_id: int | None) -> bool:
    """Settle one store of a running day, all in one transaction.  Returns False if already done.

    The marker row is inserted first: a concurrent run of the same step waits on its unique
    key and then skips.  As its own transaction, everything is read from one REPEATABLE READ
    snapshot, so the counts recorded match the lines written.
    """
    return _store_step(day_id=day_id, store_id=store_id, isolate=not connection.in_atomic_block)


@service
def _store_step(*, day_id: int, store_id: int | None, isolate: bool) -> bool:
    with connection.cursor() as cur:
        if isolate:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        # Big set-based statements: room to hash and sort in memory, and no JIT (compiling these
        # queries costs seconds and saves nothing).
        cur.execute("SET LOCAL work_mem = '128MB'")
        cur.execute("SET LOCAL jit = off")
    settled = SettlementDay.objects.get(pk=day_id)
    if settled.status == SettlementDay.Status.CLOSED:
        return False
    try:
        with transaction.atomic():
            marker = StoreSettlement.objects.create(day=settled, store_id=store_id)
    except IntegrityError:
        return False
    step = _step_prepare(marker, settled, store_id)
    totals = _Totals()
    _late_events(step, totals)
    window = {"lo": settled.window_start, "hi": settled.window_end}
    _detail_inserts(step, totals, window, late=False)
    _counts_record(step, totals, window)
    _points(step, totals)
    _store_figures(step)
    _step_close(step, totals)
    return True


def _step_prepare(marker: StoreSettlement, settled: SettlementDay, store_id: int | None) -> _Step:
    statements = SettlementStatement.objects.bulk_create([
        SettlementStatement(store_settlement=marker, business_day=settled.day, store_id=store_id, channel=c)
        for c in CHANNELS])
    by_channel = {s.channel: s.pk for s in statements}
    params = {"day_lo": settled.window_start, "store": store_id, "st_channel": list(by_channel),
              "st_id": list(by_channel.values()), **_rule_map(settled.day), **split_switches()}
    return _Step(marker=marker, day=settled, store_id=store_id, params=params, statements=by_channel)


# Detail inserts: (name, template, column the store predicate applies to, anti-join for late events).
# Sales go first so that a return or cancellation the same day finds the sale it reverses.
DETAIL = [
    ("orders_paid", sql.SALES_SQL, "o.store_id", sql.SALES_LATE),
    ("cancels", sql.CANCELS_SQL, "o.store_id", sql.CANCELS_LATE),
    ("returns", sql.RETURNS_SQL, "o.store_id", sql.RETURNS_LATE),
    ("payments", sql.PAYMENTS_SQL, "p.store_id", sql.PAYMENTS_LATE),
    ("refunds", sql.REFUNDS_SQL, sql.REFUND_LOCATION, sql.REFUNDS_LATE),
]
SPLIT_KINDS = {"orders_paid", "cancels", "returns"}


def _detail_inserts(step: _Step, totals: _Totals, window: dict, *, late: bool, only: set[str] | None = None) -> None:
    params = {**step.params, **window}
    with connection.cursor() as cur:
        for name, template, column, anti_join in DETAIL:
            if only is not None and name not in only:
                continue
            started = monotonic()
            cur.execute(step.sql(template, column=column, late=anti_join if late else ""), params)
            rows = cur.fetchall()
            log.debug("settlement %s store %s %s%s: %.3fs", step.day.day, step.store_id, name,
                      " (late)" if late else "", monotonic() - started)
            if name in SPLIT_KINDS:
                totals.add_split(rows)
            else:
                totals.add_tender(rows, name=None if late else name)
        for name, template, column, anti_join in promotion_costs.DETAIL:
            if only is not None and name not in only:
                continue
            cur.execute(step.sql(template, column=column, late=anti_join if late else ""), params)
            totals.add_promotion(cur.fetchall())


def _counts(step: _Step, window: dict, *, known: dict[str, int] | None = None) -> dict[str, int]:
    """The window's events counted the way the inserts select them; ``known``: counts an insert
    already returned (of the same snapshot), not counted again."""
    params = {**step.params, **window}
    found = dict(known or {})
    with connection.cursor() as cur:
        for name, template in sql.COUNT_SQL.items():
            if name in found:
                continue
            cur.execute(template.format(pred=sql.store_pred(sql.COUNT_COLUMN[name], step.store_id)), params)
            found[name] = cur.fetchone()[0]
    return found


def _counts_record(step: _Step, totals: _Totals, window: dict) -> None:
    for name, value in _counts(step, window, known=totals.found).items():
        setattr(step.marker, name, value)
    with connection.cursor() as cur:
        cur.execute(sql.ORDERS_BY_CHANNEL_SQL.format(pred=sql.store_pred("o.store_id", step.store_id)),
                    {**step.params, **window})
        for channel, n in cur.fetchall():
            totals.counts[step.statements[channel]]["orders_count"] += n


def _late_events(step: _Step, totals: _Totals) -> None:
    """Settle events of the previous window that committed after its step ran (as adjustments)."""
    previous = SettlementDay.objects.filter(day=step.day.day - timedelta(days=1),
                                            status=SettlementDay.Status.CLOSED).first()
    if previous is None:
        return
    marker = StoreSettlement.objects.filter(day=previous, store_id=step.store_id).first()
    window = {"lo": previous.window_start, "hi": previous.window_end}
    now_counted = _counts(step, window)
    behind = {name for name, n in now_counted.items() if n > (getattr(marker, name) if marker else 0)}
    if behind:
        log.warning("settlement %s store %s: late events of %s: %s", step.day.day, step.store_id, previous.day,
                    sorted(behind))
        before = totals.events
        _detail_inserts(step, totals, window, late=True, only=behind)
        step.marker.late_lines = totals.events - before


class _Totals:
    """Statement totals and party shares gathered from the inserts' aggregated RETURNING rows."""

    SPLIT_FIELDS = ("sales_gross", "sales_discount", "coupon_discount", "coupon_cost_ecommerce",
                    "coupon_cost_store", "net", "split_ecommerce", "split_store", "split_guide_store",
                    "split_trade_store")

    def __init__(self) -> None:
        self.statement: dict[int, dict] = defaultdict(lambda: defaultdict(lambda: ZERO))
        self.counts: dict[int, dict] = defaultdict(lambda: defaultdict(int))
        self.tenders: dict[tuple[int, str], dict] = defaultdict(lambda: defaultdict(lambda: ZERO))
        # a party's shares: as fulfilling store (or e-commerce), as the guide's store, as the trade-area store
        self.parties: dict[int | None, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
        self.rules: set[int] = set()
        self.events = 0
        self.found: dict[str, int] = {}  # events an insert counted as it found them, by COUNT_SQL name

    def add_split(self, rows) -> None:
        for tag, statement_id, kind, adjustment, party, n, n_orders, *amounts in rows:
            if tag == "party":
                self.parties[party][0] += amounts[-3]
                self.parties[party][1] += amounts[-2]
                self.parties[party][2] += amounts[-1]
                continue
            if tag == "rule":
                self.rules.add(party)
                continue
            gross, discount, coupon, ce, _, net, ecom, store, guide, trade = amounts
            cs = coupon - ce
            s, c = self.statement[statement_id], self.counts[statement_id]
            self.events += n if adjustment else 0
            if kind == "sale":
                c["orders_count"] += n_orders
                c["sale_lines"] += n
                s["sales_gross"] += gross
                s["sales_discount"] += discount
                s["sales_net"] += net
            elif kind == "return":
                c["return_lines"] += n
                s["returns_net"] -= net
            else:
                s["cancelled_net"] -= net
            s["coupon_discount"] += coupon
            s["coupon_cost_ecommerce"] += ce
            s["coupon_cost_store"] += cs
            s["net"] += net
            s["split_ecommerce"] += ecom
            s["split_store"] += store
            s["split_guide_store"] += guide
            s["split_trade_store"] += trade
            if adjustment:
                s["adjustments_net"] += net
            c["lines"] += n

    def add_promotion(self, rows) -> None:
        """What the promotions took off, by statement and bearer (their lines are not counted as the
        statement's lines: they explain the split lines' discounts)."""
        for statement_id, bearer, _n, amount in rows:
            s = self.statement[statement_id]
            s["promotion_discount"] += amount
            s[f"promotion_cost_{bearer}"] += amount

    def add_tender(self, rows, *, name: str | None = None) -> None:
        """The tender lines written; a row of kind 'found' is the number of events the insert found
        (recorded under ``name``: the count of the day's own window)."""
        for statement_id, tender, kind, adjustment, n, amount in rows:
            if kind == "found":
                if name is not None:
                    self.found[name] = n
                continue
            t, s, c = self.tenders[(statement_id, tender)], self.statement[statement_id], self.counts[statement_id]
            self.events += n if adjustment else 0
            c["lines"] += n
            if kind == "payment":
                t["payments_count"] += n
                t["payments_amount"] += amount
                c["payments_count"] += n
                s["payments_total"] += amount
            else:
                t["refunds_count"] += n
                t["refunds_amount"] -= amount
                c["refunds_count"] += n
                s["refunds_total"] -= amount
            if adjustment:
                s["tender_adjustments"] += amount


def _points(step: _Step, totals: _Totals) -> None:
    params = {**step.params, "lo": step.day.window_start, "hi": step.day.window_end}
    with connection.cursor() as cur:
        cur.execute(sql.POINTS_ISSUED_SQL.format(pred=sql.store_pred("lot.store_id", step.store_id)), params)
        for channel, points in cur.fetchall():
            totals.counts[step.statements[_channel(channel)]]["points_issued"] += int(points)
        cur.execute(sql.POINTS_REDEEMED_SQL.format(pred=sql.store_pred(sql.POINTS_PAYMENT_STORE, step.store_id)),
                    params)
        for channel, points in cur.fetchall():
            totals.counts[step.statements[_channel(channel)]]["points_redeemed"] += int(points)
    for (statement_id, tender), t in totals.tenders.items():
        if tender == "points":
            totals.statement[statement_id]["points_redeemed_value"] += t["payments_amount"] - t["refunds_amount"]


def _channel(value: str) -> str:
    return value if value in CHANNELS else StatementChannel.OTHER


def _store_figures(step: _Step) -> None:
    """Cash and shifts, wallet, commission: window totals of the store, on its marker."""
    m, pred = step.marker, (lambda column: sql.store_pred(column, step.store_id))
    params = {**step.params, "lo": step.day.window_start, "hi": step.day.window_end}
    with connection.cursor() as cur:
        if step.store_id is not None:
            cur.execute(sql.SHIFTS_SQL, params)
            (m.shifts_closed, m.shifts_expected_cash, m.shifts_counted_cash, m.shifts_over_short,
             m.shifts_cash_sales, m.shifts_cash_refunds) = cur.fetchone()
        cur.execute(sql.WALLET_RECHARGES_SQL.format(pred=pred("r.store_id")), params)
        m.wallet_recharged_principal, m.wallet_recharged_bonus, m.wallet_recharge_refunded = cur.fetchone()
        cur.execute(sql.WALLET_SPENT_SQL.format(pred=pred("a.spend_store_id")), params)
        transfers = []
        for sold_store_id, principal, bonus in cur.fetchall():
            m.wallet_spent_principal += principal
            m.wallet_spent_bonus += bonus
            if sold_store_id != step.store_id:
                m.wallet_cross_in_principal += principal
                m.wallet_cross_in_bonus += bonus
                transfers.append(WalletTransfer(store_settlement=m, sold_store_id=sold_store_id, principal=principal,
                                                bonus=bonus))
        other = "a.spend_store_id IS NOT NULL" if step.store_id is None else \
            "a.spend_store_id IS DISTINCT FROM %(store)s"
        cur.execute(sql.WALLET_SPENT_ELSEWHERE_SQL.format(pred=pred("a.sold_store_id"), other=other), params)
        m.wallet_cross_out_principal, m.wallet_cross_out_bonus = cur.fetchone()
        cur.execute(sql.COMMISSION_SQL.format(pred=pred("rel.store_id")), params)
        m.commission_released, m.commission_released_amount = cur.fetchone()
    WalletTransfer.objects.bulk_create(transfers)


STATEMENT_MONEY = ("sales_gross", "sales_discount", "sales_net", "coupon_discount", "coupon_cost_ecommerce",
                   "coupon_cost_store", "promotion_discount",
                   *(f"promotion_cost_{bearer}" for bearer in promotion_costs.BEARERS), "returns_net",
                   "cancelled_net", "net", "adjustments_net", "split_ecommerce", "split_store", "split_guide_store",
                   "split_trade_store", "payments_total", "refunds_total", "tender_adjustments",
                   "points_redeemed_value")
STATEMENT_COUNTS = ("orders_count", "sale_lines", "return_lines", "payments_count", "refunds_count",
                    "points_issued", "points_redeemed")


def _step_close(step: _Step, totals: _Totals) -> None:
    now = timezone.now()
    kept = []
    for channel, statement_id in step.statements.items():
        s, c = totals.statement.get(statement_id, {}), totals.counts.get(statement_id, {})
        if not c.get("lines") and not c.get("points_issued") and not c.get("points_redeemed"):
            continue
        fields = {f: s.get(f, ZERO) for f in STATEMENT_MONEY}
        fields.update({f: c.get(f, 0) for f in STATEMENT_COUNTS})
        SettlementStatement.objects.filter(pk=statement_id).update(**fields)
        kept.append(statement_id)
    SettlementStatement.objects.filter(pk__in=set(step.statements.values()) - set(kept)).delete()
    StatementTender.objects.bulk_create([
        StatementTender(statement_id=statement_id, tender=tender, **{k: t[k] for k in (
            "payments_count", "payments_amount", "refunds_count", "refunds_amount")})
        for (statement_id, tender), t in sorted(totals.tenders.items())])
    PartyShare.objects.bulk_create([
        PartyShare(store_settlement=step.marker, store_id=party, fulfilment_share=share, guide_share=guide,
                   trade_area_share=trade, total=share + guide + trade)
        for party, (share, guide, trade) in sorted(totals.parties.items(),
                                                   key=lambda kv: (kv[0] is not None, kv[0] or 0))
        if share or guide or trade])
    # A rule added after the day opened and used here (rare): mark it too.
    unmarked = SplitRule.objects.filter(pk__in=totals.rules, first_used_on__isnull=True)
    if totals.rules and unmarked.exists():
        unmarked.update(first_used_on=step.day.day)
    SettlementStatement.objects.filter(pk__in=kept).update(closed_at=now)
    step.marker.cash_payments, step.marker.cash_refunds = _cash(totals, kept)
    step.marker.closed_at = now
    step.marker.save()


def _cash(totals: _Totals, statement_ids: list[int]) -> tuple[Decimal, Decimal]:
    taken = sum((t["payments_amount"] for (sid, tender), t in totals.tenders.items()
                 if tender == "cash" and sid in statement_ids), ZERO)
    paid_out = sum((t["refunds_amount"] for (sid, tender), t in totals.tenders.items()
                    if tender == "cash" and sid in statement_ids), ZERO)
    return taken, paid_out


@service
def _day_close(*, day_id: int) -> SettlementDay:
    settled = SettlementDay.objects.select_for_update().get(pk=day_id)
    if settled.status == SettlementDay.Status.CLOSED:
        return settled
    left = _stores_left(settled)
    if left:
        raise EarlierDayOpen(message="Some stores of the day are not settled yet.", params={"stores": left})
    sums = SettlementStatement.objects.filter(store_settlement__day=settled).aggregate(
        sales_net=Sum("sales_net"), returns_net=Sum("returns_net"), cancelled_net=Sum("cancelled_net"),
        net=Sum("net"), adjustments_net=Sum("adjustments_net"), payments_total=Sum("payments_total"),
        refunds_total=Sum("refunds_total"))
    released = StoreSettlement.objects.filter(day=settled).aggregate(
        n=Sum("commission_released"), amount=Sum("commission_released_amount"))
    for name, value in sums.items():
        setattr(settled, name, value or ZERO)
    settled.commission_released = released["n"] or 0
    settled.commission_released_amount = released["amount"] or ZERO
    settled.stores_settled = StoreSettlement.objects.filter(day=settled).count()
    settled.status, settled.closed_at = SettlementDay.Status.CLOSED, timezone.now()
    settled.save()
    ledger.day_post(settled)  # the party ledger, in the same transaction as the close
    return settled
