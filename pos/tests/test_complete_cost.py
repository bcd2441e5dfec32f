"""The sale page's complete request as one lean transaction: a 5-line sale with a member (points
earned) paid by card and cash, the basket filled through the page's own scan and member requests.

The statements are pinned: the order inserted once in its final state, lines, payments and the
outbox messages as multi-row inserts, the rows nobody reads back joined to the last statement, and
that last statement the one conditional UPDATE of the stock levels; nothing after the commit."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from inventory.models import StockLevel, StockMove
from members.models import MemberSpend, PointsLot
from o2o.models import OutboxMessage
from orders.models import Order, OrderEvent, Status
from payments.models import CashTendered, Payment
from pos import parking

from .conftest import htmx

pytestmark = pytest.mark.django_db

# Statements of the complete request.  Before the sale: the user, the staff profile, their stores
# with the store's row (the POS page's login; the session itself is in Redis), the one look-up of the sale's
# client id, and the lock-free read of the basket's availability (a short basket is refused there,
# before any transaction or lock).
# The sale (14): the shift FOR SHARE, the member locked, the SKUs, the promotions, the document
# numbers, the member's guide, the order, its payments, the return window, the points programme,
# category paths and rules, the points lot, then the stock UPDATE carrying the order lines and
# event, the spend, the points entry and balance, the cash handed over, the emptied basket and the
# outbox rows.
REQUEST_BEFORE_SALE = 5
SALE_STATEMENTS = 14


@pytest.fixture
def five_skus(store_a):
    skus = [SkuFactory(list_price=Decimal("49.90")) for _ in range(5)]
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(s.id, 10) for s in skus])
    return skus


def fill(client, skus, member) -> str:
    for sku in skus:
        assert htmx(client, reverse("pos:sale_scan"), {"code": sku.barcode}).status_code == 200
    page = htmx(client, reverse("pos:sale_member"), {"phone": member.phone})
    assert page.status_code == 200
    return re.search(r'name="client_uuid" value="([^"]+)"', page.content.decode()).group(1)


def complete(client, uid):
    return htmx(client, reverse("pos:sale_complete"), {"client_uuid": uid, "card_amount": "49.50",
                                                       "card_reference": f"slip-{uid}", "cash_tendered": "200"})


def test_the_complete_request_is_one_transaction_of_pinned_statements_with_the_stock_taken_last(
        client_a, clerk_a, five_skus, shift_a, member):
    uid = fill(client_a, five_skus, member)
    frozen_before = member.points_frozen
    with CaptureQueriesContext(connection) as ctx:
        response = complete(client_a, uid)

    order = Order.objects.get(client_uuid=uid)
    assert response.status_code == 200 and response["HX-Redirect"] == reverse("pos:receipt", args=[order.number])
    sql = [q["sql"] for q in ctx.captured_queries]
    begin = next(i for i, s in enumerate(sql) if s.startswith("SAVEPOINT"))
    assert begin == REQUEST_BEFORE_SALE
    # One transaction, and nothing after it: no basket write, no session write.
    assert sql[-1].startswith("RELEASE SAVEPOINT") and sum(s.startswith("SAVEPOINT") for s in sql) == 1
    sale = sql[begin + 1:-1]
    assert len(sale) == SALE_STATEMENTS, "\n".join(s[:160] for s in sale)
    assert len(sql) == REQUEST_BEFORE_SALE + SALE_STATEMENTS + 2
    last = sale[-1]
    assert last.startswith("WITH") and "UPDATE inventory_stocklevel" in last
    assert "l.on_hand - l.reserved >= x.qty" in last and "FOR UPDATE OF k" in last
    assert not any("inventory_stocklevel" in s for s in sale[:-1])  # no stock read or lock before it
    for table in ("orders_orderline", "orders_orderevent", "members_memberspend", "members_pointsentry", "payments_cashtendered",
                  "pos_posbasket", "o2o_outboxmessage", "inventory_stockmove"):
        assert f'INSERT INTO "{table}"' in last or f"INSERT INTO {table}" in last, table
    assert "UPDATE members_member m SET points_available" in last
    assert not any("django_session" in s and not s.startswith("SELECT") for s in sql)
    # The order is inserted once in its final state and read (by its client id) once.
    assert not any(s.startswith('UPDATE "orders_order"') for s in sql)
    assert sum(s.startswith('SELECT "orders_order"') for s in sql) == 1
    assert sum('FROM "members_member"' in s for s in sql) == 1
    assert not any(s.startswith("UPDATE") for s in sale[:-1])  # every update rides on the last statement

    # Every behaviour of the sale is there.
    assert order.status == Status.COMPLETED and order.version == 2 and order.member_id == member.pk
    assert order.total == order.paid_total == Decimal("249.50") and order.paid_at and order.handed_over_at
    assert order.lines.count() == 5 and all(ln.qty_shipped == 1 for ln in order.lines.all())
    assert list(OrderEvent.objects.filter(order=order).values_list("from_status", "to_status")) == [
        ("", Status.COMPLETED)]
    payments = {p.tender: p for p in Payment.objects.filter(reference=order.number)}
    assert {t: (p.amount, p.status) for t, p in payments.items()} == {
        "cash": (Decimal("200.00"), "captured"), "unionpay_card": (Decimal("49.50"), "captured")}
    assert payments["unionpay_card"].provider_txn_id == f"slip-{uid}"
    assert CashTendered.objects.get(payment=payments["cash"]).tendered == Decimal("200.00")
    assert sorted(StockLevel.objects.filter(sku__in=five_skus, warehouse=shift_a.store.warehouse)
                  .values_list("on_hand", flat=True)) == [9] * 5
    assert StockMove.objects.filter(reference=order.number, qty=-1, reason="sale", actor=clerk_a).count() == 5
    lot = PointsLot.objects.get(order_number=order.number)
    member.refresh_from_db()
    assert lot.status == "frozen" and lot.amount == 249 and member.points_frozen == frozen_before + 249
    assert lot.entries.get().frozen_delta == 249
    assert MemberSpend.objects.get(order_number=order.number).amount == Decimal("249.50")
    topics = list(OutboxMessage.objects.filter(created_at__gte=order.created_at).order_by("id")
                  .values_list("topic", flat=True))
    assert topics == ["stock.changed", "payment.captured", "payment.captured", "order.paid",
                      "member.points_changed"]
    # The clerk's basket was emptied with the sale; the next page shows a new, empty sale.
    assert parking.basket_open_get(store=shift_a.store, clerk=clerk_a).lines == ()
    page = client_a.get(reverse("pos:sale")).content.decode()
    new_uid = re.search(r'name="client_uuid" value="([^"]+)"', page).group(1)
    assert new_uid != uid and five_skus[0].name not in page


def test_a_double_submit_after_the_sale_shows_its_receipt(client_a, five_skus, shift_a, member):
    uid = fill(client_a, five_skus, member)
    complete(client_a, uid)
    again = complete(client_a, uid)
    order = Order.objects.get(client_uuid=uid)
    assert again["HX-Redirect"] == reverse("pos:receipt", args=[order.number])
    assert Order.objects.count() == 1 and Payment.objects.filter(reference=order.number).count() == 2


def test_a_line_short_at_the_last_statement_refuses_the_sale_and_leaves_nothing(client_a, clerk_a, five_skus,
                                                                              shift_a, member):
    uid = fill(client_a, five_skus, member)
    # Sold elsewhere after the scan: the conditional update finds 0 of the 1 wanted.
    stock.stock_adjust(warehouse=shift_a.store.warehouse, sku_id=five_skus[3].id, delta=-10, actor=clerk_a,
                       note="broken")
    outbox_before = OutboxMessage.objects.count()

    response = complete(client_a, uid)

    assert response.status_code == 422
    assert "insufficient_stock" in response.content.decode() or "库存" in response.content.decode()
    assert not Order.objects.exists() and not Payment.objects.exists() and not PointsLot.objects.filter(
        order_number__startswith="PS").exists()
    assert OutboxMessage.objects.count() == outbox_before
    assert not StockMove.objects.filter(reason="sale").exists()
    assert sorted(StockLevel.objects.filter(sku__in=five_skus).values_list("on_hand", flat=True)) == [0] + [10] * 4
    # The basket is kept for the clerk to fix.
    assert len(parking.basket_open_get(store=shift_a.store, clerk=clerk_a).lines) == 5


def test_a_card_slip_already_recorded_refuses_the_sale_without_a_savepoint_and_leaves_nothing(
        client_a, clerk_a, five_skus, shift_a, member):
    first = fill(client_a, five_skus[:1], member)
    assert htmx(client_a, reverse("pos:sale_complete"), {
        "client_uuid": first, "card_amount": "49.90", "card_reference": "slip-42"})["HX-Redirect"]
    second = fill(client_a, five_skus[1:3], member)
    outbox_before = OutboxMessage.objects.count()

    response = htmx(client_a, reverse("pos:sale_complete"), {
        "client_uuid": second, "card_amount": "49.80", "card_reference": "slip-42", "cash_tendered": "50"})

    assert response.status_code == 422
    assert Order.objects.count() == 1 and Payment.objects.count() == 1
    assert OutboxMessage.objects.count() == outbox_before
    assert sorted(StockLevel.objects.filter(sku__in=five_skus[1:3]).values_list("on_hand", flat=True)) == [10, 10]
    assert len(parking.basket_open_get(store=shift_a.store, clerk=clerk_a).lines) == 2
