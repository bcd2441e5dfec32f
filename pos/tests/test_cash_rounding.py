"""The drawer balances: cash rounding per store (抹零), refunds in the documented tender order, a count
in the shift's unit reaching over/short zero, and exchange credit kept apart in the Z report."""

import io
import re
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from o2o.audit import audit_run
from orders import audits as order_audits
from orders import services as order_services
from orders.models import Order, Return
from orders.services import LineIn, TenderIn
from payments import audits as pay_audits
from payments import shifts
from payments.models import CashTendered, Payment, PosShift, Refund
from stores.tests.factories import UserFactory

from .conftest import htmx, login

pytestmark = pytest.mark.django_db
D = Decimal


def return_uuid(html: str) -> str:
    return re.search(r'name="client_uuid" value="([^"]+)"', html).group(1)


def sale_uuid(client) -> str:
    return re.search(r'name="client_uuid" value="([^"]+)"', client.get(reverse("pos:sale")).content.decode()).group(1)


def post_return(client, order, qtys: dict) -> Return:
    client.get(reverse("pos:returns"), {"q": order.number})
    page = client.get(reverse("pos:return_detail", args=[order.pk])).content.decode()
    data = {"client_uuid": return_uuid(page)}
    picked = {line.pk: qty for line, qty in qtys.items()}
    for line in order.lines.all():
        data.update({f"qty_{line.pk}": str(picked.get(line.pk, 0)), f"condition_{line.pk}": "sellable"})
    response = client.post(reverse("pos:return_detail", args=[order.pk]), data)
    ret = Return.objects.get(client_uuid=data["client_uuid"])
    assert response["Location"] == reverse("pos:return_slip", args=[ret.number])
    return ret


def count_of(amount: Decimal) -> dict[str, str]:
    """The count form filled with exactly ``amount`` in the fewest notes and coins of at least ¥0.10."""
    counts, left = {}, amount
    for denom in ("100", "50", "20", "10", "5", "1", "0.5", "0.1"):
        n = int(left // D(denom))
        if n:
            counts[f"count_{denom}"] = str(n)
            left -= D(denom) * n
    assert left == 0, amount
    return counts


def audit_clean():
    failures = [(title, found) for _, title, found in audit_run() if found]
    assert failures == []


def to_the_jiao(store):
    store.cash_rounding = "jiao"
    store.save(update_fields=["cash_rounding"])


@pytest.fixture
def odd(store_a):
    """Two SKUs priced to the fen, stocked at store A."""
    a = SkuFactory(code="ODD-A", name="羊毛围巾", list_price=D("47.43"))
    b = SkuFactory(code="ODD-B", name="皮手套", list_price=D("78.41"))
    c = SkuFactory(code="ODD-C", name="礼盒", list_price=D("125.84"))
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(a.id, 5), (b.id, 5), (c.id, 5)])
    return a, b, c


