"""The sync of offline sales through its face, POST /pos/sync/: exactly once under repeats and
concurrent posts, conflicts recorded as business events, the audits clean (and failing when planted)."""

import io
import json
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from catalog.models import Sku
from inventory.models import StockLevel, StockMove
from orders.models import Order
from payments import shifts
from payments.models import CashTendered, Payment
from pos.models import OfflineConflict, OfflineSale
from tests.concurrency import run_at_once

from .conftest import login

D = Decimal
URL = "/pos/sync/"


def offline_sale(store, seq, lines, *, till="T1", tenders=None, key=None):
    """One sale as the till queues it: lines are (sku, qty, unit price shown)."""
    total = sum((D(price) * qty for _, qty, price in lines), D("0"))
    return {"client_uuid": str(key or uuid.uuid4()), "till": till, "sequence": seq,
            "receipt_number": f"{store.code}-{till}-{seq:06d}", "sold_at": "2026-12-04T10:15:00+08:00",
            "lines": [{"sku_id": sku.pk, "qty": qty, "unit_price": str(price)} for sku, qty, price in lines],
            "tenders": tenders or [{"tender": "cash", "amount": f"{total:.2f}", "tendered": f"{total:.2f}"}]}


def post(client, sales):
    return client.post(URL, json.dumps({"sales": sales}), content_type="application/json")


def on_hand(store, sku):
    return StockLevel.objects.get(warehouse=store.warehouse, sku=sku, bucket="sellable").on_hand


def audit_clean():
    call_command("audit_ledgers", stdout=io.StringIO())


def audit_fails(match):
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=out, stderr=out)
    assert match in out.getvalue()


@pytest.mark.django_db
def test_a_batch_is_recorded_once_in_the_open_shift_and_a_repeat_returns_the_same_orders(
        store_a, stocked, clerk_a, shift_a):
    shirt, jeans = stocked
    client = login(clerk_a)
    sales = [offline_sale(store_a, 1, [(shirt, 2, "99.00")]),
             offline_sale(store_a, 2, [(jeans, 1, "249.00"), (shirt, 1, "99.00")],
                          tenders=[{"tender": "cash", "amount": "48.00", "tendered": "50.00"},
                                   {"tender": "card", "amount": "300.00", "reference": "SLIP-0001"}])]
    first = post(client, sales)
    assert first.status_code == 200, first.content
    results = first.json()["results"]
    assert [r["status"] for r in results] == ["recorded", "recorded"]
    again = post(client, sales).json()["results"]
    assert [r["status"] for r in again] == ["already_recorded", "already_recorded"]
    assert [r["order_number"] for r in again] == [r["order_number"] for r in results]
    orders = Order.objects.filter(client_uuid__in=[s["client_uuid"] for s in sales])
    assert orders.count() == 2 and OfflineSale.objects.count() == 2
    assert sorted(o.total for o in orders) == [D("198.00"), D("348.00")]
    assert (on_hand(store_a, shirt), on_hand(store_a, jeans)) == (2, 2)  # 5 − 3 shirts, 3 − 1 jeans, once
    assert StockMove.objects.filter(reason="sale", reference__in=[o.number for o in orders]).count() == 3
    # The shift's expected cash holds both cash parts; the card slip is a card payment.
    assert shifts.shift_expected_cash(shift_a) == D("200.00") + D("198.00") + D("48.00")
    card = Payment.objects.get(tender="unionpay_card", reference=results[1]["order_number"])
    assert card.provider_txn_id == "SLIP-0001"
    assert CashTendered.objects.get(payment__reference=results[1]["order_number"]).change == D("2.00")
    sale = OfflineSale.objects.get(client_uuid=sales[0]["client_uuid"])
    assert sale.receipt_number == "HZ001-T1-000001" and sale.order.number == results[0]["order_number"]
    assert not OfflineConflict.objects.exists()
    audit_clean()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_posts_of_the_same_batch_record_each_sale_once(store_a, stocked, clerk_a, shift_a):
    shirt, jeans = stocked
    sales = [offline_sale(store_a, n, [(shirt, 1, "99.00")]) for n in (1, 2, 3)]
    sales.append(offline_sale(store_a, 4, [(jeans, 1, "249.00")]))
    clients = [login(clerk_a), login(clerk_a)]
    outcomes = run_at_once([lambda c=c: post(c, sales) for c in clients])
    assert all(getattr(o, "status_code", None) == 200 for o in outcomes), outcomes
    statuses = sorted(r["status"] for o in outcomes for r in o.json()["results"])
    assert statuses == ["already_recorded"] * 4 + ["recorded"] * 4
    numbers = [[r["order_number"] for r in o.json()["results"]] for o in outcomes]
    assert numbers[0] == numbers[1]
    assert Order.objects.filter(client_uuid__in=[s["client_uuid"] for s in sales]).count() == 4
    assert (on_hand(store_a, shirt), on_hand(store_a, jeans)) == (2, 2)
    assert shifts.shift_expected_cash(shift_a) == D("200.00") + D("546.00")
    audit_clean()


