"""The benchmarks' order book is written by hand-made SQL (orders/management/orderbook.py), not by
the models, so a column added with a model default and no database default breaks it silently until
someone runs the bench.  Every INSERT there must name every NOT NULL column the schema has no
default for."""

import re
from pathlib import Path

import pytest
from django.db import connection

from orders.management import orderbook

GENERATOR = Path(orderbook.__file__)


def _inserts(text: str) -> list[tuple[str, set[str]]]:
    return [(m.group(1), {c.strip() for c in m.group(2).split(",")})
            for m in re.finditer(r"INSERT INTO (\w+) \(([^)]*)\)", text)]


@pytest.mark.django_db
def test_the_order_book_generator_fills_every_required_column():
    inserts = _inserts(GENERATOR.read_text())
    assert {table for table, _ in inserts} >= {"orders_order", "orders_orderline", "payments_payment",
                                               "payments_refund", "orders_return", "orders_returnline"}
    missing = {}
    with connection.cursor() as cur:
        for table, columns in inserts:
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                        "AND table_name = %s AND is_nullable = 'NO' AND column_default IS NULL "
                        "AND is_identity = 'NO'", [table])
            required = {row[0] for row in cur.fetchall()} - {"id"}
            if required - columns:
                missing[table] = sorted(required - columns)
    assert not missing, f"the bench generator leaves required columns out: {missing}"

