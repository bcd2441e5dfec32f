"""The OpenAPI schema links order → payments → refunds, and states the rules the API enforces."""

import pytest
import yaml
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def document():
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def operation_ids(document):
    return {op["operationId"]: (path, op) for path, item in document["paths"].items()
            for method, op in item.items() if isinstance(op, dict) and "operationId" in op}


def test_links_lead_from_an_order_to_its_payment_and_refunds_and_back(document):
    known = operation_ids(document)
    placed = document["paths"]["/api/v1/orders/"]["post"]["responses"]["201"]["links"]
    payment = document["paths"]["/api/v1/orders/{id}/payments/"]["post"]["responses"]["201"]["links"]
    refund = document["paths"]["/api/v1/refunds/{id}/"]["get"]["responses"]["200"]["links"]

    assert placed["StartPayment"] == {"operationId": "orders_payments_create",
                                      "parameters": {"id": "$response.body#/id"},
                                      "description": placed["StartPayment"]["description"]}
    assert payment["ListRefunds"]["operationId"] == "orders_refunds_list"
    assert payment["ListRefunds"]["parameters"] == {"id": "$request.path.id"}
    assert refund["GetOrder"]["parameters"] == {"id": "$response.body#/order"}
    every_link = [link for item in document["paths"].values() for op in item.values() if isinstance(op, dict)
                  for answer in op.get("responses", {}).values() for link in answer.get("links", {}).values()]
    assert len(every_link) >= 20
    for link in every_link:
        path, op = known[link["operationId"]]  # every link names a real operation…
        names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert set(link["parameters"]) <= names, (link, path)  # …and its real path parameters


def test_enforced_rules_are_stated(document):
    refunds = {p["name"]: p["schema"] for p in document["paths"]["/api/v1/refunds/"]["get"]["parameters"]}
    detail = document["paths"]["/api/v1/orders/{id}/"]
    patch_body = detail["patch"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    order_out = document["components"]["schemas"]["OrderDetailOut"]["properties"]

    assert refunds["limit"] == {"type": "integer", "minimum": 1, "maximum": 200}
    assert refunds["order"]["type"] == "integer" and refunds["order"]["minimum"] == 1
    assert refunds["updated_since"]["format"] == "date-time"
    assert set(refunds["status"]["enum"]) == {"pending", "succeeded", "failed"}
    assert detail["get"]["parameters"][0]["schema"]["minimum"] == 1
    assert document["components"]["schemas"][patch_body]["properties"]["remark"]["maxLength"] == 300
    if_match = [p for p in detail["patch"]["parameters"] if p["name"] == "If-Match"]
    assert if_match and if_match[0]["required"] is True
    assert "428" in detail["patch"]["responses"] and "412" in detail["patch"]["responses"]
    status = order_out["payment_status"]
    enum = status.get("enum") or document["components"]["schemas"][
        status["allOf"][0]["$ref"].split("/")[-1]]["enum"]
    assert set(enum) == {"unpaid", "partially_paid", "paid", "partially_refunded", "refunded"}