@pytest.mark.django_db
def test_an_oversold_offline_sale_is_recorded_with_a_discrepancy_and_a_task_and_the_audit_stays_clean(
        store_a, stocked, clerk_a, shift_a):
    shirt, jeans = stocked  # 3 jeans on the books
    response = post(login(clerk_a), [offline_sale(store_a, 7, [(jeans, 5, "249.00")])])
    result = response.json()["results"][0]
    assert result["status"] == "recorded" and result["conflicts"] == ["stock_short"]
    order = Order.objects.get(number=result["order_number"])
    assert order.total == D("1245.00")
    assert on_hand(store_a, jeans) == 0
    conflict = OfflineConflict.objects.get()
    assert (conflict.kind, conflict.status, conflict.sku, conflict.qty, conflict.qty_short) == (
        "stock_short", "open", jeans, 5, 2)
    booked = StockMove.objects.get(reason="adjustment", reference="HZ001-T1-000007")
    assert booked.qty == 2 and "awaiting count" in booked.note
    assert StockMove.objects.get(reason="sale", reference=order.number).qty == -5
    audit_clean()


@pytest.mark.django_db
def test_an_oversell_does_not_take_stock_reserved_for_online_orders(store_a, stocked, clerk_a, shift_a):
    from inventory import services as stock
    shirt, _ = stocked
    stock.stock_reserve(warehouse=store_a.warehouse, lines=[(shirt.pk, 4)], reference="WEB-1")
    result = post(login(clerk_a), [offline_sale(store_a, 1, [(shirt, 3, "99.00")])]).json()["results"][0]
    assert result["conflicts"] == ["stock_short"]
    level = StockLevel.objects.get(warehouse=store_a.warehouse, sku=shirt, bucket="sellable")
    assert (level.on_hand, level.reserved) == (4, 4)  # 5 + 2 booked in − 3 sold; the 4 reserved stay
    assert OfflineConflict.objects.get().qty_short == 2
    audit_clean()


@pytest.mark.django_db
def test_a_price_changed_while_offline_keeps_the_price_paid_and_records_the_difference(
        store_a, stocked, clerk_a, shift_a):
    shirt, jeans = stocked
    Sku.objects.filter(pk=shirt.pk).update(list_price=D("109.00"))
    result = post(login(clerk_a), [offline_sale(store_a, 3, [(shirt, 2, "99.00"), (jeans, 1, "249.00")])]
                  ).json()["results"][0]
    assert result["status"] == "recorded" and result["conflicts"] == ["price_changed"]
    order = Order.objects.get(number=result["order_number"])
    assert order.total == D("447.00")  # what the customer paid
    conflict = OfflineConflict.objects.get()
    assert (conflict.sku, conflict.qty, conflict.paid_amount, conflict.server_amount) == (
        shirt, 2, D("198.00"), D("218.00"))
    sale = OfflineSale.objects.get()
    assert (sale.paid_total, sale.server_total, sale.price_difference) == (D("447.00"), D("467.00"), D("20.00"))
    audit_clean()


