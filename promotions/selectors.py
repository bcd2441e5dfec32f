"""Reads of promotions: the live ones compiled for the engine, and the place of a sale."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from catalog.models import Category
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


def sale_context(*, channel: str, store_id: int | None = None, city_id: int | None = None, tier_code: str = "",
                 at: datetime | None = None) -> engine.Context:
    city_id, region_id = place_of(store_id=store_id, city_id=city_id)
    return engine.Context(channel=channel, at=timezone.localtime(at or timezone.now()), store_id=store_id,
                          city_id=city_id, region_id=region_id, tier_code=tier_code)
