"""Reads of settlement shared by the admin, its exports and the command: nothing here writes."""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable, Iterator

from django.db.models import QuerySet, Sum
from django.utils.translation import gettext_lazy as _

from settlement.models import (
    PartyShare,
    PromotionCostLine,
    SettlementDay,
    SettlementStatement,
    SplitLine,
    StatementTender,
    WalletTransfer,
)

STATEMENT_COLUMNS = [
    ("business_day", _("business day")), ("store", _("store")), ("channel", _("channel")),
    ("orders_count", _("orders")), ("sales_gross", _("gross sales")), ("sales_discount", _("discounts")),
    ("sales_net", _("sales (net)")), ("returns_net", _("returns")), ("cancelled_net", _("cancelled after payment")),
    ("net", _("net")), ("adjustments_net", _("of which late (adjustments)")),
    ("coupon_discount", _("coupon discounts")), ("coupon_cost_ecommerce", _("coupon cost borne by e-commerce")),
    ("coupon_cost_store", _("coupon cost borne by stores")),
    ("promotion_discount", _("promotion discounts")), ("promotion_cost_hq", _("promotion cost borne by head office")),
    ("promotion_cost_ecommerce", _("promotion cost borne by e-commerce")),
    ("promotion_cost_store", _("promotion cost borne by stores")),
    ("promotion_cost_supplier", _("promotion cost borne by suppliers")), ("split_ecommerce", _("e-commerce share")),
    ("split_store", _("fulfilling stores' share")), ("split_guide_store", _("guides' stores share")),
    ("split_trade_store", _("trade-area stores' share")),
    ("payments_total", _("payments taken")), ("refunds_total", _("refunds given")),
    ("tender_adjustments", _("money of late events")), ("points_issued", _("points issued")),
    ("points_redeemed", _("points redeemed")), ("points_redeemed_value", _("points redeemed (value)")),
]

LINE_COLUMNS = [
    _("business day"), _("statement store"), _("channel"), _("kind"), _("order"), _("line"), _("SKU code"),
    _("time"), _("late (adjustment)"), _("gross"), _("discount"), _("coupon discount"),
    _("coupon cost (e-commerce)"), _("coupon cost (store)"), _("net"), _("split rule"), _("e-commerce share"),
    _("fulfilling store"), _("fulfilling store's share"), _("guide's store"), _("guide's store share"),
    _("trade-area store"), _("trade-area store share"),
]


def _store_label(store) -> str:
    return str(store) if store is not None else str(_("no store"))


def statement_rows(statements: QuerySet[SettlementStatement]) -> Iterator[list]:
    for st in statements.select_related("store").order_by("business_day", "store_id", "channel"):
        yield [_store_label(st.store) if name == "store" else
               st.get_channel_display() if name == "channel" else getattr(st, name)
               for name, _label in STATEMENT_COLUMNS]


def statement_headers() -> list[str]:
    return [str(label) for _name, label in STATEMENT_COLUMNS]


def statement_lines(statement_ids: Iterable[int]) -> QuerySet[SplitLine]:
    return (SplitLine.objects.filter(statement_id__in=list(statement_ids))
            .select_related("statement__store", "order", "order_line", "rule", "store", "guide_store",
                            "trade_store")
            .order_by("statement_id", "id"))


def line_rows(lines: QuerySet[SplitLine]) -> Iterator[list]:
    for s in lines.iterator(chunk_size=2000):
        st = s.statement
        yield [st.business_day, _store_label(st.store), st.get_channel_display(), s.get_kind_display(),
               s.order.number, s.order_line.line_no, s.order_line.sku_code, s.event_at, s.adjustment, s.gross,
               s.discount, s.coupon_discount, s.coupon_cost_ecommerce, s.coupon_cost_store, s.net,
               s.rule.name if s.rule else str(_("no rule: all to the fulfilling store")), s.ecommerce_amount,
               _store_label(s.store) if s.store_id else "", s.store_amount,
               str(s.guide_store) if s.guide_store_id else "", s.guide_store_amount,
               str(s.trade_store) if s.trade_store_id else "", s.trade_store_amount]


def day_party_shares(day: SettlementDay) -> list[dict]:
    """Each party's share of the day's split: the e-commerce department (store None) and stores."""
    rows = (PartyShare.objects.filter(store_settlement__day=day).values("store_id", "store__code", "store__name")
            .annotate(fulfilment=Sum("fulfilment_share"), guide=Sum("guide_share"), trade=Sum("trade_area_share"),
                      total=Sum("total"))
            .order_by("store_id"))
    return sorted(rows, key=lambda r: (r["store_id"] is not None, r["store_id"] or 0))


def day_promotion_costs(day: SettlementDay) -> list[dict]:
    """What the promotions cost on the day, net of returns and cancellations, by party (the order's store;
    None: the e-commerce department's warehouse orders) and by who bears it."""
    rows = (PromotionCostLine.objects.filter(statement__store_settlement__day=day)
            .values("store_id", "store__code", "store__name", "bearer").annotate(amount=Sum("amount"))
            .order_by("store_id", "bearer"))
    return sorted(rows, key=lambda r: (r["store_id"] is not None, r["store_id"] or 0, r["bearer"]))


def day_wallet_transfers(day: SettlementDay) -> list[dict]:
    """Wallet money spent at one store from recharges another sold, for the day."""
    return list(WalletTransfer.objects.filter(store_settlement__day=day)
                .values("store_settlement__store__code", "sold_store__code", "principal", "bonus")
                .order_by("store_settlement__store_id", "sold_store_id"))


def day_tenders(day: SettlementDay) -> list[dict]:
    return list(StatementTender.objects.filter(statement__store_settlement__day=day).values("tender")
                .annotate(payments=Sum("payments_amount"), refunds=Sum("refunds_amount")).order_by("tender"))


def money_sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, Decimal("0.00"))