@pytest.mark.django_db
def test_a_sale_the_server_cannot_take_is_rejected_with_its_code_and_changes_nothing(
        store_a, stocked, clerk_a, shift_a):
    shirt, _ = stocked
    client = login(clerk_a)
    good = offline_sale(store_a, 2, [(shirt, 1, "99.00")])
    wallet = offline_sale(store_a, 1, [(shirt, 1, "99.00")], tenders=[{"tender": "wallet", "amount": "99.00"}])
    short_paid = offline_sale(store_a, 3, [(shirt, 1, "99.00")], tenders=[{"tender": "cash", "amount": "90.00"}])
    other_store = offline_sale(store_a, 4, [(shirt, 1, "99.00")])
    other_store["receipt_number"] = "HZ002-T1-000004"
    slip = [{"tender": "card", "amount": "99.00", "reference": "SLIP-7"}]
    first_slip = offline_sale(store_a, 5, [(shirt, 1, "99.00")], tenders=slip)
    slip_again = offline_sale(store_a, 6, [(shirt, 1, "99.00")], tenders=slip)
    results = post(client, [wallet, good, short_paid, other_store, first_slip, slip_again]).json()["results"]
    assert [r["status"] for r in results] == ["rejected", "recorded", "rejected", "rejected", "recorded", "rejected"]
    assert [r.get("error", {}).get("code") for r in results] == [
        "offline_tender_not_allowed", None, "offline_tenders_mismatch", "offline_store_mismatch", None,
        "duplicate_transaction"]
    assert results[5]["error"]["retry"] is False
    assert OfflineSale.objects.count() == 2 and on_hand(store_a, shirt) == 3
    assert not OfflineSale.objects.filter(client_uuid=slip_again["client_uuid"]).exists()


@pytest.mark.django_db
def test_without_an_open_shift_the_sale_is_kept_for_a_retry_and_nothing_is_recorded(store_a, stocked, clerk_a):
    shirt, _ = stocked
    result = post(login(clerk_a), [offline_sale(store_a, 1, [(shirt, 1, "99.00")])]).json()["results"][0]
    assert result["status"] == "rejected"
    assert (result["error"]["code"], result["error"]["retry"]) == ("shift_not_open", True)
    assert not OfflineSale.objects.exists() and not Order.objects.exists()


@pytest.mark.django_db
def test_bad_requests_get_a_stable_code(store_a, stocked, clerk_a, shift_a):
    client = login(clerk_a)
    bad_json = client.post(URL, "{not json", content_type="application/json")
    assert (bad_json.status_code, bad_json.json()["code"]) == (400, "invalid_json")
    empty = post(client, [])
    assert (empty.status_code, empty.json()["code"]) == (400, "invalid_input")
    assert Client().post(URL, "{}", content_type="application/json").json()["code"] == "not_signed_in"
    assert client.get(URL).status_code == 405
    # The POS's CSRF rule holds: a post without the token is refused.
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(clerk_a)
    assert post(strict, [offline_sale(store_a, 1, [(stocked[0], 1, "99.00")])]).status_code == 403
    assert not OfflineSale.objects.exists()


@pytest.mark.django_db
def test_the_hq_admin_lists_the_conflicts(store_a, stocked, clerk_a, shift_a, hq_user):
    _, jeans = stocked
    post(login(clerk_a), [offline_sale(store_a, 9, [(jeans, 4, "249.00")])])
    admin = Client()
    admin.force_login(hq_user)
    page = admin.get(reverse("admin:pos_offlineconflict_changelist"))
    assert page.status_code == 200
    assert "HZ001-T1-000009" in page.content.decode()
    assert admin.get(reverse("admin:pos_offlinesale_changelist")).status_code == 200


# --- the audits fail on planted bad states ---------------------------------------------------------


@pytest.mark.django_db
def test_audit_catches_an_offline_sale_without_its_order(store_a, stocked, clerk_a, shift_a):
    shirt, _ = stocked
    post(login(clerk_a), [offline_sale(store_a, 1, [(shirt, 1, "99.00")])])
    audit_clean()
    OfflineSale.objects.update(order=None)
    audit_fails("has no order")


@pytest.mark.django_db
def test_audit_catches_an_offline_sale_whose_order_differs_from_what_was_paid(store_a, stocked, clerk_a, shift_a):
    shirt, _ = stocked
    post(login(clerk_a), [offline_sale(store_a, 1, [(shirt, 1, "99.00")])])
    OfflineSale.objects.update(paid_total=D("89.00"))
    audit_fails("against 89.00 paid")


@pytest.mark.django_db
def test_audit_catches_a_shortfall_that_was_not_booked_in(store_a, stocked, clerk_a, shift_a):
    _, jeans = stocked
    post(login(clerk_a), [offline_sale(store_a, 1, [(jeans, 4, "249.00")])])
    OfflineConflict.objects.update(qty_short=3)
    audit_fails("3 units short but 1 booked in")


