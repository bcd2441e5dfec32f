"""Settlement by cost bearer adds up: what the promotions took off a day's orders, net of its returns
and cancellations, lands on the statements by bearer (head office, e-commerce, the store, a supplier)
and by party (the order's store; the e-commerce department for warehouse orders), to the fen; the
audit recomputes it from the orders' explanation rows and catches a planted difference."""

import io
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Sum
from django.urls import reverse

from orders import services as order_services
from orders.models import Channel, Fulfillment, OrderLinePromotion
from orders.services import LineIn, ReturnLineIn, TenderIn
from promotions.tests.factories import promotion
from settlement import selectors
from settlement.models import LedgerPosting, PromotionCostLine, SettlementStatement
from settlement.tests.scenario import complete_provider_refunds, pay_online, shift_days, shop
from settlement.tests.test_settlement import audit_clean, settle, statement, today

pytestmark = pytest.mark.django_db
D = Decimal


def promotions(s):
    """Second shirt half price (the store bears it), coats at 250 (the supplier), a cap free with a coat
    (head office), and 满300减30 online only (e-commerce)."""
    promotion(code="SHIRT2", name="衬衫第二件半价", kind="nth_item", nth=2, percent=D("50"), skus=[s["shirt"]],
              bearer="store", priority=10)
    promotion(code="COAT", name="大衣特价", kind="special_price", price=D("250.00"), skus=[s["coat"]],
              bearer="supplier")
    promotion(code="CAP", name="买大衣送帽", kind="gift", buy_qty=1, gift_sku=s["cap"], gift_qty=1,
              skus=[s["coat"]], bearer="hq")
    promotion(code="M300", name="线上满300减30", kind="threshold_off", steps="300:30", bearer="ecommerce",
              channels=["web", "mini_program"])


def promoted_day(s) -> dict:
    a, b, c = s["a"], s["b"], s["c"]
    shirt, coat, cap = s["shirt"], s["coat"], s["cap"]
    out = {}
    # A, counter: shirts 200 − 50 (store), coat 300 − 50 (supplier), the cap 33.33 free (head office): 400.
    out["counter"] = order_services.pos_sale_create(
        store=a, client_uuid=uuid.uuid4(), actor=s["clerk_a"],
        lines=[LineIn(shirt.id, 2), LineIn(coat.id, 1), LineIn(cap.id, 1)],
        tenders=[TenderIn("cash", D("400.00"))]).order
    # B, mini-program pickup: shirt 100, coat 250 (−50 supplier), cap free (−33.33 head office);
    # 满300减30 on 350 (−30 e-commerce: 8.57 on the shirt, 21.43 on the coat): 320.
    pickup = order_services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP, store=b,
                                        external_id="MP-P1", lines=[LineIn(shirt.id, 1), LineIn(coat.id, 1),
                                                                    LineIn(cap.id, 1)]).order
    pay_online(pickup)
    order_services.pickup_handover(code=pickup.pickup_code, store=b)
    out["pickup"] = pickup
    # No store, web, shipped from the warehouse: shirts 150 (−50 store), coat 250 (−50 supplier), cap free
    # (−33.33 head office), 满300减30 (−30 e-commerce: 11.25 on the shirts, 18.75 on the coat): 370.
    shipped = order_services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.SHIP_WAREHOUSE,
                                         external_id="W-P1", ship_city_id=a.city_id,
                                         lines=[LineIn(shirt.id, 2), LineIn(coat.id, 1), LineIn(cap.id, 1)]).order
    pay_online(shipped)
    out["shipped"] = shipped
    # C, web pickup of two shirts (−50 store), paid and cancelled: nothing stays.
    cancelled = order_services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=c,
                                           external_id="W-P2", lines=[LineIn(shirt.id, 2)]).order
    pay_online(cancelled)
    order_services.order_cancel(order=cancelled, reason="changed their mind")
    out["cancelled"] = cancelled
    # Returns: one of A's shirts (its half of the 50: −25 store); B's coat, the cap kept (−50 supplier,
    # −21.43 e-commerce; the cap's value is withheld from the refund, the gift's cost stays).
    order_services.return_create(order=out["counter"], store=a, actor=s["clerk_a"],
                                 lines=[ReturnLineIn(out["counter"].lines.get(sku=shirt).pk, 1)])
    order_services.return_create(order=pickup, store=b, actor=s["clerk_b"],
                                 lines=[ReturnLineIn(pickup.lines.get(sku=coat).pk, 1)])
    complete_provider_refunds()
    return out


