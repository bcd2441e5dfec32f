"""The engine on its own: each kind of promotion just below, at and above its threshold, rounding to
the fen with allocation to lines, scope, windows, and how promotions combine."""

from datetime import datetime, time, timedelta, timezone as tz
from decimal import Decimal

import pytest

from promotions import engine
from promotions.engine import Context, Item, Rule, TierBenefit, promotions_apply

D = Decimal
NOW = datetime(2026, 12, 4, 15, 0, tzinfo=tz(timedelta(hours=8)))
POS = Context(channel="pos", at=NOW, store_id=1, city_id=10, region_id=100)


def rule(kind, id=1, **kw) -> Rule:
    return Rule(id=id, code=f"P{id}", name=f"promo {id}", kind=kind, **kw)


def item(sku, qty, unit, **kw) -> Item:
    return Item(sku_id=sku, qty=qty, amount=D(unit) * qty, **kw)


def taken(rules, items, ctx=POS):
    result = promotions_apply(rules if isinstance(rules, list) else [rules], items, ctx)
    return result.total, result.line_discounts, result


# --- 满减 (tiered) -------------------------------------------------------------------------------

STEPS = ((D("300"), D("50")), (D("600"), D("120")))


@pytest.mark.parametrize("spend, off", [("299.99", "0.00"), ("300.00", "50.00"), ("300.01", "50.00"),
                                        ("599.99", "50.00"), ("600.00", "120.00"), ("900.00", "120.00")])
def test_spend_and_save_takes_the_highest_step_reached(spend, off):
    total, _, _ = taken(rule(engine.THRESHOLD_OFF, steps=STEPS), [item(1, 1, spend)])
    assert total == D(off)


def test_spend_and_save_is_allocated_to_the_lines_to_the_fen():
    # 50 off 100 + 100 + 100.01: shares by amount, largest remainder; they add up exactly.
    lines = [item(1, 1, "100.00"), item(2, 1, "100.00"), item(3, 1, "100.01")]
    total, shares, _ = taken(rule(engine.THRESHOLD_OFF, steps=STEPS), lines)
    assert total == D("50.00")
    assert shares == (D("16.67"), D("16.66"), D("16.67"))  # the 2 fen left go to the largest remainders


def test_spend_and_save_counts_only_the_lines_in_scope():
    lines = [item(1, 1, "250.00", category_id=7), item(2, 1, "100.00", category_id=8)]
    total, shares, _ = taken(rule(engine.THRESHOLD_OFF, steps=STEPS, category_ids=frozenset({7})), lines)
    assert total == D("0.00")  # 250 of the category is below 300
    lines[0] = item(1, 1, "300.00", category_id=7)
    total, shares, _ = taken(rule(engine.THRESHOLD_OFF, steps=STEPS, category_ids=frozenset({7})), lines)
    assert shares == (D("50.00"), D("0.00"))


# --- 满折 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("spend, off", [("199.99", "0.00"), ("200.00", "20.00"), ("200.05", "20.01")])
def test_spend_and_get_a_percentage_off_from_its_threshold(spend, off):
    total, _, _ = taken(rule(engine.THRESHOLD_PERCENT, threshold=D("200"), percent=D("10")), [item(1, 1, spend)])
    assert total == D(off)  # 10% of 200.05 = 20.005, half up to 20.01


# --- 第N件N折 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("qty, off", [(1, "0.00"), (2, "49.50"), (3, "49.50"), (4, "99.00")])
def test_second_item_half_price(qty, off):
    total, _, _ = taken(rule(engine.NTH_ITEM, nth=2, percent=D("50")), [item(1, qty, "99.00")])
    assert total == D(off)


def test_the_nth_item_is_the_cheaper_one():
    # A 249 pair of jeans and a 99 shirt: the second (cheaper) unit is half price.
    lines = [item(1, 1, "99.00"), item(2, 1, "249.00")]
    total, shares, _ = taken(rule(engine.NTH_ITEM, nth=2, percent=D("50")), lines)
    assert shares == (D("49.50"), D("0.00"))


