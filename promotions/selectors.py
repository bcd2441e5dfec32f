"""Reads of promotions: the live ones compiled for the engine, and the place of a sale."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext

from catalog.models import Category, Sku
from o2o.money import ZERO, money
from promotions import engine
from promotions.models import Promotion, steps_parse, tier_benefits_parse
from stores.models import City, Store


def promotions_live(*, at: datetime | None = None, exclude: frozenset[int] = frozenset()) -> list[engine.Rule]:
    """The active promotions whose window contains ``at``, compiled for the engine.

    One query when none is live; otherwise one more per scope relation, plus one for the category
    tree when a promotion is scoped by category.  The counts do not grow with the basket.
    """
    at = at or timezone.now()
    rows = list(Promotion.objects.filter(status=Promotion.Status.ACTIVE, valid_from__lte=at, valid_until__gt=at)
                .exclude(pk__in=exclude)
                .filter(Q(max_uses__isnull=True) | Q(used_count__lt=F("max_uses")))
                .prefetch_related("regions", "cities", "stores", "categories", "products", "skus")
                .order_by("priority", "id"))
    if not rows:
        return []
    tree = _category_tree() if any(p.categories.all() for p in rows) else {}
    return [rule_of(p, tree) for p in rows]


def _ids(manager) -> frozenset[int]:
    return frozenset(obj.pk for obj in manager.all())


def _category_tree() -> dict[int, frozenset[int]]:
    """{category id: it and every category under it} from the materialised paths, in one query."""
    rows = list(Category.objects.values_list("id", "path"))
    out = {}
    for cid, path in rows:
        out[cid] = frozenset(other for other, p in rows if p == path or p.startswith(path + "/"))
    return out


def rule_of(p: Promotion, tree: dict[int, frozenset[int]] | None = None) -> engine.Rule:
    """The promotion as the engine reads it (its scope relations prefetched or read here)."""
    tree = tree if tree is not None else (_category_tree() if p.categories.exists() else {})
    categories = frozenset().union(*(tree.get(c.pk, frozenset({c.pk})) for c in p.categories.all()))
    zone = timezone.get_current_timezone()
    return engine.Rule(
        id=p.pk, code=p.code, name=p.name, kind=p.kind, priority=p.priority, group=p.exclusive_group,
        bearer=p.bearer, valid_from=timezone.localtime(p.valid_from, zone),
        valid_until=timezone.localtime(p.valid_until, zone), daily_from=p.daily_from, daily_until=p.daily_until,
        channels=frozenset(p.channels), store_ids=_ids(p.stores), city_ids=_ids(p.cities),
        region_ids=_ids(p.regions), tier_codes=frozenset(p.member_tiers), sku_ids=_ids(p.skus),
        product_ids=_ids(p.products), category_ids=categories, steps=steps_parse(p.steps),
        threshold=p.threshold, percent=p.percent or engine.ZERO, nth=p.nth, price=p.price, buy_qty=p.buy_qty,
        gift_sku_id=p.gift_sku_id, gift_qty=p.gift_qty, tier_benefits=tier_benefits_parse(p.tier_benefits),
        remaining_uses=None if p.max_uses is None else p.max_uses - p.used_count,
        remaining_budget=None if p.budget is None else p.budget - p.used_amount)


def place_of(*, store_id: int | None, city_id: int | None) -> tuple[int | None, int | None]:
    """(city id, region id) of a sale: the store's, else the ship-to city's."""
    if store_id is not None:
        row = Store.objects.filter(pk=store_id).values_list("city_id", "city__region_id").first()
        if row:
            return row
    if city_id is not None:
        region = City.objects.filter(pk=city_id).values_list("region_id", flat=True).first()
        return city_id, region
    return None, None


def promotions_price(*, items: list[engine.Item], channel: str, store_id: int | None = None,
                     city_id: int | None = None, tier_code=None, at: datetime | None = None,
                     exclude: frozenset[int] = frozenset(), rules: list[engine.Rule] | None = None) -> engine.Result:
    """What the live promotions take off ``items`` in this channel and place: the one call the priced
    sale, the HQ preview and the price-consistency report all make.  ``tier_code``: the member's tier
    code, or a callable giving it, asked only when a live promotion depends on tiers."""
    rules = promotions_live(at=at, exclude=exclude) if rules is None else rules
    if not rules or not items:
        return engine.Result(line_discounts=tuple(engine.ZERO for _ in items))
    needs_tier = any(r.tier_codes or r.kind == engine.MEMBER_PRICE for r in rules)
    tier = (tier_code() if callable(tier_code) else tier_code or "") if needs_tier else ""
    ctx = sale_context(channel=channel, store_id=store_id, city_id=city_id, tier_code=tier, at=at)
    return engine.promotions_apply(rules, items, ctx)


def sale_context(*, channel: str, store_id: int | None = None, city_id: int | None = None, tier_code: str = "",
                 at: datetime | None = None) -> engine.Context:
    city_id, region_id = place_of(store_id=store_id, city_id=city_id)
    return engine.Context(channel=channel, at=timezone.localtime(at or timezone.now()), store_id=store_id,
                          city_id=city_id, region_id=region_id, tier_code=tier_code)


# --- HQ: preview a basket, compare channels -------------------------------------------------------


@dataclass(frozen=True)
class PreviewLine:
    sku: Sku
    qty: int
    gross: Decimal
    discount: Decimal
    applied: tuple[engine.Applied, ...]

    @property
    def net(self) -> Decimal:
        return money(self.gross - self.discount)


@dataclass(frozen=True)
class Preview:
    lines: tuple[PreviewLine, ...]
    result: engine.Result

    @property
    def subtotal(self) -> Decimal:
        return money(sum((ln.gross for ln in self.lines), ZERO))

    @property
    def total(self) -> Decimal:
        return money(self.subtotal - self.result.total)


def items_of(basket: list[tuple[Sku, int]]) -> list[engine.Item]:
    """Basket lines at list price, as the priced sale gives them to the engine."""
    return [engine.Item(sku_id=sku.pk, qty=qty, amount=money(sku.list_price * qty), product_id=sku.product_id,
                        category_id=sku.product.category_id, cost_price=sku.cost_price) for sku, qty in basket]


def basket_preview(*, basket: list[tuple[Sku, int]], channel: str, store_id: int | None = None,
                   city_id: int | None = None, tier_code: str = "", at: datetime | None = None,
                   rules: list[engine.Rule] | None = None) -> Preview:
    """The basket at list prices less what the promotions live at ``at`` take off (no coupon, no clerk)."""
    result = promotions_price(items=items_of(basket), channel=channel, store_id=store_id, city_id=city_id,
                              tier_code=tier_code, at=at, rules=rules)
    return Preview(lines=tuple(PreviewLine(sku=sku, qty=qty, gross=money(sku.list_price * qty),
                                           discount=result.line_discounts[i],
                                           applied=tuple(a for a in result.applied if a.line == i))
                               for i, (sku, qty) in enumerate(basket)), result=result)


@dataclass
class ChannelPrice:
    channel: str
    total: Decimal
    difference: Decimal  # online − counter
    notes: list[str] = field(default_factory=list)
    flagged: bool = False


@dataclass
class ConsistencyRow:
    store: Store
    basket: list[tuple[Sku, int]]
    pos_total: Decimal
    online: list[ChannelPrice]

    @property
    def label(self) -> str:
        return " + ".join(f"{sku.code}×{qty}" for sku, qty in self.basket)

    @property
    def flagged(self) -> bool:
        return any(c.flagged for c in self.online)


ONLINE = ("mini_program", "web")


def sample_baskets(rules: list[engine.Rule], limit: int = 8) -> list[list[tuple[Sku, int]]]:
    """A few baskets that exercise the live promotions: each one's SKUs two at a time, with its gift,
    and one basket of the dearest active SKUs; at most ``limit``."""
    wanted: list[list[int]] = []
    for rule in rules:
        ids = sorted(rule.sku_ids)[:2]
        if not ids and (rule.product_ids or rule.category_ids):
            ids = list(Sku.objects.filter(is_active=True).filter(
                Q(product_id__in=rule.product_ids) | Q(product__category_id__in=rule.category_ids))
                .order_by("id").values_list("id", flat=True)[:2])
        if rule.gift_sku_id:
            ids.append(rule.gift_sku_id)
        if ids and ids not in wanted:
            wanted.append(ids)
    wanted.append(list(Sku.objects.filter(is_active=True).order_by("-list_price", "id")
                       .values_list("id", flat=True)[:3]))
    wanted = [w for w in wanted if w][:limit]
    skus = {s.pk: s for s in Sku.objects.filter(pk__in={i for w in wanted for i in w}).select_related("product")}
    return [[(skus[i], 2) for i in dict.fromkeys(w) if i in skus] for w in wanted]


def _why(rule: engine.Rule, store: Store, channel: str) -> str:
    if rule.channels and (("pos" in rule.channels) != (channel in rule.channels)):
        return gettext("%(code)s runs only in %(channels)s") % {"code": rule.code,
                                                                  "channels": ", ".join(sorted(rule.channels))}
    if rule.store_ids and store.pk in rule.store_ids:
        return gettext("%(code)s runs only in named stores (online: when picked up there)") % {"code": rule.code}
    return ""


def price_consistency(*, at: datetime | None = None, baskets: list[list[tuple[Sku, int]]] | None = None,
                      stores=None, channels=ONLINE) -> list[ConsistencyRow]:
    """For each store and sample basket: the counter price at the store and the online price for delivery
    to the store's city.  Every difference is explained by the promotions' channel or store scope (and
    what that changes for the others: a threshold or an exclusivity group), or flagged."""
    rules = promotions_live(at=at)
    baskets = baskets if baskets is not None else sample_baskets(rules)
    stores = list(stores if stores is not None else Store.objects.filter(is_active=True).select_related("city"))
    rows = []
    for store in stores:
        for basket in baskets:
            pos = basket_preview(basket=basket, channel="pos", store_id=store.pk, at=at, rules=rules)
            row = ConsistencyRow(store=store, basket=basket, pos_total=pos.total, online=[])
            for channel in channels:
                web = basket_preview(basket=basket, channel=channel, city_id=store.city_id, at=at, rules=rules)
                price = ChannelPrice(channel=channel, total=web.total, difference=money(web.total - pos.total))
                a, b = pos.result.by_rule(), web.result.by_rule()
                differing = [r for r in rules if a.get(r.id, ZERO) != b.get(r.id, ZERO)]
                reasons = [n for n in (_why(r, store, channel) for r in differing) if n]
                for rule in differing:
                    note = _why(rule, store, channel)
                    if note:
                        price.notes.append(note)
                    elif reasons:
                        price.notes.append(gettext("%(code)s follows from the above (threshold or exclusivity "
                                                   "group)") % {"code": rule.code})
                    else:
                        price.flagged = True
                        price.notes.append(gettext("%(code)s differs without a reason in its scope")
                                           % {"code": rule.code})
                if price.difference and not differing:
                    price.flagged = True
                row.online.append(price)
            rows.append(row)
    return rows
