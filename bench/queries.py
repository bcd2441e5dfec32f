"""Queries per request of the real endpoints (Django test client + CaptureQueriesContext), 1 vs 20 lines.

    python -m bench.queries FIXTURE      (bench settings, the seeded bench database)

* ``pos_complete``: the POS sale page's complete request (``/pos/sale/complete/``) for a basket of
  1 or 20 lines, with a member (points earned) and cash + card; the basket is filled first
  through the page's own scan and member requests, which are not counted.
* ``api_order_place``: ``POST /api/v1/orders/`` (partner key, Idempotency-Key), pickup, 1 or 20 lines.
* ``api_order_list``: ``GET /api/v1/orders/?limit=20`` when the newest 20 orders have 1 or 20 lines each.
* ``admin_order_changelist``: the admin's order list.

Each request is made once of each shape before it is counted, so one-off lookups (content types,
configuration rows cached per process) are not counted.
"""

from __future__ import annotations

import json
import sys
import uuid
from decimal import Decimal

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.load import API_ORDERS, api_headers, api_order_body, complete_form  # noqa: E402
from bench.seed import pos_basket_fill, pos_client  # noqa: E402

KINDS = ("pos_complete", "api_order_place", "api_order_list", "admin_order_changelist")
STORE_INDEX = 1  # a till of its own: store 0 is the capture's and the hot SKU's


def _count(call) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as ctx:
        resp = call()
    return len(ctx.captured_queries), resp.status_code


def _api(fx: dict) -> dict:
    headers = api_headers(fx)
    return {"HTTP_AUTHORIZATION": headers["Authorization"], "HTTP_IDEMPOTENCY_KEY": headers["Idempotency-Key"]}


def main(fixture: str) -> int:
    with open(fixture) as fh:
        fx = json.load(fh)
    till = pos_client(fx, STORE_INDEX)
    api = Client(HTTP_HOST="127.0.0.1")
    out = {}
    for n in (1, 20):
        # Both baskets pay cash + card (the card takes 50.00, so the 1-line sale must cost more):
        # only the number of lines differs.
        idx = [i for i, (_, price) in enumerate(fx["skus"]) if Decimal(price) > 50][:1] if n == 1 else list(range(n))
        barcodes = [fx["barcodes"][i] for i in idx]
        total = sum(Decimal(fx["skus"][i][1]) for i in idx)
        skus = [fx["skus"][i][0] for i in idx]

        def sale():
            client_uuid = pos_basket_fill(till, fx, barcodes, fx["member_phones"][STORE_INDEX])
            return _count(lambda: till.post("/pos/sale/complete/", complete_form(client_uuid, total),
                                            HTTP_HX_REQUEST="true"))

        def place():
            body = api_order_body(fx, STORE_INDEX, "pickup", skus)
            return _count(lambda: api.post(API_ORDERS, body, content_type="application/json", **_api(fx)))

        for _warm in (1, 2):
            out[f"pos_complete_{n}_lines"] = sale()
            out[f"api_order_place_{n}_lines"] = place()
        # The newest 20 orders of the partner now all have n lines.
        for _ in range(20):
            place()
        lister = {"HTTP_AUTHORIZATION": _api(fx)["HTTP_AUTHORIZATION"]}
        api.get(f"{API_ORDERS}?limit=20", **lister)
        out[f"api_order_list_{n}_lines"] = _count(lambda: api.get(f"{API_ORDERS}?limit=20", **lister))
        admin = get_user_model().objects.filter(username="bench-admin").first() or \
            get_user_model().objects.create_superuser(username="bench-admin", password=uuid.uuid4().hex)
        staff = Client(HTTP_HOST="127.0.0.1")
        staff.force_login(admin)
        staff.get("/admin/orders/order/")
        out[f"admin_order_changelist_{n}_lines"] = _count(lambda: staff.get("/admin/orders/order/"))
    result = {name: {"queries": q, "status": s} for name, (q, s) in out.items()}
    for kind in KINDS:
        one, twenty = result[f"{kind}_1_lines"]["queries"], result[f"{kind}_20_lines"]["queries"]
        result[f"{kind}_constant"] = one == twenty
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
