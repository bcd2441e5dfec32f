"""The promotion engine: which promotions apply to a basket, and what each takes off which line.

Pure: no database, no clock, no Django models.  ``promotions.selectors`` turns the promotions
rows into :class:`Rule` values once per sale; ``orders.pricing.sale_price`` calls
:func:`promotions_apply` with the basket's lines and the sale's context and keeps the
:class:`Applied` explanation on the priced sale.  The same input gives the same answer in every
channel, which is the point: 价格统一执行.

How a basket is priced:

1. A rule applies to the sale's context (channel, store / city / region, member tier, the date and
   the time of day, what is left of its budget and uses) and to lines in its scope (SKUs, products,
   categories with their subcategories; an empty scope is everything).
2. Line-level kinds (限时特价, 会员价, 第N件N折, bundle price, 买赠) run before basket-level kinds
   (满减, 满折), then by ``priority`` (smaller first), then in that order of kinds, then by id.  Each promotion is computed on what
   the lines cost after the promotions before it, so a 满减 threshold is measured on the price
   after the special prices (the retail rule: 满减 counts what is paid for the goods).
3. Promotions without an exclusivity group always stack.  Of the promotions sharing a group, at
   most one applies per sale: every choice is tried, none of the group's among them (up to
   ``EXHAUSTIVE_LIMIT`` combinations; past that, only the ``SHORTLIST`` options of each group that
   take off most on their own, and past that one greedy pass group by group) and the combination
   taking the most off wins; ties go to the earlier choice (priority, then id, and "none" last), so
   the answer is deterministic.  "None" wins only where a group's promotion would cost the
   customer more than it gives: a 限时特价 that pulls the basket under a stacking 满折's threshold.
4. Every amount is a discount on a line, rounded to the fen and never more than what the line
   still costs, so no line goes below zero; a basket-level discount is allocated to its lines by
   what they cost (largest remainder, ``o2o.money.allocate``).  Returns are per line, so a returned
   line gives back its promotion share with it.

Because each promotion only ever sees prices at or below the list prices, what it takes off in a
combination is never more than what it would take off alone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal

from o2o.money import ZERO, allocate, money

HUNDRED = Decimal(100)
EXHAUSTIVE_LIMIT = 64  # combinations of group choices tried one by one
SHORTLIST = 2  # past that, the options of a group worth trying: the best alone, by what they take off

THRESHOLD_OFF = "threshold_off"  # 满减
THRESHOLD_PERCENT = "threshold_percent"  # 满折
NTH_ITEM = "nth_item"  # 第N件N折
GIFT = "gift"  # 买赠
MEMBER_PRICE = "member_price"  # 会员价
SPECIAL_PRICE = "special_price"  # 限时特价
BUNDLE = "bundle"  # A + B for a price
LINE_KINDS = (SPECIAL_PRICE, MEMBER_PRICE, NTH_ITEM, BUNDLE, GIFT)
BASKET_KINDS = (THRESHOLD_OFF, THRESHOLD_PERCENT)


@dataclass(frozen=True)
class Item:
    """A basket line as the engine sees it: ``amount`` is what it costs before any promotion."""

    sku_id: int
    qty: int
    amount: Decimal
    product_id: int | None = None
    category_id: int | None = None
    cost_price: Decimal = ZERO


@dataclass(frozen=True)
class Context:
    channel: str
    at: datetime  # local time of the sale
    store_id: int | None = None
    city_id: int | None = None
    region_id: int | None = None
    tier_code: str = ""


@dataclass(frozen=True)
class TierBenefit:
    price: Decimal | None = None  # a unit price for the tier
    percent: Decimal | None = None  # or a percentage off


@dataclass(frozen=True)
class Rule:
    """One promotion, compiled for pricing.  Empty scope sets mean "any"."""

    id: int
    code: str
    name: str
    kind: str
    priority: int = 100
    group: str = ""
    bearer: str = "hq"
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    daily_from: time | None = None
    daily_until: time | None = None
    channels: frozenset[str] = frozenset()
    store_ids: frozenset[int] = frozenset()
    city_ids: frozenset[int] = frozenset()
    region_ids: frozenset[int] = frozenset()
    tier_codes: frozenset[str] = frozenset()
    sku_ids: frozenset[int] = frozenset()
    product_ids: frozenset[int] = frozenset()
    category_ids: frozenset[int] = frozenset()  # with their subcategories
    steps: tuple[tuple[Decimal, Decimal], ...] = ()  # 满减: (spend, off), ascending
    threshold: Decimal = ZERO
    percent: Decimal = ZERO  # percent off: 满折, 第N件 (50 = half price)
    nth: int = 2
    price: Decimal | None = None  # 限时特价 unit price; bundle price
    buy_qty: int = 1
    gift_sku_id: int | None = None
    gift_qty: int = 1
    tier_benefits: tuple[tuple[str, TierBenefit], ...] = ()
    remaining_uses: int | None = None
    remaining_budget: Decimal | None = None

    @property
    def stage(self) -> int:
        return 0 if self.kind in LINE_KINDS else 1

    @property
    def order_key(self) -> tuple[int, int, int, int]:
        # Prices (special, member) before percentages and sets, so a price is a price: of equal
        # priority, 限时特价 then 第二件半价 gives half of the special price, not nothing.
        rank = (LINE_KINDS + BASKET_KINDS).index(self.kind) if self.kind in LINE_KINDS + BASKET_KINDS else 99
        return (self.stage, self.priority, rank, self.id)

    def in_context(self, ctx: Context) -> bool:
        if self.remaining_uses is not None and self.remaining_uses <= 0:
            return False
        if self.remaining_budget is not None and self.remaining_budget <= 0:
            return False
        if self.valid_from is not None and ctx.at < self.valid_from:
            return False
        if self.valid_until is not None and ctx.at >= self.valid_until:
            return False
        if self.daily_from is not None or self.daily_until is not None:
            now = ctx.at.time()
            if self.daily_from is not None and now < self.daily_from:
                return False
            if self.daily_until is not None and now >= self.daily_until:
                return False
        if self.channels and ctx.channel not in self.channels:
            return False
        if self.store_ids or self.city_ids or self.region_ids:
            # Any of the places named: the store itself, its city, its region.
            if not ((ctx.store_id in self.store_ids) or (ctx.city_id in self.city_ids)
                    or (ctx.region_id in self.region_ids)):
                return False
        if self.kind == MEMBER_PRICE:
            return bool(ctx.tier_code) and ctx.tier_code in dict(self.tier_benefits)
        if self.tier_codes and ctx.tier_code not in self.tier_codes:
            return False
        return True

    def covers(self, item: Item) -> bool:
        if self.kind == BUNDLE:
            return item.sku_id in self.sku_ids
        if not (self.sku_ids or self.product_ids or self.category_ids):
            return True
        return (item.sku_id in self.sku_ids or item.product_id in self.product_ids
                or item.category_id in self.category_ids)


@dataclass(frozen=True)
class Applied:
    """What one promotion took off one line (and, for a gift, what the gift cost)."""

    rule: Rule
    line: int  # index into the basket's items
    amount: Decimal
    gift_qty: int = 0
    gift_cost: Decimal = ZERO
    # 买赠: the SKUs whose units earned the gift (a return of them may take the gift's value back)
    earned_by: tuple[int, ...] = ()


@dataclass(frozen=True)
class Result:
    applied: tuple[Applied, ...] = ()
    line_discounts: tuple[Decimal, ...] = ()
    # The promotions considered: in context and covering a line of the basket.
    candidates: tuple[Rule, ...] = field(default=())

    @property
    def total(self) -> Decimal:
        return money(sum(self.line_discounts, ZERO))

    def by_rule(self) -> dict[int, Decimal]:
        out: dict[int, Decimal] = {}
        for a in self.applied:
            out[a.rule.id] = money(out.get(a.rule.id, ZERO) + a.amount)
        return out


# --- one promotion on the lines as they cost now ------------------------------------------------


def _spread(total: Decimal, idx: list[int], now: list[Decimal]) -> dict[int, Decimal]:
    """Allocate a basket-level ``total`` (≤ what the lines cost) to lines ``idx`` by what they cost."""
    if total <= 0 or not idx:
        return {}
    return {i: share for i, share in zip(idx, allocate(total, [now[i] for i in idx])) if share > 0}


def _threshold_off(rule: Rule, items, now, idx) -> dict[int, Decimal]:
    eligible = money(sum((now[i] for i in idx), ZERO))
    # The best step the basket reaches: spending more never saves less, even with steps written out
    # of proportion, so another promotion lowering the basket can never raise this one's discount.
    off = max((amount for spend, amount in rule.steps if eligible >= spend), default=ZERO)
    return _spread(min(off, eligible), idx, now)


def _threshold_percent(rule: Rule, items, now, idx) -> dict[int, Decimal]:
    eligible = money(sum((now[i] for i in idx), ZERO))
    if eligible <= 0 or eligible < rule.threshold:
        return {}
    return _spread(min(money(eligible * rule.percent / HUNDRED), eligible), idx, now)


def _unit_values(items, now, idx) -> list[tuple[Decimal, int]]:
    """(unit value now, line) for every unit of the lines, dearest first (then basket order)."""
    units = []
    for i in idx:
        unit = now[i] / items[i].qty
        units.extend([(unit, i)] * items[i].qty)
    units.sort(key=lambda u: (-u[0], u[1]))
    return units


def _by_line(parts: list[tuple[int, Decimal]], now) -> dict[int, Decimal]:
    out: dict[int, Decimal] = {}
    for i, amount in parts:
        out[i] = out.get(i, ZERO) + amount
    return {i: min(money(v), now[i]) for i, v in out.items() if money(v) > 0}


def _nth_item(rule: Rule, items, now, idx) -> dict[int, Decimal]:
    # Units in scope are counted dearest first; every n-th one is at ``percent`` off, so the
    # discount falls on the cheaper unit of each set (第二件半价 on two shirts of different prices).
    units = _unit_values(items, now, idx)
    picked = units[rule.nth - 1::rule.nth] if rule.nth >= 1 else []
    return _by_line([(i, unit * rule.percent / HUNDRED) for unit, i in picked], now)


def _special_price(price: Decimal | None, items, now, idx) -> dict[int, Decimal]:
    if price is None:
        return {}
    out = {}
    price = money(price)
    for i in idx:
        off = now[i] - price * items[i].qty  # exact: both in fen
        if off > 0:
            out[i] = min(off, now[i])
    return out


def _member_price(rule: Rule, items, now, idx, tier: str) -> dict[int, Decimal]:
    benefit = dict(rule.tier_benefits).get(tier)
    if benefit is None:
        return {}
    if benefit.price is not None:
        return _special_price(benefit.price, items, now, idx)
    pct = benefit.percent or ZERO
    return {i: min(money(now[i] * pct / HUNDRED), now[i]) for i in idx if money(now[i] * pct / HUNDRED) > 0}


def _bundle(rule: Rule, items, now, idx) -> dict[int, Decimal]:
    if rule.price is None or len(rule.sku_ids) < 2:
        return {}
    by_sku: dict[int, list[int]] = {}
    for i in idx:
        by_sku.setdefault(items[i].sku_id, []).append(i)
    if set(by_sku) != set(rule.sku_ids):
        return {}
    sets = min(sum(items[i].qty for i in lines) for lines in by_sku.values())
    # Each set takes one unit of each SKU, from the dearest units.
    chosen: list[tuple[Decimal, int]] = []
    for lines in by_sku.values():
        chosen.extend(_unit_values(items, now, lines)[:sets])
    value = sum((u for u, _ in chosen), Decimal(0))
    off = money(value - rule.price * sets)
    if off <= 0:
        return {}
    weights: dict[int, Decimal] = {}
    for unit, i in chosen:
        weights[i] = weights.get(i, Decimal(0)) + unit
    lines = sorted(weights)
    shares = allocate(off, [weights[i] for i in lines])
    return {i: min(s, now[i]) for i, s in zip(lines, shares) if s > 0}


def _gift(rule: Rule, items, now, idx) -> tuple[dict[int, Decimal], dict[int, int]]:
    """Buy ``buy_qty`` units in scope, get ``gift_qty`` of the gift SKU free (it must be in the basket).

    When the gift SKU is itself in scope (买二赠一 of the same item), a set is buy + gift units.
    """
    gift_lines = [i for i, it in enumerate(items) if it.sku_id == rule.gift_sku_id]
    if not gift_lines or rule.buy_qty < 1 or rule.gift_qty < 1:
        return {}, {}
    bought = sum(items[i].qty for i in idx)
    per_set = rule.buy_qty + (rule.gift_qty if set(gift_lines) & set(idx) else 0)
    free = (bought // per_set) * rule.gift_qty
    out: dict[int, Decimal] = {}
    qtys: dict[int, int] = {}
    for unit, i in sorted(_unit_values(items, now, gift_lines), key=lambda u: (u[0], u[1])):
        if free <= 0:
            break
        out[i] = out.get(i, ZERO) + unit
        qtys[i] = qtys.get(i, 0) + 1
        free -= 1
    return {i: min(money(v), now[i]) for i, v in out.items() if money(v) > 0}, qtys


def _one(rule: Rule, items: tuple[Item, ...], now: list[Decimal], ctx: Context,
         covered: tuple[int, ...]) -> list[Applied]:
    idx = [i for i in covered if now[i] > 0]
    if not idx and rule.kind != GIFT:
        return []
    qtys: dict[int, int] = {}
    if rule.kind == THRESHOLD_OFF:
        parts = _threshold_off(rule, items, now, idx)
    elif rule.kind == THRESHOLD_PERCENT:
        parts = _threshold_percent(rule, items, now, idx)
    elif rule.kind == NTH_ITEM:
        parts = _nth_item(rule, items, now, idx)
    elif rule.kind == SPECIAL_PRICE:
        parts = _special_price(rule.price, items, now, idx)
    elif rule.kind == MEMBER_PRICE:
        parts = _member_price(rule, items, now, idx, ctx.tier_code)
    elif rule.kind == BUNDLE:
        parts = _bundle(rule, items, now, idx)
    elif rule.kind == GIFT:
        parts, qtys = _gift(rule, items, now, idx)
    else:
        parts = {}
    total = money(sum(parts.values(), ZERO))
    if total <= 0 or (rule.remaining_budget is not None and total > rule.remaining_budget):
        return []  # a promotion whose budget cannot cover this sale does not apply to it
    earned_by = tuple(sorted({items[i].sku_id for i in idx})) if rule.kind == GIFT else ()
    return [Applied(rule=rule, line=i, amount=amount, gift_qty=qtys.get(i, 0),
                    gift_cost=money(items[i].cost_price * qtys[i]) if qtys.get(i) else ZERO,
                    earned_by=earned_by if qtys.get(i) else ())
            for i, amount in sorted(parts.items())]


def _run(rules: list[Rule], items: tuple[Item, ...], ctx: Context, cover: dict[int, tuple[int, ...]],
         start: tuple[list[Applied], list[Decimal]] | None = None) -> tuple[list[Applied], list[Decimal]]:
    """Apply ``rules`` in order; ``start``: (applied, what the lines cost) after the rules before them."""
    base = [it.amount for it in items]  # in fen (promotions_apply quantized them)
    now = list(start[1]) if start else list(base)
    applied: list[Applied] = list(start[0]) if start else []
    for rule in sorted(rules, key=lambda r: r.order_key):
        for a in _one(rule, items, now, ctx, cover[rule.id]):
            now[a.line] = now[a.line] - a.amount  # exact: both in fen
            applied.append(a)
    return applied, now


def _discounts(items: tuple[Item, ...], now: list[Decimal]) -> list[Decimal]:
    return [it.amount - left for it, left in zip(items, now)]


def _taken(applied: list[Applied]) -> Decimal:
    return money(sum((a.amount for a in applied), ZERO))


def _combinations(options: list[list[Rule | None]]) -> int:
    n = 1
    for opt in options:
        n *= len(opt)
    return n


def candidates(rules, items: tuple[Item, ...], ctx: Context) -> list[Rule]:
    """The rules in this sale's context that cover at least one of its lines (or give a gift in it)."""
    out = []
    for rule in rules:
        if not rule.in_context(ctx):
            continue
        if rule.kind == GIFT and not any(it.sku_id == rule.gift_sku_id for it in items):
            continue
        if any(rule.covers(it) for it in items):
            out.append(rule)
    return out


