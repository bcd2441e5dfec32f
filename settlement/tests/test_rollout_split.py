"""Settlement obeys the split-rules switch: where split rules are not launched (the fulfilling store's
effective switch) no rule applies and the store keeps the whole net; a store override decides."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from settlement import services
from settlement.models import SplitLine
from settlement.tests.scenario import build_day, end_of_today, shop
from stores.models import Capability
from stores.services import capability_set

D = Decimal


@pytest.mark.django_db
def test_split_rules_switched_off_at_a_city_and_back_on_at_a_store():
    s = shop()
    a, b = s["a"], s["b"]
    # off in the cities of A and B; B is switched on again on its own
    capability_set(capability=Capability.SPLIT_RULES, enabled=False, city=a.city)
    capability_set(capability=Capability.SPLIT_RULES, enabled=False, city=b.city)
    capability_set(capability=Capability.SPLIT_RULES, enabled=True, store=b)
    out = build_day(s)
    services.settlement_run(until=services.business_day_of(end_of_today()) - timedelta(days=1), now=end_of_today())

    # A's pickup would take the 10.5% rule: with split rules off at A, A keeps every line's net
    picked = SplitLine.objects.filter(order=out["pickup_a"], kind="sale")
    assert picked.count() == 3
    assert all((ln.rule_id, ln.ecommerce_amount, ln.store_id, ln.store_amount) == (None, D("0.00"), a.pk, ln.net)
               for ln in picked)
    # B's guided sale still takes the guide rule: C's guide gets 5% of each line
    guided = SplitLine.objects.filter(order=out["guided_b"], kind="sale")
    assert {ln.rule_id for ln in guided} == {s["rules"]["guided"].pk}
    assert all(ln.guide_store_amount == (ln.net * D("0.05")).quantize(D("0.01")) for ln in guided)
    # the return of A's pickup coat at B reverses the sale as it was split (no rule)
    returned = SplitLine.objects.get(order=out["pickup_a"], kind="return")
    assert (returned.rule_id, returned.ecommerce_amount, returned.store_id) == (None, D("0.00"), a.pk)
    call_command("audit_ledgers", stdout=io.StringIO())