def test_the_issue_split_cash_rounded_to_the_jiao_the_rest_on_the_card(client_a, store_a, clerk_a, member, odd):
    """¥125.84 back from an order paid cash + points + card: points back to the member to the fen, cash
    rounded to the jiao, the card takes the rest; the count then balances to zero."""
    box = odd[2]
    first = shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("0.00"))
    # Sold before the store rounded cash: ¥251.68 = cash 94.86 + points 1.58 + card 155.24.
    order = order_services.pos_sale_create(
        store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(box.id, 2)], actor=clerk_a, member=member,
        tenders=[TenderIn("cash", D("94.86")), TenderIn("points", D("1.58")),
                 TenderIn("unionpay_card", D("155.24"), card_reference="T-0001")]).order
    shifts.shift_close(shift=first, actor=clerk_a, counts={"50": 1, "20": 2, "1": 4, "0.5": 1, "0.1": 3,
                                                           "0.05": 1, "0.01": 1})
    assert PosShift.objects.get(pk=first.pk).over_short == D("0.00")
    to_the_jiao(store_a)
    shift = shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("200.00"))
    assert shift.cash_unit == D("0.10")
    points_before = member.__class__.objects.get(pk=member.pk).points_available

    ret = post_return(client_a, order, {order.lines.get(): 1})

    refunds = {r.payment.tender: (r.amount, r.method) for r in Refund.objects.filter(payment__reference=order.number)}
    # Unrounded the split would be cash 47.43 + points 0.79 + card 77.62.
    assert refunds == {"points": (D("0.79"), "original"), "cash": (D("47.40"), "cash"),
                       "unionpay_card": (D("77.65"), "original")}
    assert (ret.refund_total, ret.cash_rounding) == (D("125.84"), D("0.00"))
    assert member.__class__.objects.get(pk=member.pk).points_available == points_before + 79
    slip = client_a.get(reverse("pos:return_slip", args=[ret.number])).content.decode()
    assert "¥47.40" in slip and "¥77.65" in slip and "¥0.79" in slip
    expected = shifts.shift_expected_cash(shift)
    assert expected == D("152.60")
    response = client_a.post(reverse("pos:shift_close"), count_of(expected))
    assert response["Location"] == reverse("pos:shift_report", args=[shift.pk])
    shift.refresh_from_db()
    assert (shift.expected_cash, shift.counted_cash, shift.over_short) == (D("152.60"), D("152.60"), D("0.00"))
    audit_clean()


def test_a_cash_sale_drops_the_fen_as_a_discount_and_returns_stay_exact(client_a, store_a, clerk_a, odd):
    """At a store rounding to the jiao, ¥125.84 in cash is ¥125.80: the ¥0.04 is a discount spread on the
    lines.  Returning the lines one by one pays cash in jiao; what the jiao cannot express is booked on
    the return, and over the whole order exactly what was paid goes back."""
    scarf, gloves, _ = odd
    to_the_jiao(store_a)
    shift = shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("100.00"))
    uid = sale_uuid(client_a)
    htmx(client_a, reverse("pos:sale_scan"), {"code": scarf.barcode})
    page = htmx(client_a, reverse("pos:sale_scan"), {"code": gloves.barcode}).content.decode()
    assert 'data-due="125.84" data-cash-unit="10"' in page and 'data-testid="cash-unit"' in page
    response = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "130"})
    order = Order.objects.get(client_uuid=uid)
    assert response["HX-Redirect"] == reverse("pos:receipt", args=[order.number])
    assert (order.subtotal, order.cash_rounding, order.discount_total, order.total) == (
        D("125.84"), D("0.04"), D("0.04"), D("125.80"))
    cash = Payment.objects.get(reference=order.number)
    assert (cash.tender, cash.amount) == ("cash", D("125.80"))
    assert CashTendered.objects.get(payment=cash).change == D("4.20")
    receipt = client_a.get(response["HX-Redirect"]).content.decode()
    assert re.search(r'data-testid="cash-rounding">−¥0.04<', receipt)
    lines = {ln.sku_id: ln for ln in order.lines.all()}
    assert sum(ln.line_total for ln in lines.values()) == D("125.80")
    assert {ln.discount for ln in lines.values()} == {D("0.02")}  # allocated on what each line costs

    first = post_return(client_a, order, {lines[scarf.id]: 1})  # worth ¥47.41
    assert (first.refund_total, first.cash_rounding) == (D("47.40"), D("0.01"))
    second = post_return(client_a, order, {lines[gloves.id]: 1})  # worth ¥78.39, the order's last goods
    assert (second.refund_total, second.cash_rounding) == (D("78.40"), D("-0.01"))
    assert [r.amount for r in Refund.objects.order_by("pk")] == [D("47.40"), D("78.40")]
    order.refresh_from_db()
    assert order.refunded_total == order.total == D("125.80")

    expected = shifts.shift_expected_cash(shift)
    assert expected == D("100.00")
    response = client_a.post(reverse("pos:shift_close"), count_of(expected))
    shift.refresh_from_db()
    assert shift.over_short == D("0.00")
    html = client_a.get(response["Location"]).content.decode()
    assert re.search(r'data-testid="over-short">¥0.00<', html) and "<td>短款</td>" not in html
    audit_clean()


