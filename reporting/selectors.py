"""Reads behind the head-office dashboard.

Every function takes a ``Scope`` (date range plus the stores and warehouses the viewer may
see, narrowed by the region / city / store filter) and returns plain dicts of Decimals and
ints.  Every period figure (sales, O2O, coupons, guide sales and commission, units sold out of stock,
members active per channel) sums small daily roll-ups (``reporting.rollups``); stock figures
are current balances, member figures the balances as of the last roll-up refresh.
All of them read from the replica when one is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections, transaction
from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Window,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from inventory.selectors import AVAILABLE
from inventory.models import Bucket, ReplenishmentProposal, ReplenishmentRule, StockLevel
from inventory.models import Transfer, TransferLine
from members.models import GuideBinding, PointsConfig
from o2o.money import money
from reporting import rollups
from reporting.models import (
    DailyCommissionRollup,
    DailyCouponRollup,
    DailyGuideSalesRollup,
    DailyO2ORollup,
    DailySalesRollup,
    DailyStockSoldRollup,
    MemberActivityCount,
    MemberTierRollup,
)
from orders.models import Channel, Fulfillment
from stores.models import Role, StaffProfile, Store, Warehouse
from stores.selectors import staff_profile, user_role

ZERO = Decimal("0.00")
ONLINE = [Channel.WEB, Channel.MINI_PROGRAM, Channel.MARKETPLACE]
DASHBOARD_ROLES = {Role.HQ_ADMIN, Role.REGIONAL_MANAGER}
MONEY_FIELD = DecimalField(max_digits=18, decimal_places=2)


def report_db() -> str:
    """The database alias reports read from: the replica when DATABASE_REPLICA_URL set one up."""
    return "replica" if "replica" in settings.DATABASES else "default"


def can_view_dashboard(user) -> bool:
    return user_role(user) in DASHBOARD_ROLES


@dataclass(frozen=True)
class Scope:
    start: date
    end: date  # inclusive
    store_ids: frozenset[int] | None  # None: every store, and orders without a store
    warehouse_ids: frozenset[int] | None

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def stores_q(self, field: str = "store") -> Q:
        return Q() if self.store_ids is None else Q(**{f"{field}__in": self.store_ids})

    def warehouses_q(self, field: str = "warehouse") -> Q:
        return Q() if self.warehouse_ids is None else Q(**{f"{field}__in": self.warehouse_ids})


def scope_for(user, *, start: date, end: date, region_id: int | None = None, city_id: int | None = None,
              store_id: int | None = None) -> Scope:
    """The viewer's scope: HQ sees everything, a regional manager their region; filters narrow it."""
    stores = Store.objects.using(report_db())
    warehouses = Warehouse.objects.using(report_db())
    narrowed = False
    if user_role(user) != Role.HQ_ADMIN:
        region = staff_profile(user).region_id
        stores, warehouses, narrowed = (stores.filter(city__region_id=region),
                                        warehouses.filter(city__region_id=region), True)
    if region_id:
        stores, warehouses, narrowed = (stores.filter(city__region_id=region_id),
                                        warehouses.filter(city__region_id=region_id), True)
    if city_id:
        stores, warehouses, narrowed = stores.filter(city_id=city_id), warehouses.filter(city_id=city_id), True
    if store_id:
        stores = stores.filter(pk=store_id)
        warehouses, narrowed = warehouses.filter(store__in=stores), True
    if not narrowed:
        return Scope(start, end, None, None)
    return Scope(start, end, frozenset(stores.values_list("pk", flat=True)),
                 frozenset(warehouses.values_list("pk", flat=True)))


def _m(value) -> Decimal:
    return money(value or ZERO)


def _ratio(part, whole) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole) * 100).quantize(Decimal("0.1"))


# --- sales (from the roll-up) --------------------------------------------------------------------


