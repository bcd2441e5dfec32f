from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db.models import Count, Sum

from catalog.models import Category, Product, Sku
from catalog.validators import barcode_normalize
from inventory.models import MoveReason, ReplenishmentProposal, ReplenishmentRule, StockLevel, StockMove
from reporting.management.commands.seed_demo import DEMO_PASSWORD, OPENING_REFERENCE, PRODUCT_PREFIX
from stores.models import Capability, City, Role, StaffProfile, Store, StoreMembership, Warehouse
from stores.selectors import capability_enabled, staff_store_ids, user_role

pytestmark = pytest.mark.django_db


def seed(**options) -> str:
    out = StringIO()
    # History is off unless a test asks for it: it rings up orders through the services, which takes time.
    call_command("seed_demo", stdout=out, **{"stores": 2, "skus": 20, "seed": 7, "history_days": 0, **options})
    return out.getvalue()


def snapshot() -> dict[str, int]:
    models = [Category, Product, Sku, Store, Warehouse, StockLevel, StockMove, ReplenishmentRule,
              ReplenishmentProposal, StaffProfile, StoreMembership, Group, get_user_model()]
    counts = {m.__name__: m.objects.count() for m in models}
    counts["on_hand"] = StockLevel.objects.aggregate(total=Sum("on_hand"))["total"]
    return counts


def test_seed_creates_the_pilot_city():
    output = seed()

    stores = list(Store.objects.select_related("warehouse", "city__region").order_by("code"))
    assert [s.code for s in stores] == ["HZ001", "HZ002"]
    assert [s.name for s in stores] == ["杭州西湖店", "杭州滨江店"]
    assert all(s.warehouse.kind == Warehouse.Kind.STORE and s.city.name == "杭州" for s in stores)
    assert stores[0].city.region.name == "浙江"
    central = Warehouse.objects.get(kind=Warehouse.Kind.CENTRAL)
    assert central.name == "杭州总仓"

    assert Category.objects.filter(code="tshirts", path="apparel/tops/tshirts", parent__code="tops").exists()
    skus = list(Sku.objects.filter(code__startswith=PRODUCT_PREFIX))
    assert len(skus) == 20
    products = Product.objects.filter(code__startswith=PRODUCT_PREFIX)
    assert products.count() == len({s.product_id for s in skus})
    for sku in skus:
        assert len(sku.barcode) == 13 and barcode_normalize(sku.barcode) == sku.barcode
        assert sku.list_price > 0 and sku.list_price.as_tuple().exponent == -2
        assert sku.cost_price < sku.list_price
        assert sku.color and sku.size and sku.name.startswith(sku.product.name)

    opening = StockMove.objects.filter(reference=OPENING_REFERENCE)
    assert set(opening.values_list("reason", flat=True)) == {MoveReason.OPENING}
    assert opening.filter(warehouse=central).count() == 20  # every SKU at central
    for store in stores:
        assert opening.filter(warehouse=store.warehouse).exists()
    assert "20 SKUs (20 new)" in output
    # the roll-out: Hangzhou launched with every capability on, Ningbo not yet
    pilot, second = City.objects.get(code="HZ"), City.objects.get(code="NB")
    assert pilot.launched_on is not None and second.launched_on is None
    assert all(capability_enabled(c, store=stores[0]) for c in Capability.values)
    assert not any(capability_enabled(c, city=second) for c in Capability.values)

    call_command("audit_ledgers", stdout=StringIO())


def test_seed_creates_one_login_per_role_with_the_documented_password():
    output = seed()

    assert DEMO_PASSWORD in output
    admin = authenticate(username="admin", password=DEMO_PASSWORD)
    assert admin is not None and admin.is_superuser
    expected = {"hq": Role.HQ_ADMIN, "regional": Role.REGIONAL_MANAGER, "manager": Role.STORE_MANAGER,
                "clerk": Role.CLERK, "clerk2": Role.CLERK, "guide": Role.GUIDE}
    for username, role in expected.items():
        user = authenticate(username=username, password=DEMO_PASSWORD)
        assert user is not None, username
        assert user_role(user) == role
        assert list(user.groups.values_list("name", flat=True)) == [role.value]
        assert not user.is_superuser
        assert username in output
    west, binjiang = Store.objects.order_by("code")
    assert staff_store_ids(get_user_model().objects.get(username="clerk")) == {west.id}
    assert staff_store_ids(get_user_model().objects.get(username="clerk2")) == {binjiang.id}
    assert staff_store_ids(get_user_model().objects.get(username="regional")) == {west.id, binjiang.id}
    assert StaffProfile.objects.get(user__username="guide").guide_code == "G-HZ001-01"


def test_seed_twice_changes_nothing():
    seed()
    before = snapshot()

    output = seed()

    assert snapshot() == before
    assert "0 opening lines" in output
    call_command("audit_ledgers", stdout=StringIO())


def test_seed_tops_the_catalog_up_without_touching_existing_rows():
    seed()
    first = dict(Sku.objects.values_list("code", "barcode"))
    central_opening = StockMove.objects.filter(reference=OPENING_REFERENCE, warehouse__kind="central").count()

    seed(skus=30, stores=3, seed=99)

    now = dict(Sku.objects.filter(code__startswith=PRODUCT_PREFIX).values_list("code", "barcode"))
    assert len(now) == 30
    assert {code: now[code] for code in first} == first
    assert Store.objects.count() == 3
    # Opening stock only for the new SKUs at central; nothing received twice.
    assert StockMove.objects.filter(reference=OPENING_REFERENCE, warehouse__kind="central").count() == \
        central_opening + 10
    assert not StockMove.objects.filter(reference=OPENING_REFERENCE).values("warehouse", "sku").annotate(
        n=Count("id")).filter(n__gt=1).exists()
    call_command("audit_ledgers", stdout=StringIO())


