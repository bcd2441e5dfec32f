"""Members at the counter: coupon, points and wallet tenders, the guide who served, all on the receipt."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from members.codes import member_code_mint
from members.models import IssuedCoupon
from members.services import coupons
from members.tests.test_coupons import make_template
from orders.models import Order
from payments.models import Payment

from .conftest import htmx

pytestmark = pytest.mark.django_db


def sale_uuid(client) -> str:
    page = client.get(reverse("pos:sale")).content.decode()
    return re.search(r'name="client_uuid" value="([^"]+)"', page).group(1)


def test_member_sale_with_coupon_points_wallet_guide_and_cash(client_a, store_a, stocked, shift_a, member, coupon,
                                                               guide_a):
    shirt, jeans = stocked
    uid = sale_uuid(client_a)
    htmx(client_a, reverse("pos:sale_scan"), {"code": jeans.barcode})
    # The customer shows the coupon QR: it brings the member along.
    response = htmx(client_a, reverse("pos:sale_scan"), {"code": f"o2o:coupon:{coupon.code}"})
    html = response.content.decode()
    assert "王芳" in html and 'data-due="229.00"' in html  # 249 − 20
    htmx(client_a, reverse("pos:sale_guide"), {"guide": str(guide_a.pk)})
    # Points and wallet pay once the customer shows the dynamic member code of their app.
    htmx(client_a, reverse("pos:sale_scan"), {"code": member_code_mint(member=member).code})
    response = htmx(client_a, reverse("pos:sale_complete"), {
        "client_uuid": uid, "points": "1000", "wallet_amount": "50.00", "cash_tendered": "200"})
    order = Order.objects.get(client_uuid=uid)
    assert response["HX-Redirect"] == reverse("pos:receipt", args=[order.number])
    assert (order.member, order.guide, order.coupon_discount, order.total) == (
        member, guide_a, Decimal("20.00"), Decimal("229.00"))
    tenders = dict(Payment.objects.filter(reference=order.number).values_list("tender", "amount"))
    assert tenders == {"points": Decimal("10.00"), "wallet": Decimal("50.00"), "cash": Decimal("169.00")}
    member.refresh_from_db()
    assert member.points_available == 4000 and member.wallet_balance == Decimal("60.00")
    assert IssuedCoupon.objects.get(pk=coupon.pk).status == "redeemed"
    receipt = client_a.get(response["HX-Redirect"]).content.decode()
    assert "刘洋" in receipt and "−¥20.00" in receipt and "¥31.00" in receipt  # change from 200 on 169
    assert "本单积分" in receipt  # points earned on the money paid


def test_used_coupon_is_refused_next_to_the_coupon_field(client_a, stocked, shift_a, member, coupon):
    shirt, _ = stocked
    coupon.status = "expired"
    coupon.save(update_fields=["status"])
    htmx(client_a, reverse("pos:sale_scan"), {"code": shirt.barcode})
    response = htmx(client_a, reverse("pos:sale_coupon"), {"coupon": coupon.code})
    assert response.status_code == 422
    assert "优惠券" in re.search(r'<div class="box coupon">(.*?)</div>', response.content.decode(), re.S).group(1)


def test_unknown_coupon_is_refused(client_a, stocked, shift_a):
    shirt, _ = stocked
    htmx(client_a, reverse("pos:sale_scan"), {"code": shirt.barcode})
    response = htmx(client_a, reverse("pos:sale_coupon"), {"coupon": "ABCD-EFGH-JKMN"})
    assert response.status_code == 422 and "没有该券码的优惠券" in response.content.decode()


def test_coupon_threshold_is_checked_on_the_server(client_a, stocked, shift_a, member):
    shirt, _ = stocked
    code = coupons.coupon_issue(template=make_template(kind="threshold", amount=Decimal("30.00"),
                                                       threshold=Decimal("200.00")), member=member).code
    htmx(client_a, reverse("pos:sale_scan"), {"code": shirt.barcode})
    response = htmx(client_a, reverse("pos:sale_coupon"), {"coupon": code})
    assert response.status_code == 422 and "最低消费" in response.content.decode()


def test_not_enough_points_or_wallet_and_nothing_is_sold(client_a, stocked, shift_a, member):
    _, jeans = stocked
    uid = sale_uuid(client_a)
    htmx(client_a, reverse("pos:sale_member"), {"phone": member_code_mint(member=member).code})
    htmx(client_a, reverse("pos:sale_scan"), {"code": jeans.barcode})
    response = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "points": "6000",
                                                             "cash_tendered": "200"})
    assert response.status_code == 422 and "可用积分不足" in response.content.decode()
    response = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "wallet_amount": "200",
                                                             "cash_tendered": "49"})
    assert response.status_code == 422 and "储值余额不足" in response.content.decode()
    assert not Order.objects.exists()
    member.refresh_from_db()
    assert member.points_available == 5000 and member.wallet_balance == Decimal("110.00")


def test_wallet_without_a_member_is_refused(client_a, stocked, shift_a):
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    htmx(client_a, reverse("pos:sale_scan"), {"code": shirt.barcode})
    response = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "wallet_amount": "99"})
    assert response.status_code == 422 and not Order.objects.exists()


def test_guide_by_scanned_qr_and_unknown_guide(client_a, stocked, shift_a, guide_a):
    response = htmx(client_a, reverse("pos:sale_scan"), {"code": "o2o:guide:G-HZ001-01"})
    assert f'value="{guide_a.pk}" selected' in response.content.decode()
    response = htmx(client_a, reverse("pos:sale_scan"), {"code": "o2o:guide:NOPE"})
    assert response.status_code == 422 and "导购" in response.content.decode()


def test_the_members_usable_coupons_are_listed_and_applied_with_one_click(client_a, stocked, shift_a, member,
                                                                           coupon):
    shirt, jeans = stocked
    used = coupons.coupon_issue(template=make_template(code="USED10", amount=Decimal("10.00")), member=member)
    used.status = "redeemed"
    used.save(update_fields=["status"])
    htmx(client_a, reverse("pos:sale_scan"), {"code": jeans.barcode})

    workspace = htmx(client_a, reverse("pos:sale_member"), {"phone": member.phone}).content.decode()
    listed = re.search(r'data-testid="member-coupons">(.*?)</div>', workspace, re.S).group(1)
    codes = re.findall(r'name="coupon" value="([^"]+)"', listed)
    assert codes == [coupon.code]  # the redeemed one is not offered
    applied = htmx(client_a, reverse("pos:sale_coupon"), {"coupon": codes[0]}).content.decode()

    assert 'data-due="229.00"' in applied  # 249 − 20
    assert 'data-testid="member-coupons"' not in applied  # a coupon is on the sale: no more offered


def test_points_and_wallet_need_the_dynamic_member_code(client_a, stocked, shift_a, member):
    shirt, _ = stocked
    uid = sale_uuid(client_a)
    htmx(client_a, reverse("pos:sale_scan"), {"code": shirt.barcode})
    htmx(client_a, reverse("pos:sale_scan"), {"code": f"o2o:member:{member.phone}"})  # the static code

    by_points = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "points": "1000",
                                                              "cash_tendered": "89"})
    by_wallet = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "wallet_amount": "99"})
    code = member_code_mint(member=member).code
    shown = htmx(client_a, reverse("pos:sale_scan"), {"code": code})
    replayed = htmx(client_a, reverse("pos:sale_member"), {"phone": code})
    paid = htmx(client_a, reverse("pos:sale_complete"), {"client_uuid": uid, "wallet_amount": "99"})

    assert by_points.status_code == 422 and "会员动态码" in by_points.content.decode()
    assert by_wallet.status_code == 422 and "会员动态码" in by_wallet.content.decode()
    assert shown.status_code == 200 and "王芳" in shown.content.decode()
    assert replayed.status_code == 422  # a code is taken once
    order = Order.objects.get(client_uuid=uid)
    assert paid["HX-Redirect"] == reverse("pos:receipt", args=[order.number])
    assert order.member_id == member.pk
    member.refresh_from_db()
    assert member.points_available == 5000 and member.wallet_balance == Decimal("11.00")


def test_a_forged_or_stale_member_code_is_refused(client_a, stocked, shift_a, member, settings):
    code = member_code_mint(member=member).code
    forged = htmx(client_a, reverse("pos:sale_scan"), {"code": code[:-3] + "abc"})

    assert forged.status_code == 422 and "会员码" in forged.content.decode()