def sales_summary(scope: Scope) -> dict:
    rows = (DailySalesRollup.objects.using(report_db())
            .filter(scope.stores_q(), day__gte=scope.start, day__lte=scope.end))
    totals = rows.aggregate(orders=Coalesce(Sum("orders"), 0), units=Coalesce(Sum("units"), 0),
                            gross=Sum("gross"), discounts=Sum("discounts"), returns=Sum("returns"),
                            returned_orders=Coalesce(Sum("returned_orders"), 0), net=Sum("net"))
    sums = {"n_orders": Sum("orders"), "n_gross": Sum("gross"), "n_returns": Sum("returns"), "n_net": Sum("net")}
    by_day = {r["day"]: r for r in rows.values("day").annotate(**sums).order_by("day")}
    days = []
    for n in range(scope.days):
        day = scope.start + timedelta(days=n)
        r = by_day.get(day, {})
        days.append({"day": day, "orders": r.get("n_orders", 0), "gross": _m(r.get("n_gross")),
                     "returns": _m(r.get("n_returns")), "net": _m(r.get("n_net"))})
    channels = dict(Channel.choices)
    by_channel = [{"channel": r["channel"], "label": str(channels.get(r["channel"], r["channel"])),
                   "orders": r["n_orders"], "net": _m(r["n_net"]), "returns": _m(r["n_returns"])}
                  for r in rows.values("channel").annotate(**sums).order_by("channel")]
    by_store = [{"store_id": r["store_id"], "label": r["store__name"], "orders": r["n_orders"],
                 "net": _m(r["n_net"]), "returns": _m(r["n_returns"])}
                for r in rows.values("store_id", "store__name").annotate(**sums).order_by("-n_net", "store_id")]
    return {"totals": {k: (_m(v) if k in {"gross", "discounts", "returns", "net"} else v)
                       for k, v in totals.items()},
            "by_day": days, "by_channel": by_channel, "by_store": by_store}


# --- O2O ---------------------------------------------------------------------------------------------


def _rows(model, scope: Scope):
    return model.objects.using(report_db()).filter(scope.stores_q(), day__gte=scope.start, day__lte=scope.end)


COUNTED_SQL = """
SELECT EXISTS (SELECT 1 FROM reporting_memberactivityscope WHERE scope = %(scope)s),
       coalesce(sum(members), 0), coalesce(sum(members) FILTER (WHERE omni_since >= %(start)s), 0)
  FROM reporting_memberactivitycount
 WHERE scope = %(scope)s AND day >= %(start)s AND day <= %(end)s AND (next_day IS NULL OR next_day > %(end)s)
"""


def omni_member_counts(scope: Scope) -> dict:
    """Members who bought in the range, and those of them who bought through more than one channel.

    Distinct members cannot be added up across days.  Each member who bought in the range has
    exactly one day in it with no later day of theirs in the range, and the channels they used in
    the range are those last used on or after its start.  ``MemberActivityCount`` holds those days
    counted by day, next day and the day from which two channels had been used, over every store
    and over each region's, city's and store's stores: the count sums a few rows per day of the range.
    """
    if not scope.store_ids and scope.store_ids is not None:
        return {"active": 0, "omni": 0}
    key = "" if scope.store_ids is None else ",".join(map(str, sorted(scope.store_ids)))
    if scope.days <= MemberActivityCount.MAX_SPAN_DAYS:
        with connections[report_db()].cursor() as cursor:
            cursor.execute(COUNTED_SQL, {"scope": key, "start": scope.start, "end": scope.end})
            counted, active, omni = cursor.fetchone()
        if counted or key == "":
            return {"active": active, "omni": omni}
    return omni_member_counts_from_days(scope)


