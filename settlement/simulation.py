"""Simulate a draft set of split rules on settled days, side by side with what was posted.

Nothing is written: the settled split lines of the period are read once, each is split again
with the draft rules (the same matching and rounding as settlement: every share rounded to
the fen, half away from zero, the remainder to the credited store or, without one, to the
e-commerce department), and the parties' totals are compared with the posted ones.

One approximation is stated rather than hidden: a line returned in several parts is re-split
part by part, where settlement rounds cumulatively; the difference is at most a fen per part.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext as _

from o2o.money import ZERO
from settlement.models import SplitLine, SplitRule
from settlement.services import rule_for, split_switches
from stores.models import Store, StoreMembership
from stores.selectors import trade_area_resolver

FEN = Decimal("0.01")


def _share(amount: Decimal, percent: Decimal) -> Decimal:
    return (amount * percent / 100).quantize(FEN, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class SimulationRow:
    """One party: the e-commerce department (``party_id`` None) or a store."""

    party_id: int | None
    party: str
    in_force: Decimal
    draft: Decimal

    @property
    def difference(self) -> Decimal:
        return self.draft - self.in_force


@dataclass(frozen=True)
class Simulation:
    draft: str
    start: date
    end: date
    lines: int
    rows: list[SimulationRow]

    @property
    def total_in_force(self) -> Decimal:
        return sum((r.in_force for r in self.rows), ZERO)

    @property
    def total_draft(self) -> Decimal:
        return sum((r.draft for r in self.rows), ZERO)


def draft_rules(draft: str) -> list[SplitRule]:
    return list(SplitRule.objects.filter(draft=draft, is_active=True).order_by("priority", "id"))


def _split(line: dict, rules: list[SplitRule], *, wh_store: dict, home: dict, trade, switches: dict) -> dict:
    """The shares a draft gives one split line: {party: amount}, None being e-commerce."""
    fulfillment = line["order__fulfillment"]
    if fulfillment == "ship_warehouse":
        party = None
    elif fulfillment == "ship_store":
        party = wh_store.get(line["order_line__warehouse_id"], line["order__store_id"])
    else:
        party = line["order__store_id"]
    guide_home = home.get(line["order__guide_id"])
    guide_store = guide_home if guide_home is not None and guide_home != party else None
    trade_store = trade(line["order__ship_postcode"], line["order__ship_city_id"])
    launched = switches["split_default"] if party is None else party not in switches["split_off"]
    rule = None if not launched else rule_for(
        rules, channel=line["order__channel"], fulfillment=fulfillment, store_id=party,
        guide_elsewhere=guide_store is not None, day=line["statement__business_day"],
        product_line=line["order_line__sku__product__line"], trade_area=trade_store is not None)
    net = line["net"]
    ecom = _share(net, rule.ecommerce_percent) if rule else ZERO
    guide = _share(net, rule.guide_store_percent) if rule and guide_store is not None else ZERO
    credited = trade_store if party is None and rule is not None and rule.credit_trade_area else party
    own = rule is not None and rule.trade_area_percent > 0 and trade_store is not None and trade_store != credited
    area = _share(net, rule.trade_area_percent) if own else ZERO
    shares: dict = defaultdict(lambda: ZERO)
    if credited is None:
        shares[None] += net - guide - area
    else:
        shares[None] += ecom
        shares[credited] += net - ecom - guide - area
    if guide:
        shares[guide_store] += guide
    if area:
        shares[trade_store] += area
    return shares


def split_simulate(*, draft: str, start: date, end: date) -> Simulation:
    """Re-split the settled lines of business days ``start``…``end`` with the draft set ``draft``
    and compare each party's total with the one posted.  Read only."""
    rules = draft_rules(draft)
    wh_store = dict(Store.objects.values_list("warehouse_id", "id"))
    home: dict[int, int] = {}
    for staff_id, store_id in StoreMembership.objects.order_by("staff_id", "since", "id") \
            .values_list("staff_id", "store_id"):
        home.setdefault(staff_id, store_id)
    trade = trade_area_resolver()
    switches = {**split_switches()}
    switches["split_off"] = set(switches["split_off"])
    posted: dict = defaultdict(lambda: ZERO)
    drafted: dict = defaultdict(lambda: ZERO)
    count = 0
    lines = SplitLine.objects.filter(statement__business_day__gte=start, statement__business_day__lte=end).values(
        "net", "ecommerce_amount", "store_id", "store_amount", "guide_store_id", "guide_store_amount",
        "trade_store_id", "trade_store_amount", "order__channel", "order__fulfillment", "order__store_id",
        "order__ship_city_id", "order__ship_postcode", "order__guide_id",
        "order_line__warehouse_id", "order_line__sku__product__line", "statement__business_day")
    for line in lines.iterator(chunk_size=5000):
        count += 1
        posted[None] += line["ecommerce_amount"]
        if line["store_id"] is not None:
            posted[line["store_id"]] += line["store_amount"]
        if line["guide_store_id"] is not None:
            posted[line["guide_store_id"]] += line["guide_store_amount"]
        if line["trade_store_id"] is not None:
            posted[line["trade_store_id"]] += line["trade_store_amount"]
        for party, amount in _split(line, rules, wh_store=wh_store, home=home, trade=trade, switches=switches).items():
            drafted[party] += amount
    parties = sorted(set(posted) | set(drafted), key=lambda p: (p is not None, p or 0))
    names = {s.pk: str(s) for s in Store.objects.filter(pk__in=[p for p in parties if p is not None])}
    rows = [SimulationRow(p, names.get(p, _("E-commerce department")), posted[p], drafted[p]) for p in parties]
    return Simulation(draft=draft, start=start, end=end, lines=count, rows=rows)


def simulation_csv(simulation: Simulation) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("party"), _("rules in force"), _("draft %(name)s") % {"name": simulation.draft},
                     _("difference")])
    for row in simulation.rows:
        writer.writerow([row.party, row.in_force, row.draft, row.difference])
    writer.writerow([_("total"), simulation.total_in_force, simulation.total_draft,
                     simulation.total_draft - simulation.total_in_force])
    return out.getvalue()
