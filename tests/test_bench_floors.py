"""The hand-written floors of the benchmark (bench/floors/*.sql) stay valid against the schema and
do what a sale does: run once each through pgbench on the test database."""

from __future__ import annotations

import subprocess
from decimal import Decimal

import pytest
from django.db import connection

from bench.run import FLOORS, FROZEN_POS_STATEMENTS, pgbench_bin
from catalog.tests.factories import SkuFactory
from inventory import services as stock
from inventory.models import StockLevel, StockMove
from members.services.members import member_register
from orders.models import Order
from payments.models import Payment
from stores.tests.factories import StoreFactory
from tests.procs import database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fixture_ids():
    store = StoreFactory()
    skus = [SkuFactory() for _ in range(5)]
    hot = SkuFactory()
    stock.stock_receive(warehouse=store.warehouse, lines=[(s.id, 10) for s in [*skus, hot]])
    levels = StockLevel.objects.filter(warehouse=store.warehouse, bucket="sellable")
    member = member_register(phone="+8613700000001", channel="pos", store_id=store.pk)
    assert [s.pk for s in skus] == list(range(skus[0].pk, skus[0].pk + 5))
    level_ids = [levels.get(sku=s).pk for s in skus]
    assert level_ids == list(range(level_ids[0], level_ids[0] + 5))
    return {"stores": 1, "blocks": 1, "skus": 5, "store0": store.pk, "warehouse0": store.warehouse_id,
            "level0": level_ids[0], "sku0": skus[0].pk, "member0": member.pk, "members": 1, "hot_sku": hot.pk,
            "hot_level": levels.get(sku=hot).pk}, skus, hot, member


def run_floor(name: str, ids: dict, transactions: int = 1) -> None:
    args = [pgbench_bin(), "-n", "-c", "1", "-t", str(transactions), "-f", str(FLOORS / name),
            *[arg for key, value in ids.items() for arg in ("-D", f"{key}={value}")],
            database_url(connection.settings_dict)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "aborted" not in out.stderr, out.stderr


def test_the_pos_sale_floor_sells_five_lines_to_the_member(fixture_ids):
    ids, skus, _hot, member = fixture_ids

    run_floor("pos_sale.sql", ids)

    order = Order.objects.get(number__startswith="PSF")
    assert (order.lines.count(), order.total, order.member_id) == (5, Decimal("249.50"), member.pk)
    assert sum(Payment.objects.filter(reference=order.number).values_list("amount", flat=True)) == order.total
    assert list(StockLevel.objects.filter(sku__in=skus).values_list("on_hand", flat=True)) == [9] * 5
    assert StockMove.objects.filter(reference=order.number).count() == 5
    member.refresh_from_db()
    assert member.points_frozen == 249
    script = (FLOORS / "pos_sale.sql").read_text()
    statements = script.split("BEGIN;")[1].split("COMMIT;")[0].count(";") + script.count("\\gset")
    assert statements == FROZEN_POS_STATEMENTS


def test_the_hot_sale_floor_sells_what_there_is_and_rolls_back_the_rest(fixture_ids):
    ids, _skus, hot, _member = fixture_ids

    run_floor("hot_sale.sql", ids, transactions=12)

    assert StockLevel.objects.get(sku=hot, bucket="sellable").on_hand == 0
    assert Order.objects.filter(number__startswith="PSH").count() == 10  # the two late ones rolled back
    assert StockMove.objects.filter(sku=hot, reason="sale").count() == 10