def omni_member_counts_from_days(scope: Scope) -> dict:
    """``omni_member_counts`` read from the member days themselves: over every store a filtered
    count of the ``MemberActivityDay`` rows of the range; narrowed to some stores, each member's
    per-day channel bits in those stores ORed over the range (grouped by member) and the members
    with more than one bit set counted (``x & (x - 1)`` clears the lowest bit).  For ranges and
    store sets the counted rows do not cover."""
    if scope.store_ids is None:
        used = " + ".join(f"coalesce({column} >= %(start)s, false)::int" for column in rollups.LAST_COLUMNS)
        sql = (f"SELECT count(*), count(*) FILTER (WHERE {used} > 1) FROM orders_memberactivityday "
               "WHERE day >= %(start)s AND day <= %(end)s AND (next_day IS NULL OR next_day > %(end)s)")
        params = {"start": scope.start, "end": scope.end}
    elif not scope.store_ids:
        return {"active": 0, "omni": 0}
    else:
        sql = ("SELECT count(*), count(*) FILTER (WHERE channels & (channels - 1) <> 0) "
               "FROM (SELECT bit_or(channels) AS channels FROM orders_dailymemberchannels "
               "WHERE day >= %(start)s AND day <= %(end)s AND store_id = ANY(%(stores)s) GROUP BY member_id) "
               "AS per_member")
        params = {"start": scope.start, "end": scope.end, "stores": sorted(scope.store_ids)}
    with transaction.atomic(using=report_db()), connections[report_db()].cursor() as cursor:
        if scope.store_ids is not None:
            # One hash entry per member: at the default 4 MB a region's month spills to disk.
            cursor.execute("SET LOCAL work_mem = '32MB'")
        cursor.execute(sql, params)
        active, omni = cursor.fetchone()
    return {"active": active, "omni": omni}


def o2o_metrics(scope: Scope) -> dict:
    online = _rows(DailyO2ORollup, scope).filter(channel__in=ONLINE)
    by_store = [Fulfillment.PICKUP, Fulfillment.SHIP_STORE]
    sums = online.aggregate(
        n_orders=Coalesce(Sum("orders"), 0),
        n_by_store=Coalesce(Sum("orders", filter=Q(fulfillment__in=by_store)), 0),
        n_pickup=Coalesce(Sum("orders", filter=Q(fulfillment=Fulfillment.PICKUP)), 0),
        n_ship_store=Coalesce(Sum("orders", filter=Q(fulfillment=Fulfillment.SHIP_STORE)), 0),
        n_picked_up=Coalesce(Sum("picked_up"), 0),
        n_wait=Sum("pickup_seconds"),
        n_returns=Coalesce(Sum("returns"), 0),
        n_returns_amount=Sum("returns_amount"),
    )
    totals = {k[2:]: v for k, v in sums.items()}
    members = omni_member_counts(scope)
    wait, picked = totals.pop("wait"), totals["picked_up"]
    returns, returns_amount = totals.pop("returns"), totals.pop("returns_amount")
    return {
        **totals,
        "store_share": _ratio(totals["by_store"], totals["orders"]),
        "pickup_rate": _ratio(picked, totals["pickup"]),
        "pickup_hours": (Decimal(wait) / picked / 3600).quantize(Decimal("0.1")) if picked else None,
        "online_returns_in_store": returns,
        "online_returns_in_store_amount": _m(returns_amount),
        "active_members": members["active"],
        "omni_members": members["omni"],
        "omni_share": _ratio(members["omni"], members["active"]),
    }


# --- coupons and guides ----------------------------------------------------------------------------


def coupon_funnel(scope: Scope) -> dict:
    rows = _rows(DailyCouponRollup, scope)
    sums = {"n": Sum("redeemed"), "n_discount": Sum("discount"), "n_ecommerce": Sum("ecommerce_amount"),
            "n_store": Sum("store_amount")}

    def row(r, label):
        return {"label": label, "count": r["n"], "discount": _m(r["n_discount"]),
                "ecommerce": _m(r["n_ecommerce"]), "store": _m(r["n_store"])}

    channels = dict(Channel.choices)
    # Issued-only rows (no redemption) sum to zero redemptions and are left out, as the live
    # grouping of redemptions never produced them.
    per_channel = list(rows.values("channel").annotate(**sums).filter(n__gt=0).order_by("channel"))
    by_channel = [row(r, str(channels.get(r["channel"], r["channel"]))) for r in per_channel]
    totals = {"count": sum(r["n"] for r in per_channel),
              **{k: sum((r[f"n_{k}"] or ZERO for r in per_channel), ZERO) for k in ("discount", "ecommerce", "store")}}
    by_store = [row(r, r["store__name"])
                for r in rows.values("store__name").annotate(**sums).filter(n__gt=0).order_by("-n", "store__name")]
    issued_by_channel = [
        {"label": str(channels.get(r["channel"], r["channel"])) if r["channel"] else str(_("Head-office campaigns")),
         "count": r["n"]}
        for r in rows.values("channel").annotate(n=Sum("issued")).filter(n__gt=0).order_by("channel")]
    issued_count = sum(r["count"] for r in issued_by_channel)
    return {"issued": issued_count, "redeemed": totals["count"], "issued_by_channel": issued_by_channel,
            "redemption_rate": _ratio(totals["count"], issued_count), "discount": _m(totals["discount"]),
            "cost_ecommerce": _m(totals["ecommerce"]), "cost_store": _m(totals["store"]),
            "by_channel": by_channel, "by_store": by_store}


