"""Races on parked sales, on PostgreSQL with real threads: one recall wins; a recall racing the close
either takes the sale or finds it expired, never both."""

from decimal import Decimal

import pytest
from django.urls import reverse

from payments.models import PosShift
from pos import parking
from pos.basket import Basket, BasketLine
from pos.models import PosBasket
from stores.models import Role
from stores.tests.factories import StaffFactory
from tests.concurrency import run_at_once

from .conftest import login

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def parked(store_a, clerk_a, stocked, shift_a):
    shirt, _ = stocked
    basket = Basket(uuid="5b0f9c1e-7a53-4c1e-9f1e-0d5a3c2b1a00", lines=(BasketLine(sku_id=shirt.pk, qty=2),))
    parking.basket_open_save(store=store_a, clerk=clerk_a, basket=basket)
    return parking.basket_park(store=store_a, clerk=clerk_a)


def test_two_clerks_recalling_the_same_parked_sale_at_once_one_wins(store_a, parked):
    clerks = [StaffFactory(role=Role.CLERK, store=store_a).user for _ in range(2)]
    clients = [login(user) for user in clerks]

    outcomes = run_at_once([lambda c=c: c.post(reverse("pos:parked_recall", args=[parked.pk])).status_code
                            for c in clients])

    assert sorted(outcomes) == [302, 409]
    winner = clerks[outcomes.index(302)]
    parked.refresh_from_db()
    assert parked.state == PosBasket.State.RECALLED and parked.recalled_by == winner
    holding = [user for user in clerks if parking.basket_open_get(store=store_a, clerk=user).lines]
    assert holding == [winner]
    assert parking.basket_open_get(store=store_a, clerk=winner).uuid == "5b0f9c1e-7a53-4c1e-9f1e-0d5a3c2b1a00"


def test_a_recall_racing_the_shift_close_either_takes_the_sale_or_finds_it_expired(store_a, clerk_a, shift_a,
                                                                                   parked):
    colleague = StaffFactory(role=Role.CLERK, store=store_a).user

    def recall():
        try:
            parking.basket_recall(store=store_a, clerk=colleague, parked_id=parked.pk)
            return "recalled"
        except parking.ParkedGone:
            return "gone"

    def close():
        parking.pos_shift_close(shift=shift_a, actor=clerk_a, counts={"100": 2})
        return "closed"

    recalled, closed = run_at_once([recall, close])

    assert closed == "closed" and recalled in ("recalled", "gone")
    parked.refresh_from_db()
    in_basket = bool(parking.basket_open_get(store=store_a, clerk=colleague).lines)
    if recalled == "recalled":
        assert parked.state == PosBasket.State.RECALLED and in_basket and parked.expired_at is None
    else:
        assert parked.state == PosBasket.State.EXPIRED and not in_basket
        assert parked.expired_shift_id == shift_a.pk
    assert PosShift.objects.get(pk=shift_a.pk).counted_cash == Decimal("200.00")
