"""Returns give a capped promotion back what the returned goods took of it: the budget in proportion
to the units returned, the use once the order is returned in full, never below zero; through the
counter's return page and the API's returns endpoint."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from o2o.apiauth import SCOPES, partner_key_create
from promotions.models import Promotion
from promotions.tests.factories import promotion
from pos.tests.conftest import login
from stores.models import Role
from tests.api.conftest import bearer, idem, pay, place, staff_client
from tests.test_promotions import clerk, goods  # noqa: F401  (fixtures)
from tests.test_promotions_gift_returns import audit_clean, counter_return, counter_sale

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def capped(goods):  # noqa: F811
    _, jeans, _ = goods
    # 249 → 199: 50 off a pair; 3 sales or 500 off at most.
    return promotion(code="JEANS", name="牛仔裤限时特价", kind="special_price", price=D("199.00"), skus=[jeans],
                     max_uses=3, budget=D("500.00"))


def caps(promo: Promotion) -> tuple[int, Decimal]:
    promo.refresh_from_db()
    return promo.used_count, promo.used_amount


def test_a_counter_return_gives_back_the_budget_in_proportion_and_the_use_when_all_is_back(
        clerk, goods, capped):  # noqa: F811
    _, jeans, _ = goods
    client = login(clerk)
    sale = counter_sale(client, [(jeans, 3)])
    assert sale.total == D("597.00") and caps(capped) == (1, D("150.00"))
    line = sale.lines.get()

    counter_return(client, sale, {line.pk: 1})
    assert caps(capped) == (1, D("100.00"))  # one pair's 50 back; the sale still stands
    counter_return(client, sale, {line.pk: 2})
    assert caps(capped) == (0, D("0.00"))  # all back: the use too
    audit_clean()


def test_what_a_line_gives_back_in_parts_adds_up_to_what_it_took(clerk, goods):  # noqa: F811
    _, jeans, _ = goods
    # 满减 100 off over 300 on three pairs (747): 100 on the line, 33.33 + 33.34 + 33.33 by units.
    promo = promotion(code="M300", name="满300减100", kind="threshold_off", steps="300:100", budget=D("1000.00"))
    client = login(clerk)
    sale = counter_sale(client, [(jeans, 3)])
    line = sale.lines.get()
    assert caps(promo) == (1, D("100.00"))

    back = []
    for _ in range(3):
        before = caps(promo)[1]
        counter_return(client, sale, {line.pk: 1})
        back.append(before - caps(promo)[1])

    assert back == [D("33.33"), D("33.34"), D("33.33")] and sum(back) == D("100.00")
    assert caps(promo) == (0, D("0.00"))


def test_the_caps_never_go_below_zero(clerk, goods, capped):  # noqa: F811
    _, jeans, _ = goods
    client = login(clerk)
    sale = counter_sale(client, [(jeans, 1)])
    # HQ reset the counters meanwhile (a new season of the same promotion).
    Promotion.objects.filter(pk=capped.pk).update(used_count=0, used_amount=D("20.00"))

    counter_return(client, sale, {sale.lines.get().pk: 1})

    assert caps(capped) == (0, D("0.00"))


def test_an_online_order_returned_through_the_api_frees_its_use_for_the_next_customer(store_a, goods):  # noqa: F811
    _, jeans, _ = goods
    one_sale = promotion(code="ONCE", name="限一单特价", kind="special_price", price=D("199.00"), skus=[jeans],
                         max_uses=1)
    _, raw = partner_key_create(name="mini program", channel="mini_program", scopes=SCOPES)
    client = bearer(raw)
    first = place(client, store=store_a, lines=[{"sku": jeans.id, "qty": 1}]).json()
    assert first["total"] == "199.00" and caps(one_sale) == (1, D("50.00"))
    assert place(client, store=store_a, lines=[{"sku": jeans.id, "qty": 1}]).json()["total"] == "249.00"
    pay(client, first["id"])
    _, staff = staff_client(store_a, Role.CLERK)
    staff.post("/api/v1/pickups/handover/", {"code": first["pickup_code"]}, format="json", **idem())

    returned = client.post(f"/api/v1/orders/{first['id']}/returns/",
                           {"store": store_a.pk, "lines": [{"order_line": first["lines"][0]["id"], "qty": 1}]},
                           format="json", **idem())

    assert returned.status_code == 201 and returned.json()["refund_total"] == "199.00"
    assert caps(one_sale) == (0, D("0.00"))
    assert place(client, store=store_a, lines=[{"sku": jeans.id, "qty": 1}]).json()["total"] == "199.00"
    assert caps(one_sale) == (1, D("50.00"))


def test_the_audit_catches_a_promotion_counter_that_drifted(clerk, goods, capped):  # noqa: F811
    _, jeans, _ = goods
    client = login(clerk)
    sale = counter_sale(client, [(jeans, 2)])
    counter_return(client, sale, {sale.lines.get().pk: 1})
    audit_clean()  # one use, 50 of its 100 still taken

    Promotion.objects.filter(pk=capped.pk).update(used_count=2)  # a lost update, planted
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=out)
    assert ("promotion JEANS: counts 2 uses and 50.00 used, but its standing sales took 1 uses and 50.00"
            in out.getvalue())