def test_settlement_by_cost_bearer_adds_up(admin_client):
    s = shop()
    promotions(s)
    out = promoted_day(s)
    assert (out["counter"].total, out["pickup"].total, out["shipped"].total) == (D("400.00"), D("320.00"),
                                                                                 D("370.00"))

    [day] = settle()

    # By hand, per party and bearer.
    expected = {
        (s["a"].pk, "hq"): D("33.33"), (s["a"].pk, "store"): D("25.00"), (s["a"].pk, "supplier"): D("50.00"),
        (s["b"].pk, "ecommerce"): D("8.57"), (s["b"].pk, "hq"): D("33.33"), (s["b"].pk, "supplier"): D("0.00"),
        (s["c"].pk, "store"): D("0.00"),
        (None, "ecommerce"): D("30.00"), (None, "hq"): D("33.33"), (None, "store"): D("50.00"),
        (None, "supplier"): D("50.00"),
    }
    got = {(r["store_id"], r["bearer"]): r["amount"] for r in selectors.day_promotion_costs(day)}
    assert got == expected
    counter = statement(s["a"], "pos")
    assert (counter.promotion_discount, counter.promotion_cost_hq, counter.promotion_cost_ecommerce,
            counter.promotion_cost_store, counter.promotion_cost_supplier) == (
        D("108.33"), D("33.33"), D("0.00"), D("25.00"), D("50.00"))
    online_b = statement(s["b"], "mini_program")
    assert (online_b.promotion_discount, online_b.promotion_cost_ecommerce, online_b.promotion_cost_hq) == (
        D("41.90"), D("8.57"), D("33.33"))
    warehouse = statement(None, "web")
    assert (warehouse.promotion_discount, warehouse.promotion_cost_store) == (D("163.33"), D("50.00"))
    assert statement(s["c"], "web").promotion_discount == D("0.00")

    # Σ by bearer = Σ explanation rows of the day's orders − what the returns and the cancellation reversed.
    explained = OrderLinePromotion.objects.aggregate(x=Sum("amount"))["x"]
    assert explained == D("133.33") + D("113.33") + D("163.33") + D("50.00")
    reversed_ = D("25.00") + D("50.00") + D("21.43") + D("50.00")
    by_bearer = {b: sum((v for (_, bb), v in expected.items() if bb == b), D("0"))
                 for b in ("hq", "ecommerce", "store", "supplier")}
    settled = SettlementStatement.objects.filter(business_day=day.day).aggregate(
        total=Sum("promotion_discount"), hq=Sum("promotion_cost_hq"), ecommerce=Sum("promotion_cost_ecommerce"),
        store=Sum("promotion_cost_store"), supplier=Sum("promotion_cost_supplier"))
    assert settled == {"total": explained - reversed_, **by_bearer} == {
        "total": D("313.56"), "hq": D("99.99"), "ecommerce": D("38.57"), "store": D("75.00"),
        "supplier": D("100.00")}
    assert PromotionCostLine.objects.aggregate(x=Sum("amount"))["x"] == explained - reversed_
    # The party ledger: each party is made whole by the bearers of the cost on its orders (its own
    # store-borne promotions stay with it; e-commerce's own on its warehouse orders too).
    posted = {(p.party.kind, p.party.store_id): p.amount
              for p in LedgerPosting.objects.filter(day=day, account="promotion").select_related("party")}
    assert posted == {("store", s["a"].pk): D("83.33"), ("store", s["b"].pk): D("41.90"),
                      ("ecommerce", None): D("83.33") - D("8.57"), ("hq", None): D("-99.99"),
                      ("supplier", None): D("-100.00")}
    audit_clean()

    # HQ reads it on the day's page.
    page = admin_client.get(reverse("admin:settlement_settlementday_change", args=[day.pk])).content.decode()
    assert page.count("<td>33.33</td>") == 3 and "<td>8.57</td>" in page


