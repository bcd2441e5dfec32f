"""OpenAPI links between order operations (drf-spectacular post-processing hook).

They say where a response leads: a placed order to its payment, changes and refunds; a payment,
return or cancellation back to the order and its refunds; a refund to its order.  Generated clients
and stateful fuzzers follow them.
"""

from __future__ import annotations

ORDERS, REFUNDS = "/api/v1/orders/", "/api/v1/refunds/"
ORDER, ORDER_PAYMENTS = f"{ORDERS}{{id}}/", f"{ORDERS}{{id}}/payments/"
ORDER_RETURNS, ORDER_CANCEL = f"{ORDERS}{{id}}/returns/", f"{ORDERS}{{id}}/cancel/"
ORDER_SHIPMENTS = f"{ORDERS}{{id}}/shipments/"


def _link(operation_id: str, source: str, description: str) -> dict:
    return {"operationId": operation_id, "parameters": {"id": source}, "description": description}


def _order_links(source: str) -> dict:
    """Where an order leads, its id taken from ``source`` (a runtime expression)."""
    return {
        "GetOrder": _link("orders_retrieve", source, "Read the order again (its ETag is the version)."),
        "StartPayment": _link("orders_payments_create", source, "Pay what is still due at a provider."),
        "ChangeOrder": _link("orders_partial_update", source, "Change it before fulfilment (If-Match)."),
        "CancelOrder": _link("orders_cancel_create", source, "Cancel it before the goods leave."),
        "ListRefunds": _link("orders_refunds_list", source, "The refunds of its payments."),
    }


def _back_to_order(source: str) -> dict:
    return {"GetOrder": _link("orders_retrieve", source, "The order, with its new version."),
            "ListRefunds": _link("orders_refunds_list", source, "The refunds this made.")}


LINKS: dict[tuple[str, str, str], dict] = {
    (ORDERS, "post", "201"): _order_links("$response.body#/id"),
    (ORDERS, "post", "200"): _order_links("$response.body#/id"),
    (ORDER, "get", "200"): _order_links("$response.body#/id"),
    (ORDER, "patch", "200"): _back_to_order("$response.body#/id"),
    (ORDER_PAYMENTS, "post", "201"): _back_to_order("$request.path.id"),
    (ORDER_CANCEL, "post", "200"): _back_to_order("$response.body#/id"),
    (ORDER_RETURNS, "post", "201"): _back_to_order("$response.body#/order"),
    (ORDER_SHIPMENTS, "post", "201"): {
        "PackShipment": _link("shipments_pack_create", "$response.body#/id", "Mark the parcel packed."),
        "ShipShipment": _link("shipments_ship_create", "$response.body#/id", "Hand it to the carrier."),
        "GetOrder": _link("orders_retrieve", "$response.body#/order", "The order, with its new version.")},
    (f"{REFUNDS}{{id}}/", "get", "200"): {
        "GetOrder": _link("orders_retrieve", "$response.body#/order", "The order the refund belongs to.")},
}


def schema_links(result, generator, request, public):
    for (path, method, status), links in LINKS.items():
        response = result.get("paths", {}).get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is not None:
            response["links"] = links
    return result
