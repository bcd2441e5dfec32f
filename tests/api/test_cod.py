"""Cash on delivery as a flow: chosen through the API, shipped unpaid (never expiring), paid when head
office records the courier's remittance in the admin, one parcel by hand or the courier's CSV file."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from inventory.models import Reservation
from members.models import PointsEntry
from o2o.models import OutboxMessage
from members.services import members
from orders import services as order_services
from orders.models import CodRemittance, Order, OrderEvent, Status
from payments.models import Payment
from settlement import services as settlement
from settlement.models import SettlementStatement
from settlement.tests.scenario import end_of_today
from stores.tests.factories import CityFactory
from tests.api.conftest import idem, place

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"
RECORD = "/admin/orders/codremittance/record/"


def cod_order(client, skus, *, qty=1, **extra):
    """A ship-from-warehouse order placed and switched to cash on delivery through the API."""
    placed = place(client, fulfillment="ship_warehouse", ship_city=CityFactory().pk, ship_address="1 Lake Road",
                   lines=[{"sku": skus[0].pk, "qty": qty}], **extra)
    assert placed.status_code == 201, placed.content
    chosen = client.post(f"{ORDERS}{placed.json()['id']}/payments/", {"tender": "cash_on_delivery"},
                         format="json", **idem())
    assert chosen.status_code == 201, chosen.content
    return Order.objects.get(pk=placed.json()["id"]), chosen.json()


def ship(client, order: Order, tracking: str) -> None:
    created = client.post(f"{ORDERS}{order.pk}/shipments/", {}, format="json", **idem())
    assert created.status_code == 201, created.content
    shipment = created.json()["id"]
    assert client.post(f"/api/v1/shipments/{shipment}/pack/", format="json", **idem()).status_code == 200
    shipped = client.post(f"/api/v1/shipments/{shipment}/ship/", {"carrier": "SF", "tracking_number": tracking},
                          format="json", **idem())
    assert shipped.status_code == 200, shipped.content


def record_one(client, tracking, amount, day=None):
    return client.post(RECORD, {"one-tracking_number": tracking, "one-amount": amount,
                                "one-remitted_on": str(day or timezone.localdate()), "record_one": "1"})


def upload(client, text: str, name="sf-remit.csv"):
    return client.post(RECORD, {"file-file": SimpleUploadedFile(name, text.encode("utf-8"), "text/csv"),
                                "upload": "1"})


def audit_clean() -> None:
    call_command("audit_ledgers", stdout=io.StringIO())


@pytest.fixture
def hq(client, hq_user, settings):
    client.force_login(hq_user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the messages below are read in English
    return client


def test_a_cod_order_ships_unpaid_never_expires_and_is_paid_by_the_remittance(partner, stocked, hq):
    _key, api = partner
    member = members.member_register(phone="13800138111", channel="mini_program")
    order, payment = cod_order(api, stocked, qty=2, member={"phone": "13800138111"})
    due = order.total

    # Chosen: a pending COD payment for the whole amount; the order and its holds are off the clock.
    assert payment["tender"] == "cash_on_delivery" and Decimal(payment["amount"]) == due
    assert payment["status"] == "pending" and order.expires_at is None
    assert not Reservation.objects.filter(reference=order.number, expires_at__isnull=False).exists()
    later = timezone.now() + timedelta(days=30)
    assert order_services.orders_expire(now=later) == 0
    again = api.post(f"{ORDERS}{order.pk}/payments/", {"tender": "cash_on_delivery"}, format="json", **idem())
    assert again.status_code == 201 and again.json()["id"] == payment["id"]
    other_way = api.post(f"{ORDERS}{order.pk}/payments/", {"tender": "sandbox"}, format="json", **idem())
    assert other_way.status_code == 409 and other_way.json()["code"] == "cod_chosen"

    # Shipped unpaid: no points yet (nothing was paid).
    ship(api, order, "SF100200300")
    order.refresh_from_db()
    assert order.status == Status.SHIPPED and order.paid_at is None and order.paid_total == 0
    assert not PointsEntry.objects.filter(member=member, order_number=order.number).exists()
    returned = api.post(f"{ORDERS}{order.pk}/returns/", {"lines": [{"order_line": order.lines.first().pk,
                                                                    "qty": 1}]}, format="json", **idem())
    assert returned.status_code in (400, 409, 422) and Order.objects.get(pk=order.pk).refunded_total == 0
    audit_clean()

    # The courier's remittance, recorded by hand in the admin.
    response = record_one(hq, "SF100200300", str(due))

    assert response.status_code == 302, response.content.decode()[:2000]
    order.refresh_from_db()
    remittance = CodRemittance.objects.get(tracking_number="SF100200300")
    assert order.status == Status.SHIPPED and order.paid_total == due and order.paid_at is not None
    assert remittance.order == order and remittance.amount == due and remittance.source == "single"
    paid = Payment.objects.get(pk=payment["id"])
    assert paid.status == Payment.Status.CAPTURED and paid.provider_txn_id == "SF100200300"
    assert OrderEvent.objects.filter(order=order, reason="cash on delivery remitted").count() == 1
    earned = PointsEntry.objects.get(member=member, order_number=order.number, kind="earn")
    assert earned.frozen_delta == int(due)  # 1 point per yuan of what the courier collected, frozen
    assert api.get(f"{ORDERS}{order.pk}/").json()["paid_total"] == str(due)
    paid_event = OutboxMessage.objects.filter(topic="order.paid", payload__order=order.number).get()
    shipped_event = OutboxMessage.objects.filter(topic="order.shipped", payload__order=order.number).get()
    assert paid_event.payload["version"] > shipped_event.payload["version"]  # receivers keep the newer
    audit_clean()

    # Entered again: a clear error, and nothing changes.
    twice = record_one(hq, "SF100200300", str(due))
    assert twice.status_code == 422 and "already recorded" in twice.content.decode()
    assert CodRemittance.objects.count() == 1 and Order.objects.get(pk=order.pk).paid_total == due


def test_single_remittance_errors_are_clear_and_change_nothing(partner, stocked, hq, store_a):
    _key, api = partner
    order, _payment = cod_order(api, stocked)
    ship(api, order, "SF7001")

    unknown = record_one(hq, "SF-NOPE", str(order.total))
    mismatch = record_one(hq, "SF7001", str(order.total - Decimal("0.01")))
    bad_amount = record_one(hq, "SF7001", "12.345")
    future = record_one(hq, "SF7001", str(order.total), timezone.localdate() + timedelta(days=1))

    assert unknown.status_code == 422 and "No shipped cash-on-delivery parcel" in unknown.content.decode()
    assert mismatch.status_code == 422 and "not what the customer owed" in mismatch.content.decode()
    assert bad_amount.status_code == 422 and future.status_code == 422
    assert not CodRemittance.objects.exists()
    assert Payment.objects.get(reference=order.number).status == Payment.Status.PENDING
    # A pickup order cannot be cash on delivery.
    pickup = place(api, store=store_a, lines=[{"sku": stocked[0].pk, "qty": 1}]).json()
    refused = api.post(f"{ORDERS}{pickup['id']}/payments/", {"tender": "cash_on_delivery"}, format="json",
                       **idem())
    assert refused.status_code == 409 and refused.json()["code"] == "cod_not_available"


def test_a_clean_csv_file_pays_every_parcel(partner, stocked, hq):
    _key, api = partner
    first, _ = cod_order(api, stocked)
    second, _ = cod_order(api, stocked, qty=2)
    ship(api, first, "SF1")
    ship(api, second, "SF2")

    response = upload(hq, f"运单号,金额,回款日期\nSF1,{first.total},2026-12-01\n\nSF2,¥{second.total},2026/12/02\n")

    assert response.status_code == 302
    rows = {r.tracking_number: r for r in CodRemittance.objects.all()}
    assert rows["SF1"].file_line == 2 and rows["SF2"].file_line == 4 and rows["SF2"].source == "batch"
    assert str(rows["SF2"].remitted_on) == "2026-12-02"
    assert Order.objects.get(pk=first.pk).paid_total == first.total
    assert Order.objects.get(pk=second.pk).paid_total == second.total
    audit_clean()


def test_a_csv_file_with_bad_rows_reports_each_line_and_records_nothing(partner, stocked, hq):
    _key, api = partner
    good, _ = cod_order(api, stocked)
    done, _ = cod_order(api, stocked)
    ship(api, good, "SF10")
    ship(api, done, "SF11")
    assert record_one(hq, "SF11", str(done.total)).status_code == 302

    response = upload(hq, "tracking_number,amount,remitted_on\n"
                          f"SF10,{good.total},2026-12-01\n"
                          "SF-UNKNOWN,10.00,2026-12-01\n"
                          f"SF10,{good.total},2026-12-01\n"
                          f"SF11,{done.total},2026-12-01\n"
                          "SF12,abc,2026-12-01\n"
                          "SF13,1.00,yesterday\n"
                          f"SF10,{good.total + 1},2026-12-01\n")

    assert response.status_code == 422
    page = response.content.decode()
    errors = response.context["row_errors"]
    assert [(e["line"], e["code"]) for e in errors] == [
        (3, "cod_tracking_unknown"), (4, "cod_already_remitted"), (5, "cod_already_remitted"),
        (6, "cod_row_invalid"), (7, "cod_row_invalid"), (8, "cod_already_remitted")]
    assert "nothing from the file was recorded" in page
    # Line 2 was good, but the file is all or nothing.
    assert not CodRemittance.objects.filter(tracking_number="SF10").exists()
    assert Order.objects.get(pk=good.pk).paid_at is None
    assert Payment.objects.get(reference=good.number).status == Payment.Status.PENDING
    missing_column = upload(hq, "tracking_number,amount\nSF10,1.00\n")
    assert missing_column.status_code == 422 and "remitted_on" in missing_column.content.decode()
    audit_clean()


def test_a_cod_amount_mismatch_in_a_file_is_reported_on_its_line(partner, stocked, hq):
    _key, api = partner
    order, _ = cod_order(api, stocked)
    ship(api, order, "SF20")

    response = upload(hq, f"tracking_number,amount,remitted_on\nSF20,{order.total - 1},2026-12-01\n")

    assert response.status_code == 422
    assert [(e["line"], e["code"]) for e in response.context["row_errors"]] == [(2, "cod_amount_mismatch")]
    assert not CodRemittance.objects.exists()


def test_store_staff_cannot_record_remittances(client, partner, stocked, clerk_a):
    client.force_login(clerk_a[0])
    assert client.get(RECORD).status_code in (302, 403)


@pytest.mark.parametrize("plant", ["second_capture", "amount", "no_remittance"])
def test_the_audit_fails_when_a_cod_order_is_not_paid_by_exactly_one_matching_remittance(partner, stocked, hq,
                                                                                          plant):
    _key, api = partner
    order, payment = cod_order(api, stocked)
    ship(api, order, "SF30")
    assert record_one(hq, "SF30", str(order.total)).status_code == 302
    audit_clean()

    with connection.cursor() as cur:
        if plant == "second_capture":
            # A second COD capture on the same order, as if another path had captured it again.
            first = Payment.objects.get(pk=payment["id"])
            Payment.objects.create(number="PY-PLANTED", reference=first.reference, tender=first.tender,
                                   provider=first.provider, amount=first.amount, status=first.status,
                                   provider_txn_id="SF30-B", captured_at=first.captured_at)
        elif plant == "amount":
            cur.execute("UPDATE orders_codremittance SET amount = amount - 1 WHERE tracking_number = 'SF30'")
        else:
            cur.execute("DELETE FROM orders_codremittance WHERE tracking_number = 'SF30'")

    with pytest.raises(CommandError):
        audit_clean()


def test_the_remittance_page_speaks_the_users_language(client, hq_user):
    client.force_login(hq_user)  # no language chosen: the product's default, Chinese

    page = client.get(RECORD)
    unknown = record_one(client, "SF-NOPE", "10.00")

    assert page.status_code == 200 and "登记货到付款回款" in page.content.decode()
    assert unknown.status_code == 422 and "没有已发货的货到付款包裹使用此运单号" in unknown.content.decode()


def test_the_remittance_is_money_of_the_day_on_the_online_statement(partner, stocked, hq):
    _key, api = partner
    order, _ = cod_order(api, stocked, qty=2)
    ship(api, order, "SF40")
    assert record_one(hq, "SF40", str(order.total)).status_code == 302

    settlement.settlement_run(until=settlement.business_day_of(timezone.now()), now=end_of_today())

    # Not at any till: on the no-store statement of the order's channel, under its own tender.
    online = SettlementStatement.objects.get(store=None, channel="mini_program")
    tenders = {t.tender: t.payments_amount for t in online.tenders.all()}
    assert tenders == {"cash_on_delivery": order.total}
    assert online.payments_total == order.total and online.sales_net == order.total
    assert not SettlementStatement.objects.exclude(pk=online.pk).exclude(payments_total=0).exists()
    audit_clean()


@pytest.mark.parametrize("extra", [{"method": "jsapi", "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
                                   {"method": "mini_program", "buyer_id": "2088102146225135"},
                                   {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}])
def test_cash_on_delivery_takes_no_wallet_method_or_payer(partner, stocked, extra):
    _key, api = partner
    placed = place(api, fulfillment="ship_warehouse", ship_city=CityFactory().pk, ship_address="1 Lake Road",
                   lines=[{"sku": stocked[0].pk, "qty": 1}]).json()

    refused = api.post(f"{ORDERS}{placed['id']}/payments/", {"tender": "cash_on_delivery", **extra}, format="json",
                       **idem())

    assert refused.status_code == 400 and refused.json()["code"] == "payment_method_unsupported", refused.content
    assert refused.json()["fields"] and "method" in refused.json()["fields"]
    assert not Payment.objects.filter(reference=placed["number"]).exists()
    assert Order.objects.get(pk=placed["id"]).status == Status.PENDING_PAYMENT