def test_third_item_at_thirty_percent_off_rounds_each_line_to_the_fen():
    total, shares, _ = taken(rule(engine.NTH_ITEM, nth=3, percent=D("30")), [item(1, 3, "33.33")])
    assert total == D("10.00")  # 33.33 × 30% = 9.999


# --- 买赠 ----------------------------------------------------------------------------------------


GIFT = dict(sku_ids=frozenset({1}), buy_qty=2, gift_sku_id=9, gift_qty=1)


@pytest.mark.parametrize("bought, free", [(1, 0), (2, 1), (3, 1), (4, 2)])
def test_buy_two_get_the_gift_free_when_it_is_in_the_basket(bought, free):
    lines = [item(1, bought, "99.00"), item(9, 2, "19.90", cost_price=D("6.50"))]
    total, shares, result = taken(rule(engine.GIFT, **GIFT), lines)
    assert shares == (D("0.00"), D("19.90") * free)
    gift = [a for a in result.applied if a.line == 1]
    assert [(a.gift_qty, a.gift_cost) for a in gift] == ([(free, D("6.50") * free)] if free else [])


def test_no_gift_line_no_gift():
    total, _, _ = taken(rule(engine.GIFT, **GIFT), [item(1, 4, "99.00")])
    assert total == D("0.00")


def test_buy_two_get_one_of_the_same_item_counts_three_units_a_set():
    same = dict(sku_ids=frozenset({1}), buy_qty=2, gift_sku_id=1, gift_qty=1)
    assert taken(rule(engine.GIFT, **same), [item(1, 2, "30.00")])[0] == D("0.00")
    assert taken(rule(engine.GIFT, **same), [item(1, 3, "30.00")])[0] == D("30.00")
    assert taken(rule(engine.GIFT, **same), [item(1, 6, "30.00")])[0] == D("60.00")


# --- 会员价 --------------------------------------------------------------------------------------


BENEFITS = (("GOLD", TierBenefit(price=D("89.00"))), ("SILVER", TierBenefit(percent=D("5"))))


@pytest.mark.parametrize("tier, off", [("", "0.00"), ("NORMAL", "0.00"), ("SILVER", "9.90"), ("GOLD", "20.00")])
def test_member_price_by_tier(tier, off):
    ctx = Context(channel="pos", at=NOW, tier_code=tier)
    total, _, _ = taken(rule(engine.MEMBER_PRICE, tier_benefits=BENEFITS), [item(1, 2, "99.00")], ctx)
    assert total == D(off)


def test_tier_scope_limits_any_kind_to_those_tiers():
    r = rule(engine.THRESHOLD_OFF, steps=STEPS, tier_codes=frozenset({"GOLD"}))
    assert taken(r, [item(1, 1, "300")], Context(channel="pos", at=NOW, tier_code="GOLD"))[0] == D("50.00")
    assert taken(r, [item(1, 1, "300")], Context(channel="pos", at=NOW, tier_code="SILVER"))[0] == D("0.00")


# --- 限时特价 ------------------------------------------------------------------------------------


def test_special_price_within_its_window_and_hours():
    r = rule(engine.SPECIAL_PRICE, price=D("79.00"), sku_ids=frozenset({1}), valid_from=NOW - timedelta(days=1),
             valid_until=NOW + timedelta(days=1), daily_from=time(10), daily_until=time(22))
    lines = [item(1, 2, "99.00"), item(2, 1, "99.00")]
    assert taken(r, lines)[1] == (D("40.00"), D("0.00"))
    for at in (NOW.replace(hour=9, minute=59), NOW.replace(hour=22), NOW + timedelta(days=1), NOW - timedelta(days=2)):
        assert taken(r, lines, Context(channel="pos", at=at))[0] == D("0.00"), at
    assert taken(r, lines, Context(channel="pos", at=NOW.replace(hour=10)))[0] == D("40.00")


