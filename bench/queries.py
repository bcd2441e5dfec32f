"""Queries per request (Django test client + CaptureQueriesContext), 1 line vs 20 lines.

    python -m bench.queries      (bench settings, bench database)
"""

from __future__ import annotations

import json
import sys
import uuid

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.load import order_body, pos_body  # noqa: E402


def _count(call) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as ctx:
        resp = call()
    return len(ctx.captured_queries), resp.status_code


def main(fixture: str) -> int:
    with open(fixture) as fh:
        fx = json.load(fh)
    client = Client(HTTP_HOST="127.0.0.1")
    out = {}
    for n in (1, 20):
        # Both shapes pay cash + card (the card takes 50.00, so every sale must be dearer than that):
        # only the number of lines differs.
        picked = [s for s in fx["skus"] if float(s[1]) > 50][:1] if n == 1 else fx["skus"][:n]
        # a warm-up request of each shape first, so one-off lookups (configs, content types) are not counted
        for label in ("warm", "measured"):
            sale = _count(lambda: client.post("/bench/pos-sale/", pos_body(fx, 0, picked), content_type="application/json"))
            place = _count(lambda: client.post("/bench/order-place/", order_body(fx, 0, "pickup", [s for s, _ in picked]),
                                               content_type="application/json"))
        out[f"pos_sale_{n}_lines"] = sale
        out[f"order_place_{n}_lines"] = place
        # The list's newest 20 orders now all have n lines.
        for _ in range(20):
            client.post("/bench/order-place/", order_body(fx, 0, "pickup", [s for s, _ in picked]),
                        content_type="application/json")
        out[f"orders_list_bench_20_orders_{n}_lines"] = _count(lambda: client.get("/bench/orders/?limit=20"))
        admin = get_user_model().objects.filter(username="bench-admin").first() or \
            get_user_model().objects.create_superuser(username="bench-admin", password=uuid.uuid4().hex)
        staff = Client(HTTP_HOST="127.0.0.1")
        staff.force_login(admin)
        staff.get("/admin/orders/order/")
        out[f"admin_order_changelist_{n}_lines"] = _count(lambda: staff.get("/admin/orders/order/"))
    result = {name: {"queries": q, "status": s} for name, (q, s) in out.items()}
    for kind in ("pos_sale", "order_place", "admin_order_changelist", "orders_list_bench_20_orders"):
        one, twenty = result[f"{kind}_1_lines"]["queries"], result[f"{kind}_20_lines"]["queries"]
        result[f"{kind}_constant"] = one == twenty
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