def guide_leaderboard(scope: Scope, *, limit: int = 10) -> list[dict]:
    sales = (_rows(DailyGuideSalesRollup, scope).values("guide_id")
             .annotate(n_orders=Sum("orders"), n_sales=Sum("sales"))
             .order_by("-n_sales")[:limit])
    sales = {r["guide_id"]: {"orders": r["n_orders"], "sales": r["n_sales"]} for r in sales}
    commission = dict(DailyCommissionRollup.objects.using(report_db())
                      .filter(guide_id__in=sales, day__gte=scope.start, day__lte=scope.end)
                      .values("guide_id").annotate(total=Sum("amount")).values_list("guide_id", "total"))
    bound = dict(GuideBinding.objects.using(report_db()).filter(guide_id__in=sales, ended_reason="")
                 .values("guide_id").annotate(n=Count("pk")).values_list("guide_id", "n"))
    names = dict(StaffProfile.objects.using(report_db()).filter(pk__in=sales).values_list("pk", "display_name"))
    return [{"guide": names.get(gid, ""), "orders": r["orders"], "sales": _m(r["sales"]),
             "commission": _m(commission.get(gid)), "bound_members": bound.get(gid, 0)}
            for gid, r in sales.items()]


# --- stock ---------------------------------------------------------------------------------------


def _value(qty_field: str = "on_hand", cost_field: str = "sku__cost_price"):
    return Sum(ExpressionWrapper(F(qty_field) * F(cost_field), output_field=MONEY_FIELD))


