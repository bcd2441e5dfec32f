"""The live OpenAPI schema, and schemathesis against it: every operation, valid and invalid inputs,
no 5xx and no answer that contradicts the schema (status, content type, body, headers)."""

import uuid
from decimal import Decimal

import pytest
import schemathesis
import yaml
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from members.models.coupons import CouponKind, CouponTemplate, CouponValidity
from members.services import coupons, members
from o2o.apiauth import partner_key_create, SCOPES
from integrations.models import WebhookDelivery
from integrations.webhooks import subscription_create
from o2o.wsgi import application
from orders import services
from orders.services import LineIn, ReturnLineIn
from payments.providers.sandbox import sandbox_notification
from stores.tests.factories import CityFactory

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
EXAMPLES = 12

# Loaded from the running application at collection time (the schema view needs no database).
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)


@pytest.fixture
def in_test_transaction(db):
    """Calls into the WSGI app must not close the test's connection (Django's test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(central, store_a, store_b, settings):
    """A key with every scope and room to spare, and one of each object, so that responses carry real data."""
    settings.API_RATE_LIMIT_PER_MINUTE = 100_000
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    skus = SkuFactory.create_batch(3)
    stock.stock_receive(warehouse=central, lines=[(s.id, 10_000) for s in skus])
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(s.id, 10_000) for s in skus])
    key, raw = partner_key_create(name="schema", channel="mini_program", scopes=SCOPES)
    pickup = services.order_place(channel="mini_program", fulfillment="pickup", store=store_a,
                                  lines=[LineIn(skus[0].id, 2)]).order
    payment = services.order_payment_start(order=pickup, tender="sandbox")
    headers, body = sandbox_notification(payment)
    services.order_payment_notify(provider="sandbox", headers=headers, body=body)
    services.pickup_handover(code=pickup.pickup_code, store=store_a)
    ret = services.return_create(order=pickup, store=store_b,
                                 lines=[ReturnLineIn(pickup.lines.first().pk, 1)])
    shipped = services.order_place(channel="mini_program", fulfillment="ship_warehouse",
                                   ship_city_id=CityFactory().pk,
                                   ship_address="1 Lake Road", lines=[LineIn(skus[1].id, 1)]).order
    payment = services.order_payment_start(order=shipped, tender="sandbox")
    headers, body = sandbox_notification(payment)
    services.order_payment_notify(provider="sandbox", headers=headers, body=body)
    shipment = services.shipment_create(order=shipped)
    member = members.member_register(phone="13800138000", channel="mini_program")
    template = CouponTemplate.objects.create(code="NEW20", name="20 off", kind=CouponKind.FIXED,
                                             amount=Decimal("20.00"), valid_days=30,
                                             validity=CouponValidity.DAYS_AFTER_ISSUE, claimable_online=True,
                                             per_member_limit=None)
    coupons.coupon_claim(template=template, member=member, channel="mini_program")
    sub = subscription_create(key=key, url="http://127.0.0.1/hook", events=["*"])
    WebhookDelivery.objects.create(subscription=sub, event_id="evt_1", topic="order.paid", body="{}",
                                   give_up_at=pickup.created_at)
    ids = {"orders": [pickup.pk, shipped.pk], "shipments": [shipment.pk], "returns": [ret.pk],
           "members": [member.pk], "catalog/skus": [s.pk for s in skus],
           "catalog/products": [s.product_id for s in skus],
           "catalog/categories": [skus[0].product.category_id],
           "stores": [store_a.pk, store_b.pk], "webhooks/subscriptions": [sub.pk]}
    return {"headers": {"Authorization": f"Bearer {raw}"}, "ids": ids, "skus": [s.pk for s in skus],
            "stores": [store_a.pk], "template": template.pk}


def steer(case, world) -> None:
    """Point some generated ids at real objects (every other example), so that more than 404s are checked.

    Only well-typed values are replaced; invalid ones stay invalid.
    """
    if isinstance(case.path_parameters, dict) and isinstance(case.path_parameters.get("id"), int):
        if case.path_parameters["id"] % 2 == 0:
            path = case.operation.path.removeprefix("/api/v1/")
            for prefix, ids in world["ids"].items():
                if path.startswith(prefix + "/{id}"):
                    case.path_parameters["id"] = ids[case.path_parameters["id"] // 2 % len(ids)]
    body = case.body
    if isinstance(body, dict):
        lines = body.get("lines")
        for line in lines if isinstance(lines, list) else []:
            if isinstance(line, dict) and isinstance(line.get("sku"), int) and line["sku"] % 2 == 0:
                line["sku"] = world["skus"][line["sku"] // 2 % len(world["skus"])]
        if isinstance(body.get("store"), int) and body["store"] % 2 == 0:
            body["store"] = world["stores"][0]
        if isinstance(body.get("template"), int) and body["template"] % 2 == 0:
            body["template"] = world["template"]
    headers = case.headers if isinstance(case.headers, dict) else None
    key = headers.get("Idempotency-Key") if headers else None
    if isinstance(key,
                  str) and 0 < len(key) <= 200 and key.isascii() and key.isprintable() and " " not in key:
        headers["Idempotency-Key"] = f"{key}-{uuid.uuid4().hex[:8]}"  # still valid, no accidental reuse


@pytest.mark.usefixtures("in_test_transaction")
@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                     suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(case, world):
    steer(case, world)
    case.call_and_validate(headers=world["headers"], checks=CHECKS)


@pytest.mark.django_db
def test_schema_is_complete():
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    operations = [(path, method, op) for path, item in document["paths"].items()
                  for method, op in item.items() if method in {"get", "post", "delete"}]

    assert len(operations) >= 40
    for path, method, op in operations:
        codes = set(op["responses"])
        assert any(c.startswith("2") for c in codes), (path, method)
        assert {"401", "403", "429"} <= codes or path.endswith("/notify/{provider}/"), (path, method, codes)
        for code, answer in op["responses"].items():
            if code.startswith("4"):
                content = answer["content"].get("application/json") or answer["content"]["text/plain"]
                assert content.get("examples"), (path, method, code)
        if method == "post":
            assert op.get("requestBody") is None or op["requestBody"]["content"]["application/json"].get(
                "examples") or path.endswith("/pack/"), (path, method)
        if method != "delete":
            assert any(c.startswith("2") and op["responses"][c].get("content", {}).get("application/json", {})
                       .get("examples") for c in codes), (path, method)
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


@pytest.mark.django_db
def test_swagger_ui_is_served():
    response = APIClient().get("/api/v1/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