def test_the_audit_catches_a_promotion_cost_that_does_not_match_the_orders():
    s = shop()
    promotions(s)
    promoted_day(s)
    [day] = settle()
    audit_clean()

    # A promotion row of a settled order changed afterwards: the day no longer matches its orders.
    row = OrderLinePromotion.objects.filter(code="COAT", line__order__channel="pos").get()
    OrderLinePromotion.objects.filter(pk=row.pk).update(amount=row.amount + D("1.00"))
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=out)
    report = out.getvalue()
    assert "settled promotion cost equals the promotions" in report
    assert f"store {s['a'].pk} bearer supplier: the orders' promotions 51.00 but settled 50.00" in report
    OrderLinePromotion.objects.filter(pk=row.pk).update(amount=row.amount)
    audit_clean()

    # A stray cost line slipped into a closed statement: the statement no longer equals its lines.
    counter = statement(s["a"], "pos")
    with connection.cursor() as cur:
        cur.execute("""INSERT INTO settlement_promotioncostline (statement_id, kind, order_id, order_line_id,
                           line_promotion_id, promotion_id, bearer, store_id, event_at, adjustment, amount)
                       VALUES (%s, 'cancel', %s, %s, %s, %s, 'hq', %s, %s, false, -1.00)""",
                    [counter.pk, row.line.order_id, row.line_id, row.pk, row.promotion_id, s["a"].pk,
                     day.window_start + timedelta(hours=1)])
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=out)
    assert "promotion cost differs from its lines" in out.getvalue()


def test_a_return_after_close_reverses_the_promotion_cost_the_next_day():
    s = shop()
    promotions(s)
    sale = order_services.pos_sale_create(store=s["a"], client_uuid=uuid.uuid4(), actor=s["clerk_a"],
                                          lines=[LineIn(s["shirt"].id, 2)], tenders=[TenderIn("cash", D("150.00"))]
                                          ).order
    shift_days(1)
    [yesterday] = settle(today() - timedelta(days=1))
    assert statement(s["a"], "pos", yesterday.day).promotion_cost_store == D("50.00")

    order_services.return_create(order=sale, store=s["b"], actor=s["clerk_b"],
                                 lines=[ReturnLineIn(sale.lines.get().pk, 2)])
    [day] = settle()

    back = statement(s["a"], "pos", day.day)  # against the original sale's store and channel
    assert (back.promotion_discount, back.promotion_cost_store) == (D("-50.00"), D("-50.00"))
    assert statement(s["a"], "pos", yesterday.day).promotion_cost_store == D("50.00")
    audit_clean()


def test_a_promoted_sale_committed_after_its_day_closed_is_an_adjustment_of_the_next_day():
    s = shop()
    promotions(s)
    shift_days(1)
    [yesterday] = settle(today() - timedelta(days=1))
    # A sale whose transaction was still open at the cut-off commits now, stamped yesterday.
    late = order_services.pos_sale_create(store=s["a"], client_uuid=uuid.uuid4(), lines=[LineIn(s["coat"].id, 1)],
                                          tenders=[TenderIn("cash", D("250.00"))]).order
    with connection.cursor() as cur:
        cur.execute("UPDATE orders_order SET paid_at = %s WHERE id = %s",
                    [yesterday.window_end - timedelta(seconds=1), late.pk])
        cur.execute("UPDATE payments_payment SET captured_at = %s WHERE reference = %s",
                    [yesterday.window_end - timedelta(seconds=1), late.number])

    [day] = settle()

    counter = statement(s["a"], "pos", day.day)
    assert (counter.promotion_discount, counter.promotion_cost_supplier) == (D("50.00"), D("50.00"))
    line = PromotionCostLine.objects.get()
    assert (line.adjustment, line.statement_id, line.kind) == (True, counter.pk, "sale")
    audit_clean()
    settle()  # re-running the closed day settles nothing twice
    assert PromotionCostLine.objects.count() == 1
