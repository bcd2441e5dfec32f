"""Properties of combining promotions, on random baskets and random sets of promotions.

Whatever the mix of kinds, groups and priorities: no line is ever priced below zero, every discount
is in whole fen, the lines' shares add up to the total, the total taken off is never more than the
sum of what each applicable promotion takes off the same basket alone, the chosen combination is
at least as good as the best single promotion of each exclusivity group applied with the ones that
always stack, and the answer does not depend on the order the promotions were loaded in.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as tz
from decimal import Decimal

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from promotions import engine
from promotions.engine import Context, Item, Rule, TierBenefit, promotions_apply

D = Decimal
CTX = Context(channel="pos", at=datetime(2026, 12, 4, 15, tzinfo=tz(timedelta(hours=8))), tier_code="GOLD")
SKUS = range(1, 7)

money_st = st.integers(min_value=1, max_value=60000).map(lambda c: D(c) / 100)
pct_st = st.integers(min_value=1, max_value=100).map(D)
scope_st = st.frozensets(st.sampled_from(list(SKUS)), max_size=3)


@st.composite
def rules(draw, id_):
    kind = draw(st.sampled_from([engine.THRESHOLD_OFF, engine.THRESHOLD_PERCENT, engine.NTH_ITEM, engine.GIFT,
                                 engine.MEMBER_PRICE, engine.SPECIAL_PRICE, engine.BUNDLE]))
    kw = dict(id=id_, code=f"P{id_}", name=f"p{id_}", kind=kind, priority=draw(st.integers(0, 3)),
              group=draw(st.sampled_from(["", "", "a", "b"])), sku_ids=draw(scope_st))
    if kind == engine.THRESHOLD_OFF:
        spends = sorted(draw(st.lists(money_st, min_size=1, max_size=3)))
        kw["steps"] = tuple((s, draw(money_st)) for s in spends)
    elif kind == engine.THRESHOLD_PERCENT:
        kw.update(threshold=draw(money_st), percent=draw(pct_st))
    elif kind == engine.NTH_ITEM:
        kw.update(nth=draw(st.integers(1, 4)), percent=draw(pct_st))
    elif kind == engine.GIFT:
        kw.update(buy_qty=draw(st.integers(1, 3)), gift_qty=draw(st.integers(1, 2)),
                  gift_sku_id=draw(st.sampled_from(list(SKUS))))
    elif kind == engine.MEMBER_PRICE:
        benefit = draw(st.one_of(money_st.map(lambda p: TierBenefit(price=p)),
                                 pct_st.map(lambda p: TierBenefit(percent=p))))
        kw["tier_benefits"] = (("GOLD", benefit),)
    elif kind == engine.SPECIAL_PRICE:
        kw["price"] = draw(money_st)
    else:
        kw.update(sku_ids=draw(st.frozensets(st.sampled_from(list(SKUS)), min_size=2, max_size=3)),
                  price=draw(money_st))
    return Rule(**kw)


@st.composite
def cases(draw):
    skus = draw(st.lists(st.sampled_from(list(SKUS)), min_size=1, max_size=6, unique=True))
    items = [Item(sku_id=s, qty=draw(st.integers(1, 5)), amount=D(0), cost_price=D("1.00")) for s in skus]
    items = [Item(sku_id=i.sku_id, qty=i.qty, amount=draw(money_st) * i.qty, cost_price=i.cost_price)
             for i in items]
    n = draw(st.integers(1, 6))
    return items, [draw(rules(i)) for i in range(1, n + 1)]


@settings(max_examples=300, deadline=None)
@given(cases())
def test_combined_never_exceeds_the_sum_alone_and_never_prices_below_zero(case):
    items, found = case
    result = promotions_apply(found, items, CTX)

    assert all(d >= 0 and d <= it.amount for d, it in zip(result.line_discounts, items))
    assert all(d == d.quantize(D("0.01")) for d in result.line_discounts)
    assert sum(a.amount for a in result.applied) == result.total == sum(result.line_discounts)
    alone = sum(promotions_apply([r], items, CTX).total for r in found)
    assert result.total <= alone
    assert result == promotions_apply(list(reversed(found)), items, CTX)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_the_chosen_combination_is_the_best_one_within_the_groups(case):
    items, found = case
    result = promotions_apply(found, items, CTX)
    stacking = [r for r in found if not r.group]
    by_group: dict[str, list[Rule]] = {}
    for r in found:
        if r.group:
            by_group.setdefault(r.group, []).append(r)
    # Every other choice of one promotion per group takes off no more.
    for choice in itertools.product(*by_group.values()):
        assert promotions_apply(stacking + list(choice), items, CTX).total <= result.total
    # And at most one promotion of each group is applied.
    applied_groups = [a.rule.group for a in result.applied if a.rule.group]
    assert all(len({a.rule.id for a in result.applied if a.rule.group == g}) == 1 for g in applied_groups)