def test_one_line_returned_in_parts_after_a_rounded_up_refund_stays_within_the_line(client_a, store_a, clerk_a):
    """3 × ¥12.34 in cash at a jiao store is ¥37.00 (¥0.02 off the line).  Two units back are worth ¥24.67
    and get ¥24.70 in cash (half up to the jiao); the last unit then gets what the line has left, ¥12.30,
    not its share ¥12.33: the line never refunds more than it cost, and the order gets back exactly what it
    paid."""
    sku = SkuFactory(code="ODD-D", name="袜子", list_price=D("12.34"))
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(sku.id, 5)])
    to_the_jiao(store_a)
    shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("100.00"))
    uid = sale_uuid(client_a)
    for _ in range(3):
        htmx(client_a, reverse("pos:sale_scan"), {"code": sku.barcode})
    response = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "40"})
    order = Order.objects.get(client_uuid=uid)
    assert response["HX-Redirect"] == reverse("pos:receipt", args=[order.number])
    line = order.lines.get()
    assert (line.qty, line.discount, line.line_total, order.total) == (3, D("0.02"), D("37.00"), D("37.00"))

    first = post_return(client_a, order, {line: 2})
    assert (first.refund_total, first.cash_rounding) == (D("24.70"), D("-0.03"))
    last = post_return(client_a, order, {line: 1})
    assert (last.refund_total, last.cash_rounding) == (D("12.30"), D("0.00"))
    line.refresh_from_db()
    order.refresh_from_db()
    assert (line.qty_returned, line.refunded_amount) == (3, D("37.00"))
    assert order.refunded_total == order.total == D("37.00")
    assert [r.amount for r in Refund.objects.filter(payment__reference=order.number).order_by("pk")] == [
        D("24.70"), D("12.30")]
    audit_clean()


def test_a_sale_by_card_and_cash_rounds_only_the_cash(client_a, store_a, clerk_a, odd):
    to_the_jiao(store_a)
    shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("0.00"))
    uid = sale_uuid(client_a)
    htmx(client_a, reverse("pos:sale_scan"), {"code": odd[2].barcode})
    htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "card_amount": "100.00",
                                                  "card_reference": "T-9", "cash_tendered": "30"})
    order = Order.objects.get(client_uuid=uid)
    tenders = {p.tender: p.amount for p in Payment.objects.filter(reference=order.number)}
    assert tenders == {"unionpay_card": D("100.00"), "cash": D("25.80")}
    assert (order.cash_rounding, order.total) == (D("0.04"), D("125.80"))


def test_the_count_form_offers_the_shift_units_coins(client_a, store_a, clerk_a, store_b, clerk_b):
    shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("10.00"))
    page = client_a.get(reverse("pos:shift")).content.decode()
    assert 'name="count_0.01"' in page and 'name="count_0.1"' in page  # no rounding: fen coins too
    to_the_jiao(store_b)
    shifts.shift_open(store=store_b, actor=clerk_b, opening_float=D("10.00"))
    page = login(clerk_b).get(reverse("pos:shift")).content.decode()
    assert 'name="count_0.1"' in page and 'name="count_0.05"' not in page and 'name="count_0.01"' not in page


def test_cash_in_and_floats_outside_the_unit_are_refused(client_a, store_a, clerk_a):
    to_the_jiao(store_a)
    response = client_a.post(reverse("pos:shift_open"), {"opening_float": "100.05"})
    assert response.status_code == 422 and "¥0.10" in response.content.decode()
    assert not PosShift.objects.exists()
    shift = shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("100.00"))
    response = client_a.post(reverse("pos:shift_cash"), {"kind": "in", "amount": "0.03", "reason": "零钱"})
    assert response.status_code == 422
    assert not shift.movements.exists()