def test_a_special_price_above_the_list_price_takes_nothing():
    assert taken(rule(engine.SPECIAL_PRICE, price=D("120.00")), [item(1, 1, "99.00")])[0] == D("0.00")


# --- bundle --------------------------------------------------------------------------------------


@pytest.mark.parametrize("a, b, off", [(1, 0, "0.00"), (1, 1, "48.00"), (2, 1, "48.00"), (2, 2, "96.00")])
def test_bundle_price_per_complete_set(a, b, off):
    lines = [item(1, a, "99.00")] + ([item(2, b, "249.00")] if b else [])
    total, shares, _ = taken(rule(engine.BUNDLE, sku_ids=frozenset({1, 2}), price=D("300.00")), lines)
    assert total == D(off)
    assert sum(shares) == total


# --- scope and context ---------------------------------------------------------------------------


def test_channel_and_place_scope():
    r = rule(engine.THRESHOLD_OFF, steps=STEPS, channels=frozenset({"pos", "mini_program"}),
             city_ids=frozenset({10}))
    basket = [item(1, 1, "300")]
    assert taken(r, basket)[0] == D("50.00")
    assert taken(r, basket, Context(channel="mini_program", at=NOW, city_id=10))[0] == D("50.00")
    assert taken(r, basket, Context(channel="web", at=NOW, city_id=10))[0] == D("0.00")
    assert taken(r, basket, Context(channel="pos", at=NOW, store_id=2, city_id=11, region_id=100))[0] == D("0.00")


def test_used_up_promotions_do_not_apply():
    r = rule(engine.THRESHOLD_OFF, steps=STEPS, remaining_uses=0)
    assert taken(r, [item(1, 1, "300")])[0] == D("0.00")
    r = rule(engine.THRESHOLD_OFF, steps=STEPS, remaining_budget=D("49.99"))
    assert taken(r, [item(1, 1, "300")])[0] == D("0.00")  # the budget cannot cover this sale's 50
    r = rule(engine.THRESHOLD_OFF, steps=STEPS, remaining_budget=D("50.00"))
    assert taken(r, [item(1, 1, "300")])[0] == D("50.00")


# --- combining ------------------------------------------------------------------------------------


def test_item_prices_come_before_spend_and_save():
    # A special price of 79 on a 99 shirt ×4 leaves 316; 满减 300-50 then still applies: 80 + 50.
    special = rule(engine.SPECIAL_PRICE, id=2, price=D("79.00"), priority=500)
    spend = rule(engine.THRESHOLD_OFF, id=1, steps=STEPS, priority=1)
    total, _, result = taken([spend, special], [item(1, 4, "99.00")])
    assert total == D("130.00")
    assert [a.rule.id for a in result.applied] == [2, 1]
    # With three shirts (237 after the special price) the 满减 threshold is no longer reached.
    assert taken([spend, special], [item(1, 3, "99.00")])[0] == D("60.00")


def test_at_most_one_promotion_per_exclusivity_group_the_best_for_the_customer():
    a = rule(engine.THRESHOLD_OFF, id=1, steps=STEPS, group="store-wide")
    b = rule(engine.THRESHOLD_PERCENT, id=2, threshold=D("0"), percent=D("20"), group="store-wide")
    total, _, result = taken([a, b], [item(1, 1, "300")])
    assert total == D("60.00") and {x.rule.id for x in result.applied} == {2}
    total, _, result = taken([a, b], [item(1, 1, "200")])
    assert total == D("40.00") and {x.rule.id for x in result.applied} == {2}
    c = rule(engine.THRESHOLD_PERCENT, id=3, threshold=D("0"), percent=D("10"), group="store-wide")
    total, _, result = taken([a, c], [item(1, 1, "600")])  # 120 beats 60
    assert total == D("120.00") and {x.rule.id for x in result.applied} == {1}