def stock_metrics(scope: Scope, *, limit: int = 20) -> dict:
    db = report_db()
    levels = StockLevel.objects.using(db).filter(scope.warehouses_q())
    sold = (DailyStockSoldRollup.objects.using(db)
            .filter(scope.warehouses_q(), day__gte=scope.start, day__lte=scope.end))

    # Stock held (sellable and damaged) and units sold per warehouse and SKU, one read each; both
    # breakdowns (by warehouse and by category) and the damaged total are summed from those pairs
    # with the SKUs' current cost.
    sku_fields = ("sku__cost_price", "sku__product__category_id")
    levels_read = list(levels.filter(bucket__in=[Bucket.SELLABLE, Bucket.DAMAGED])
                       .values_list("bucket", "warehouse_id", "warehouse__name", "on_hand", *sku_fields,
                                    "sku__product__category__name"))
    held = [r[1:] for r in levels_read if r[0] == Bucket.SELLABLE]
    sold_pairs = list(sold.values("warehouse_id", "sku_id", *sku_fields).annotate(n=Sum("units"))
                      .values_list("warehouse_id", *sku_fields, "n"))
    damaged = {"units": sum(r[3] for r in levels_read if r[0] == Bucket.DAMAGED),
               "value": sum((r[3] * r[4] for r in levels_read if r[0] == Bucket.DAMAGED), ZERO)}

    def turnover(by_warehouse: bool) -> list[dict]:
        groups: dict = {}
        for warehouse_id, warehouse, on_hand, cost, category_id, category in held:
            key, label = (warehouse_id, warehouse) if by_warehouse else (category_id, category)
            g = groups.setdefault(key, {"label": label, "units": 0, "value": None, "sold": 0, "cogs": ZERO})
            g["units"] += on_hand
            if cost is not None:
                g["value"] = (g["value"] or ZERO) + on_hand * cost
        for warehouse_id, cost, category_id, units in sold_pairs:
            g = groups.get(warehouse_id if by_warehouse else category_id)
            if g is not None:
                g["sold"] += units or 0
                g["cogs"] += (units or 0) * (cost or ZERO)
        rows = []
        for g in groups.values():
            per_day = Decimal(g["sold"]) / scope.days
            rows.append({"label": g["label"], "units": g["units"], "value": _m(g["value"]), "sold": g["sold"],
                         "cogs": _m(g["cogs"]),
                         "turnover": (_m(g["cogs"]) / _m(g["value"])).quantize(Decimal("0.01"))
                         if g["value"] else None,
                         "days_cover": (Decimal(g["units"]) / per_day).quantize(Decimal("0.1")) if per_day else None})
        return sorted(rows, key=lambda r: r["label"] or "")

    available = (StockLevel.objects.using(db)
                 .filter(warehouse_id=OuterRef("warehouse_id"), sku_id=OuterRef("sku_id"), bucket=Bucket.SELLABLE)
                 .values(qty=AVAILABLE)[:1])
    rules = (ReplenishmentRule.objects.using(db).filter(scope.warehouses_q())
             .annotate(available=Coalesce(Subquery(available, output_field=IntegerField()), 0))
             .filter(available__lt=F("min_qty"))
             .annotate(below=Window(Count("pk")))  # every rule below its minimum, before the limit
             .order_by("available", "warehouse__code", "sku__code"))
    low = list(rules.select_related("warehouse", "sku")[:limit])
    low_stock = [{"warehouse": r.warehouse.name, "sku": r.sku.code, "name": r.sku.name, "available": r.available,
                  "min": r.min_qty, "max": r.max_qty, "suggested": r.max_qty - r.available} for r in low]
    low_count = low[0].below if low else 0
    transit = (TransferLine.objects.using(db)
               .filter(scope.warehouses_q("transfer__destination") | scope.warehouses_q("transfer__source")
                       if scope.warehouse_ids is not None else Q(), transfer__status=Transfer.Status.SHIPPED)
               .aggregate(transfers=Count("transfer", distinct=True), units=Coalesce(Sum("qty"), 0),
                          value=_value("qty")))
    proposals = (ReplenishmentProposal.objects.using(db)
                 .filter(scope.warehouses_q(), status=ReplenishmentProposal.Status.OPEN).count())
    return {"by_warehouse": turnover(by_warehouse=True), "by_category": turnover(by_warehouse=False),
            "low_stock": low_stock, "low_stock_count": low_count, "open_proposals": proposals,
            "in_transit": {**transit, "value": _m(transit["value"])},
            "damaged": {**damaged, "value": _m(damaged["value"])}}


# --- members -------------------------------------------------------------------------------------


def member_metrics() -> dict:
    """Members and their points and wallet liabilities, as of the last roll-up refresh
    (``MemberTierRollup``: one row per tier)."""
    db = report_db()
    by_tier = list(MemberTierRollup.objects.using(db).order_by("tier__min_spend")
                   .values("tier__name", "members", "points_available", "points_frozen", "wallet_principal",
                           "wallet_bonus", "refreshed_at"))
    tiers = [{"label": r["tier__name"] or "", "count": r["members"]} for r in by_tier]
    totals = {"count": sum(r["members"] for r in by_tier), "available": sum(r["points_available"] for r in by_tier),
              "frozen": sum(r["points_frozen"] for r in by_tier),
              "principal": sum((r["wallet_principal"] for r in by_tier), ZERO),
              "bonus": sum((r["wallet_bonus"] for r in by_tier), ZERO)}
    config = PointsConfig.objects.using(db).filter(pk=1).first() or PointsConfig()
    points = totals["available"] + totals["frozen"]
    return {"members": totals["count"], "tiers": tiers, "points_outstanding": points,
            "points_available": totals["available"], "points_frozen": totals["frozen"],
            "points_liability": money(Decimal(points) / Decimal(config.points_per_yuan_redeemed)),
            "wallet_principal": _m(totals["principal"]), "wallet_bonus": _m(totals["bonus"]),
            "wallet_liability": _m(totals["principal"]) + _m(totals["bonus"]),
            "as_of": max((r["refreshed_at"] for r in by_tier), default=None)}