def test_seed_rejects_nonsense_options():
    with pytest.raises(CommandError):
        call_command("seed_demo", stores=0, skus=20, stdout=StringIO())
    assert not Store.objects.exists()


def test_history_days_rings_up_orders_through_the_services_and_stays_consistent():
    from reporting.models import DailySalesRollup
    from orders.models import Order

    seed(history_days=2)
    made = Order.objects.count()
    assert made > 0
    assert Order.objects.filter(channel="pos").exists() and Order.objects.exclude(channel="pos").exists()
    assert DailySalesRollup.objects.exists()
    seed(history_days=2)  # idempotent
    assert Order.objects.count() == made
    call_command("audit_ledgers", stdout=StringIO())


def test_the_clerks_first_sale_shows_the_demo_promotions():
    from django.test import Client
    from django.urls import reverse

    from promotions.models import Promotion

    seed()
    seed()  # made once
    assert sorted(Promotion.objects.values_list("code", flat=True)) == [
        "DEMO-M300", "DEMO-SPECIAL", "DEMO-TEE2", "DEMO-Z800"]
    store = Store.objects.get(code="HZ001")
    sku = (Sku.objects.filter(code__startswith=f"{PRODUCT_PREFIX}0001-",
                              levels__warehouse=store.warehouse, levels__on_hand__gt=0)
           .order_by("code").first())
    assert sku is not None
    clerk = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    clerk.force_login(get_user_model().objects.get(username="clerk"))

    page = clerk.post(reverse("pos:sale_scan"), {"code": sku.barcode}, HTTP_HX_REQUEST="true").content.decode()

    special = (sku.list_price * Decimal("0.2")).quantize(Decimal("0.01"))
    assert f"新品限时特价 −¥{special}" in page
    assert 'data-testid="promotion-discount"' in page


def test_the_demo_shows_points_coupons_wallet_guides_and_waiting_orders_on_the_first_click():
    from django.contrib.auth.hashers import check_password

    from members.models import (
        CommissionEntry,
        CouponCampaign,
        CouponTemplate,
        GuideBinding,
        IssuedCoupon,
        Member,
        PointsConfig,
    )
    from orders.models import Fulfillment, Order
    from payments.models import ManagerPin
    from pos.selectors import pickup_orders_waiting
    from reporting.demo import MANAGER_PIN, SHOWCASE_PHONE

    # 10 days of history: longer than the 7-day return window, so some of it is past it
    output = seed(history_days=10)

    members = Member.objects.filter(merged_into__isnull=True)
    assert members.filter(points_available__gt=0).count() >= 10, "points past the return window are available"
    assert members.filter(points_frozen__gt=0).exists(), "points of recent sales are still frozen"
    assert members.filter(wallet_principal__gt=0).count() >= 10
    wang = Member.objects.get(phone__endswith=SHOWCASE_PHONE)
    assert wang.points_available >= 5000 and wang.points_frozen > 0 and wang.wallet_principal > 0

    assert PointsConfig.objects.filter(pk=1).exists()
    assert CouponTemplate.objects.filter(is_active=True).count() >= 3
    campaign = CouponCampaign.objects.get()
    assert campaign.status == CouponCampaign.Status.DONE and campaign.issued == members.count()
    live = IssuedCoupon.objects.filter(status=IssuedCoupon.Status.ISSUED)
    assert live.values("member").distinct().count() == members.count()
    assert live.filter(member=wang).values("template").distinct().count() >= 4

    guide = StaffProfile.objects.get(guide_code="G-HZ001-01")
    assert GuideBinding.objects.filter(guide=guide).count() >= 5
    kinds = set(CommissionEntry.objects.filter(guide=guide).values_list("kind", flat=True))
    assert kinds == {"accrual", "release", "clawback"}, kinds

    pin = ManagerPin.objects.get(staff__user__username="manager")
    assert check_password(MANAGER_PIN, pin.pin_hash)
    assert MANAGER_PIN in output and SHOWCASE_PHONE in output

    for store in Store.objects.all():
        online = Order.objects.filter(store=store, external_id__startswith="DEMO-S-")
        assert pickup_orders_waiting(store).filter(external_id__startswith="DEMO-S-").exists(), \
            f"{store.code}: nothing waiting for pickup"
        assert online.filter(fulfillment=Fulfillment.PICKUP, handed_over_at__isnull=False).exists(), \
            f"{store.code}: no online order to bring back"
    assert Order.objects.filter(fulfillment=Fulfillment.SHIP_STORE, status="paid",
                                external_id__startswith="DEMO-S-").exists()

    before = (IssuedCoupon.objects.count(), Order.objects.count(), CommissionEntry.objects.count())
    seed(history_days=10)  # again the same day: nothing new
    assert (IssuedCoupon.objects.count(), Order.objects.count(), CommissionEntry.objects.count()) == before
    call_command("audit_ledgers", stdout=StringIO())