# --- the store manager's tasks ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_store_manager_sees_and_resolves_the_conflicts_at_the_pos(store_a, store_b, stocked, clerk_a, manager_a,
                                                                      manager_b, shift_a):
    _, jeans = stocked
    clerk = login(clerk_a)
    post(clerk, [offline_sale(store_a, 5, [(jeans, 4, "249.00")])])
    conflict = OfflineConflict.objects.get()
    url = f"/pos/offline/conflicts/{conflict.pk}/resolve/"
    manager = login(manager_a)
    page = manager.get("/pos/offline/conflicts/").content.decode()
    assert "HZ001-T1-000005" in page and "1 件已补记入账，等待盘点" in page
    refused = clerk.post(url, {"note": "counted"})
    assert refused.status_code == 403 and "只有店长" in refused.content.decode()
    assert login(manager_b).post(url, {"note": "x"}).status_code == 404  # another store's
    conflict.refresh_from_db()
    assert conflict.status == "open"
    done = manager.post(url, {"note": "盘点实有 0 件"})
    assert done.status_code == 302
    conflict.refresh_from_db()
    assert (conflict.status, conflict.resolved_by, conflict.note) == ("resolved", manager_a, "盘点实有 0 件")
    assert manager.post(url, {"note": "again"}).status_code == 409
    assert "HZ001-T1-000005" not in manager.get("/pos/offline/conflicts/").content.decode()


@pytest.mark.django_db
def test_hq_resolves_conflicts_with_the_admin_action(store_a, stocked, clerk_a, shift_a, hq_user):
    _, jeans = stocked
    post(login(clerk_a), [offline_sale(store_a, 1, [(jeans, 4, "249.00")])])
    admin = Client()
    admin.force_login(hq_user)
    conflict = OfflineConflict.objects.get()
    response = admin.post(reverse("admin:pos_offlineconflict_changelist"),
                          {"action": "resolve", "_selected_action": [conflict.pk]})
    assert response.status_code == 302
    conflict.refresh_from_db()
    assert (conflict.status, conflict.resolved_by) == ("resolved", hq_user)


@pytest.mark.django_db
def test_a_promotion_that_ran_out_while_offline_keeps_the_price_paid_and_records_the_difference(
        store_a, stocked, clerk_a, shift_a):
    from promotions.models import Promotion
    from promotions.tests.factories import promotion

    _, jeans = stocked
    special = promotion(code="JEANS", name="牛仔裤限时特价", kind="special_price", price=D("199.00"), skus=[jeans],
                        max_uses=1)
    client = login(clerk_a)
    # The till priced two sales at the special price; the promotion had one use left.
    results = post(client, [offline_sale(store_a, 1, [(jeans, 1, "199.00")]),
                            offline_sale(store_a, 2, [(jeans, 1, "199.00")])]).json()["results"]
    assert [r["status"] for r in results] == ["recorded", "recorded"]
    assert "conflicts" not in results[0] and results[1]["conflicts"] == ["price_changed"]
    totals = [Order.objects.get(number=r["order_number"]).total for r in results]
    assert totals == [D("199.00"), D("199.00")]  # both customers keep the price they paid
    conflict = OfflineConflict.objects.get()
    assert (conflict.paid_amount, conflict.server_amount) == (D("199.00"), D("249.00"))
    assert Promotion.objects.get(pk=special.pk).used_count == 1  # its one use, taken once
    audit_clean()


@pytest.mark.django_db
def test_the_order_is_the_clerk_who_sold_at_the_till_not_the_one_who_synced(store_a, stocked, clerk_a, clerk_b,
                                                                            manager_a, shift_a):
    shirt, _ = stocked
    by_clerk = offline_sale(store_a, 1, [(shirt, 1, "99.00")])
    by_clerk["clerk_id"] = clerk_a.pk
    by_stranger = offline_sale(store_a, 2, [(shirt, 1, "99.00")])
    by_stranger["clerk_id"] = clerk_b.pk  # staff of another store: not taken
    results = post(login(manager_a), [by_clerk, by_stranger]).json()["results"]
    first, second = (OfflineSale.objects.select_related("order").get(client_uuid=s["client_uuid"])
                     for s in (by_clerk, by_stranger))
    assert [r["status"] for r in results] == ["recorded", "recorded"]
    assert (first.sold_by, first.synced_by, first.order.created_by) == (clerk_a, manager_a, clerk_a)
    assert (second.sold_by, second.order.created_by) == (manager_a, manager_a)
    bad = offline_sale(store_a, 3, [(shirt, 1, "99.00")])
    bad["clerk_id"] = "me"
    assert post(login(clerk_a), [bad]).json()["results"][0]["error"]["fields"] == {"clerk_id": [
        "离线销售数据不完整或无效。"]}