def filter_choices(user) -> dict:
    """Regions, cities and stores the viewer may filter by."""
    stores = Store.objects.using(report_db()).select_related("city__region").order_by("code")
    if user_role(user) != Role.HQ_ADMIN:
        stores = stores.filter(city__region_id=staff_profile(user).region_id)
    stores = list(stores)
    regions = {s.city.region_id: s.city.region for s in stores}
    cities = {s.city_id: s.city for s in stores}
    return {"regions": sorted(regions.values(), key=lambda r: r.code),
            "cities": sorted(cities.values(), key=lambda c: c.code), "stores": stores}


# --- roll-out: pilot against control ---------------------------------------------------------------


def _group_figures(store_ids: frozenset[int], start: date, end: date) -> dict:
    """The roll-out's figures of some stores over some days, from the daily roll-ups."""
    if start > end or not store_ids:
        return {"stores": len(store_ids), "days": max((end - start).days + 1, 0), "net": ZERO, "online_share": None,
                "pickup_rate": None, "returns_elsewhere": 0, "omni_members": 0, "omni_share": None,
                "sales_per_store": None, "guide_sales": ZERO, "guide_share": None}
    scope = Scope(start, end, store_ids, None)
    sales = _rows(DailySalesRollup, scope).aggregate(
        n_net=Sum("net"), n_online=Sum("net", filter=Q(channel__in=ONLINE)))
    net, online = _m(sales["n_net"]), _m(sales["n_online"])
    o2o = o2o_metrics(scope)
    guide = _m(_rows(DailyGuideSalesRollup, scope).aggregate(s=Sum("sales"))["s"])
    return {"stores": len(store_ids), "days": scope.days, "net": net, "online_share": _ratio(online, net),
            "pickup_rate": o2o["pickup_rate"], "returns_elsewhere": o2o["online_returns_in_store"],
            "omni_members": o2o["omni_members"], "omni_share": o2o["omni_share"],
            "sales_per_store": money(net / len(store_ids)), "guide_sales": guide,
            "guide_share": _ratio(guide, net)}


def pilot_control(scope: Scope) -> list[dict]:
    """For every city launched by the end of the range, its stores (the pilot) against the stores
    of the cities not launched by then (the control), before and after the city's launch date,
    within the viewer's scope.  Online share and sales are of the orders that have a store (sold,
    picked up or shipped there); warehouse shipments belong to no city's stores."""
    stores = Store.objects.using(report_db()).filter(scope.stores_q("pk")).select_related("city")
    by_city: dict = {}
    for store in stores:
        by_city.setdefault(store.city, set()).add(store.pk)
    control = frozenset(pk for city, ids in by_city.items()
                        if city.launched_on is None or city.launched_on > scope.end for pk in ids)
    out = []
    for city, ids in sorted(by_city.items(), key=lambda kv: (kv[0].launched_on or date.max, kv[0].pk)):
        if city.launched_on is None or city.launched_on > scope.end:
            continue
        launch = max(city.launched_on, scope.start)
        periods = {"before": (scope.start, launch - timedelta(days=1)), "after": (launch, scope.end)}
        pilot = {k: _group_figures(frozenset(ids), *p) for k, p in periods.items()}
        others = {k: _group_figures(control, *p) for k, p in periods.items()}
        out.append({"city": city.name, "launched_on": city.launched_on, "pilot": pilot, "control": others,
                    "groups": [pilot["before"], pilot["after"], others["before"], others["after"]]})
    return out