def test_a_group_gives_nothing_when_its_promotion_would_cost_the_customer_a_stacking_one():
    # 满300打8折 always stacks; the "weekend" group's only candidate is a special price of 290 on a
    # 300 jacket.  Taking it (10 off) pulls the basket under the 满折 threshold (60 off), so the
    # group gives nothing and the customer pays 240, not 290.
    spend = rule(engine.THRESHOLD_PERCENT, id=1, threshold=D("300"), percent=D("20"))
    special = rule(engine.SPECIAL_PRICE, id=2, price=D("290.00"), group="weekend")
    total, _, result = taken([spend, special], [item(1, 1, "300.00")])
    assert total == D("60.00") and [a.rule.id for a in result.applied] == [1]
    # Where the special price is worth more than what it costs, it is taken: 200 + 0 (under 300).
    deep = rule(engine.SPECIAL_PRICE, id=3, price=D("100.00"), group="weekend")
    total, _, result = taken([spend, special, deep], [item(1, 1, "300.00")])
    assert total == D("200.00") and [a.rule.id for a in result.applied] == [3]
    # Alone, the special price is simply taken.
    total, _, result = taken([special], [item(1, 1, "300.00")])
    assert total == D("10.00") and [a.rule.id for a in result.applied] == [2]


def test_a_tie_goes_to_the_higher_priority_then_the_older_promotion():
    a = rule(engine.THRESHOLD_PERCENT, id=5, threshold=D("0"), percent=D("10"), group="g", priority=50)
    b = rule(engine.THRESHOLD_PERCENT, id=4, threshold=D("0"), percent=D("10"), group="g", priority=50)
    c = rule(engine.THRESHOLD_PERCENT, id=3, threshold=D("0"), percent=D("10"), group="g", priority=60)
    result = promotions_apply([a, b, c], [item(1, 1, "100")], POS)
    assert {x.rule.id for x in result.applied} == {4}


def test_promotions_without_a_group_stack():
    a = rule(engine.SPECIAL_PRICE, id=1, price=D("89.00"))
    b = rule(engine.NTH_ITEM, id=2, nth=2, percent=D("50"))
    total, shares, _ = taken([a, b], [item(1, 2, "99.00")])
    assert total == D("20.00") + D("44.50")


def test_many_groups_fall_back_to_a_greedy_choice_and_stay_deterministic():
    rules = [rule(engine.THRESHOLD_PERCENT, id=i, threshold=D("0"), percent=D(1 + i % 7), group=f"g{i % 9}")
             for i in range(1, 60)]
    basket = [item(s, 1, "100") for s in range(1, 21)]
    first = promotions_apply(rules, basket, POS)
    assert first == promotions_apply(list(reversed(rules)), basket, POS)
    assert first.total > 0 and all(s <= D("100") for s in first.line_discounts)


def test_of_equal_priority_a_price_comes_before_a_percentage():
    nth = rule(engine.NTH_ITEM, id=1, nth=2, percent=D("50"))
    special = rule(engine.SPECIAL_PRICE, id=2, price=D("89.00"))
    total, _, result = taken([nth, special], [item(1, 2, "99.00")])
    assert [a.rule.id for a in result.applied] == [2, 1]
    assert total == D("20.00") + D("44.50")


def test_tiered_spend_and_save_takes_the_best_step_the_basket_reaches():
    """Steps written out of proportion (spend more, save less) never make spending more save less,
    so a promotion that lowers the basket cannot raise this one's discount."""
    items = [Item(sku_id=1, qty=1, amount=D("0.05")), Item(sku_id=2, qty=1, amount=D("0.02"))]
    odd = Rule(id=1, code="ODD", name="odd", kind="threshold_off",
               steps=((D("0.01"), D("0.02")), (D("0.07"), D("0.01"))))

    assert promotions_apply([odd], items, POS).total == D("0.02")