def test_the_z_report_keeps_exchange_credit_apart_from_cash_refunds(client_a, store_a, clerk_a, stocked, shift_a):
    shirt, jeans = stocked
    order = order_services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(shirt.id, 2)],
                                           tenders=[TenderIn("cash", D("198.00"))], actor=clerk_a).order
    line = order.lines.get()
    order_services.exchange_create(order=order, store=store_a, client_uuid=uuid.uuid4(), actor=clerk_a,
                                   return_lines=[order_services.ReturnLineIn(line.pk, 1)],
                                   new_lines=[LineIn(jeans.id, 1)], tenders=[TenderIn("cash", D("150.00"))])
    post_return(client_a, order, {line: 1})  # a plain return of the other shirt: ¥99 cash out

    report = shifts.shift_z_report(shift_a)
    assert (report.exchanges, report.exchange_credit) == (1, D("99.00"))
    assert [(t.tender, t.amount) for t in report.refunds] == [("cash", D("99.00"))]
    assert [(t.tender, t.amount) for t in report.payments] == [("cash", D("348.00"))]
    assert report.cash_refunds == D("99.00") and report.expected_cash == D("449.00")  # 200 + 198 + 150 − 99
    page = client_a.get(reverse("pos:shift")).content.decode()
    assert re.search(r'data-testid="exchange-credit">¥99.00<', page)
    response = client_a.post(reverse("pos:shift_close"), count_of(report.expected_cash))
    shift_a.refresh_from_db()
    assert shift_a.over_short == D("0.00")
    html = client_a.get(response["Location"]).content.decode()
    assert re.search(r'data-testid="exchange-credit">¥99.00<', html)
    audit_clean()


def test_the_audit_catches_fen_in_a_drawer_that_counts_jiao(store_a, clerk_a, odd):
    to_the_jiao(store_a)
    shift = shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("0.00"))
    assert list(pay_audits.shift_cash_in_unit()) == []
    # Planted: a cash sale to the fen, as the counter recorded it before the rounding.
    order = order_services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(odd[0].id, 1)],
                                           tenders=[TenderIn("cash", D("47.43"))], actor=clerk_a).order
    payment = Payment.objects.get(reference=order.number)
    found = list(pay_audits.shift_cash_in_unit())
    assert found == [f"shift {shift.pk} (cash unit 0.10): payment {payment.number} of 47.43 "
                     "is not a whole number of units"]
    with pytest.raises(CommandError):
        call_command("audit_ledgers", stdout=io.StringIO())


def test_the_audit_catches_a_cash_refund_in_fen_and_a_return_not_adding_up(store_a, clerk_a, odd):
    shift = shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("0.00"))
    order = order_services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(odd[0].id, 1)],
                                           tenders=[TenderIn("cash", D("47.43"))], actor=clerk_a).order
    ret = order_services.return_create(order=order, store=store_a, actor=clerk_a,
                                       lines=[order_services.ReturnLineIn(order.lines.get().pk, 1)])
    assert list(pay_audits.shift_cash_in_unit()) == [] and list(order_audits.returns_add_up()) == []
    # Planted: the shift counted jiao while a refund of ¥47.43 left the drawer; a return whose refund
    # is not its lines'.
    PosShift.objects.filter(pk=shift.pk).update(cash_unit=D("0.10"))
    Return.objects.filter(pk=ret.pk).update(refund_total=D("47.40"))
    found = list(pay_audits.shift_cash_in_unit())
    assert any("refund" in f and "47.43" in f for f in found)
    assert list(order_audits.returns_add_up()) == [f"return {ret.number}: 47.40 against 47.43, cash rounding 0.00"]


def test_head_office_sets_a_stores_cash_rounding_in_the_admin(client, store_a, clerk_a):
    """The policy is the store's, edited on its admin page; the next shift takes it."""
    client.force_login(UserFactory(username="hq-cash", is_staff=True, is_superuser=True))
    url = reverse("admin:stores_store_change", args=[store_a.pk])
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'name="cash_rounding"' in page and "To the jiao" in page
    # Every inline on the page (trade areas, postcodes …) posted empty.
    inlines = {}
    for prefix in re.findall(r'name="([^"]+)-TOTAL_FORMS"', page):
        inlines.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = client.post(url, {
        "code": store_a.code, "name": store_a.name, "city": store_a.city_id, "address": store_a.address,
        "phone": store_a.phone, "warehouse": store_a.warehouse_id, "is_active": "on", "cash_rounding": "yuan",
        **inlines})
    assert response.status_code == 302, response.content.decode()[-2000:]
    store_a.refresh_from_db()
    assert store_a.cash_rounding == "yuan"
    shift = shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("100.00"))
    assert shift.cash_unit == D("1.00")
    assert shifts.denominations(shift.cash_unit) == ("100", "50", "20", "10", "5", "1")


