"""Request and response examples for the OpenAPI schema of the order endpoints."""

from drf_spectacular.utils import OpenApiExample

LINE = {"id": 501, "line_no": 1, "sku": 12, "sku_code": "SKU000012", "name": "Linen shirt white M",
        "unit_price": "129.00", "qty": 2, "discount": "64.50", "line_total": "193.50", "warehouse": 3,
        "qty_shipped": 0, "qty_returned": 0, "refunded_amount": "0.00",
        "promotions": [{"promotion": 7, "code": "SHIRT2", "name": "第二件半价", "kind": "nth_item",
                        "amount": "64.50", "gift_qty": 0}]}
ORDER = {"id": 42, "number": "SO2611230000042", "channel": "mini_program", "partner": "",
         "external_id": "MP-1001",
         "status": "pending_payment", "fulfillment": "pickup", "store": 2, "store_code": "HZ001",
         "customer_name": "Li Lei", "customer_phone": "+8613800000000", "ship_city": None, "ship_address": "",
         "remark": "", "currency": "CNY", "subtotal": "258.00", "discount_total": "64.50",
         "cash_rounding": "0.00", "total": "193.50",
         "paid_total": "0.00", "refunded_total": "0.00", "pickup_code": "04711893", "payment_status": "unpaid",
         "overpayment_refunded": "0.00", "needs_transfer": False,
         "expires_at": "2026-11-23T18:30:00+08:00", "created_at": "2026-11-23T18:00:00+08:00",
         "updated_at": "2026-11-23T18:00:00+08:00", "paid_at": None, "handed_over_at": None, "version": 1,
         "promotion_discount": "64.50", "lines": [LINE]}
PAYMENT = {"id": 77, "number": "PY2611230000077", "tender": "sandbox", "amount": "193.50", "currency": "CNY",
           "status": "pending",
           "payment_code": "o2o-sandbox://pay?out_trade_no=PY2611230000077&total_fen=19350",
           "created_at": "2026-11-23T18:01:00+08:00", "captured_at": None}
SHIPMENT = {"id": 9, "number": "SH2611230000090", "order": 43, "order_number": "SO2611230000043",
            "warehouse": 1,
            "status": "shipped", "carrier": "SF Express", "tracking_number": "SF1234567890",
            "created_at": "2026-11-23T19:00:00+08:00", "updated_at": "2026-11-23T20:00:00+08:00",
            "shipped_at": "2026-11-23T20:00:00+08:00",
            "lines": [{"order_line": 510, "qty": 1}]}
RETURN = {"id": 5, "number": "RT2611240000100", "order": 42, "order_number": "SO2611230000042", "store": 3,
          "reason": "wrong size", "refund_total": "129.00", "cash_rounding": "0.00", "currency": "CNY",
          "refund_policy": "sandbox: refunded to the original account at store HZ002",
          "created_at": "2026-11-24T11:00:00+08:00", "updated_at": "2026-11-24T11:00:00+08:00",
          "lines": [{"order_line": 501, "qty": 1, "condition": "sellable", "refund_amount": "129.00"}]}
ORDER_DETAIL = {**ORDER, "payments": [PAYMENT], "shipments": [], "returns": []}
AVAILABILITY = {"sku": 12, "sku_code": "SKU000012", "store": 2, "available_in_store": 3,
                "available_for_pickup": 40, "available_to_ship": 40}


def ok(name: str, value, status: int = 200) -> OpenApiExample:
    return OpenApiExample(name, value=value, response_only=True, status_codes=[str(status)])


def request(name: str, value) -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=True)


ORDER_CREATE_PICKUP = request("pickup order", {
    "external_id": "MP-1001", "fulfillment": "pickup", "store": 2, "customer_name": "Li Lei",
    "customer_phone": "+8613800000000", "lines": [{"sku": 12, "qty": 2}]})
ORDER_CREATE_SHIP = request("shipped order", {
    "external_id": "WEB-88", "fulfillment": "ship_warehouse", "ship_city": 1, "ship_address": "1 Lake Road",
    "customer_name": "Han Meimei", "customer_phone": "+8613900000000", "lines": [{"sku": 12, "qty": 1}]})
ORDER_CREATE_MEMBER = request("member order with coupon, guide scene and points", {
    "external_id": "MP-1002", "fulfillment": "pickup", "store": 2,
    "member": {"wechat_openid": "oAbC123", "wechat_appid": "wx1234", "phone": "13800138000"},
    "coupon_code": "K7Q2M9XW4P", "scene": "HZ001-G1", "points": 500, "lines": [{"sku": 12, "qty": 2}]})