def promotions_apply(rules, items, ctx: Context) -> Result:
    """The best combination of ``rules`` for the basket ``items`` in ``ctx`` (see the module docstring)."""
    items = tuple(it if it.amount == money(it.amount) and it.amount.as_tuple().exponent == -2
                  else Item(**{**it.__dict__, "amount": money(it.amount)}) for it in items)
    found = sorted(candidates(rules, items, ctx), key=lambda r: r.order_key)
    if not found:
        return Result(line_discounts=tuple(ZERO for _ in items))
    free = [r for r in found if not r.group]
    groups: dict[str, list[Rule]] = {}
    for r in sorted(found, key=lambda r: (r.priority, r.id)):
        if r.group:
            groups.setdefault(r.group, []).append(r)
    # Each group may also give nothing, tried last so that a tie keeps the group's promotion.
    options: list[list[Rule | None]] = [[*groups[g], None] for g in sorted(groups)]
    cover = {r.id: tuple(i for i, it in enumerate(items) if r.covers(it)) for r in found}
    if _combinations(options) > EXHAUSTIVE_LIMIT:
        # Too many to try them all: keep, in each group, the options that take off most on their own.
        def alone(rule: Rule) -> Decimal:
            return _taken(_one(rule, items, [it.amount for it in items], ctx, cover[rule.id]))

        options = [[*sorted(opt[:-1], key=lambda r: -alone(r))[:SHORTLIST], None] for opt in options]
    # The stacking promotions that run before any group's choice give the same start to every trial.
    first = min((r.order_key for opt in options for r in opt if r), default=None)
    early = [r for r in free if first is None or r.order_key < first]
    late = [r for r in free if first is not None and r.order_key >= first]
    start = _run(early, items, ctx, cover)
    best: tuple[Decimal, list[Applied], list[Decimal]] | None = None
    if _combinations(options) <= EXHAUSTIVE_LIMIT:
        for choice in itertools.product(*options):
            applied, now = _run(late + [r for r in choice if r], items, ctx, cover, start)
            if best is None or _taken(applied) > best[0]:
                best = (_taken(applied), applied, now)
    else:
        # Still too many: choose group by group, the others fixed.
        chosen = [opt[0] for opt in options]
        for g, opt in enumerate(options):
            for rule in opt:
                trial = chosen[:g] + [rule] + chosen[g + 1:]
                applied, now = _run(late + [r for r in trial if r], items, ctx, cover, start)
                if best is None or _taken(applied) > best[0]:
                    best, chosen = (_taken(applied), applied, now), trial
    _, applied, now = best
    return Result(applied=tuple(applied), line_discounts=tuple(_discounts(items, now)), candidates=tuple(found))