def test_pickup_cash_to_the_fen_is_refused_at_a_store_rounding_cash_and_a_card_takes_it(client_a, store_a,
                                                                                       clerk_a, odd):
    """An online order was priced to the fen and can take no 抹零 any more: its cash would put fen in a
    drawer counted in jiao, so the counter asks for the card."""
    to_the_jiao(store_a)
    shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("100.00"))
    order = order_services.order_place(channel="mini_program", fulfillment="pickup", store=store_a,
                                       external_id=uuid.uuid4().hex[:12], customer_name="王芳",
                                       lines=[LineIn(odd[0].id, 1)]).order
    cash = client_a.post(reverse("pos:pickup_pay"), {"code": order.pickup_code, "tender": "cash",
                                                     "cash_tendered": "50"})
    assert cash.status_code == 422 and "¥0.10" in cash.content.decode()
    assert not Payment.objects.filter(reference=order.number).exists()
    card = client_a.post(reverse("pos:pickup_pay"), {"code": order.pickup_code, "tender": "unionpay_card",
                                                     "card_reference": "T-77"})
    assert card.status_code == 200
    assert Payment.objects.get(reference=order.number).amount == D("47.43")
    audit_clean()


def test_an_exchange_at_the_counter_rounds_the_difference_paid_in_cash(client_a, store_a, clerk_a, stocked, odd):
    """A ¥99 shirt back for a scarf and gloves (¥125.84): the ¥99 credit pays, the ¥26.84 left is ¥26.80
    in cash (抹零 ¥0.04 off the new sale); the Z report shows the credit apart and the drawer balances."""
    shirt, _ = stocked
    scarf, gloves, _ = odd
    to_the_jiao(store_a)
    shift = shifts.shift_open(store=store_a, actor=clerk_a, opening_float=D("50.00"))
    order = order_services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(shirt.id, 1)],
                                           tenders=[TenderIn("cash", D("99.00"))], actor=clerk_a).order
    client_a.get(reverse("pos:returns"), {"q": order.number})
    page = client_a.get(reverse("pos:return_detail", args=[order.pk])).content.decode()
    line = order.lines.get()
    client_a.post(reverse("pos:return_detail", args=[order.pk]), {
        "client_uuid": return_uuid(page), f"qty_{line.pk}": "1", f"condition_{line.pk}": "sellable",
        "exchange": "1"})
    uid = sale_uuid(client_a)
    htmx(client_a, reverse("pos:sale_scan"), {"code": scarf.barcode})
    htmx(client_a, reverse("pos:sale_scan"), {"code": gloves.barcode})
    response = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "cash_tendered": "30"})
    new = Order.objects.get(client_uuid=uid)
    assert response["HX-Redirect"] == reverse("pos:receipt", args=[new.number])
    assert (new.cash_rounding, new.total) == (D("0.04"), D("125.80"))
    tenders = {p.tender: p.amount for p in Payment.objects.filter(reference=new.number)}
    assert tenders == {"exchange_credit": D("99.00"), "cash": D("26.80")}
    assert CashTendered.objects.get(payment__reference=new.number).change == D("3.20")

    report = shifts.shift_z_report(shift)
    assert (report.exchanges, report.exchange_credit, report.refunds) == (1, D("99.00"), [])
    assert report.expected_cash == D("175.80")  # 50 + 99 + 26.80
    client_a.post(reverse("pos:shift_close"), count_of(report.expected_cash))
    shift.refresh_from_db()
    assert shift.over_short == D("0.00")
    audit_clean()
