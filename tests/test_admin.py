"""Head-office admin: every page renders for an HQ user, ledgers cannot be edited by hand,
and every stock page or action goes through its service."""

from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.urls import reverse

from catalog.models import Category
from catalog.tests.factories import CategoryFactory
from inventory import services
from inventory.models import (
    Bucket,
    MoveReason,
    Receipt,
    ReplenishmentProposal,
    ReplenishmentRule,
    StockCount,
    StockLevel,
    StockMove,
    Transfer,
)
from stores.models import Capability, Role, StaffProfile, Warehouse
from stores.services import capability_set, staff_create
from stores.tests.factories import CityFactory, RegionFactory, StoreFactory, WarehouseFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Lake-view-2026"
ADMIN_APPS = {"catalog", "stores", "inventory"}
LEDGERS = ["inventory.stocklevel", "inventory.stockmove", "inventory.reservation", "inventory.receiptline"]
DOCUMENTS = ["inventory.transfer", "inventory.receipt", "inventory.stockcount",
             "inventory.replenishmentproposal"]


def staff(role, username, **kwargs):
    return staff_create(username=username, password=PASSWORD, display_name=username, role=role,
                        employee_no=f"E-{username}", **kwargs).user


def url(label: str, view: str, *args) -> str:
    app, model = label.split(".")
    return reverse(f"admin:{app}_{model}_{view}", args=args)


def level(warehouse, sku, bucket=Bucket.SELLABLE) -> StockLevel | None:
    return StockLevel.objects.filter(warehouse=warehouse, sku=sku, bucket=bucket).first()


def on_hand(warehouse, sku, bucket=Bucket.SELLABLE) -> int:
    found = level(warehouse, sku, bucket)
    return found.on_hand if found else 0


def lines(rows: list[dict]) -> dict:
    data = {"lines-TOTAL_FORMS": str(len(rows)), "lines-INITIAL_FORMS": "0", "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "1000"}
    for i, row in enumerate(rows):
        data.update({f"lines-{i}-{k}": v for k, v in row.items()})
    return data


def action(client, label: str, name: str, objects, **extra):
    data = {"action": name, helpers.ACTION_CHECKBOX_NAME: [o.pk for o in objects], **extra}
    return client.post(url(label, "changelist"), data, follow=True)


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def hq(client):
    user = staff(Role.HQ_ADMIN, "chen")
    client.force_login(user)
    # The admin speaks zh-Hans by default; these tests read its English messages.
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return user


@pytest.fixture
def world(central, store_a, store_b, skus, hq):
    """Stock and one of every document, so every admin page has rows to show."""
    services.stock_receive(warehouse=central, lines=[(s.id, 50) for s in skus], reason=MoveReason.OPENING)
    services.stock_receive(warehouse=store_a.warehouse, lines=[(skus[0].id, 10)])
    services.stock_reserve(warehouse=central, lines=[(skus[0].id, 2)], reference="WEB-1")
    services.transfer_create(source=central, destination=store_b.warehouse, lines=[(skus[2].id, 1)], actor=hq)
    services.receipt_create(warehouse=central, supplier="杭州织造", lines=[(skus[3].id, 5, Decimal("12.50"))])
    services.count_create(warehouse=store_a.warehouse, lines=[(skus[0].id, 9)])
    ReplenishmentRule.objects.create(warehouse=store_a.warehouse, sku=skus[1], min_qty=5, max_qty=10)
    services.replenishment_propose()
    staff(Role.CLERK, "zhang", stores=[store_a])
    capability_set(capability=Capability.PICKUP, enabled=True, city=store_a.city, actor=hq)
    return {"central": central, "store_a": store_a, "store_b": store_b, "skus": skus}


# --- every page renders ----------------------------------------------------------------------


def registered() -> list[str]:
    return sorted(f"{m._meta.app_label}.{m._meta.model_name}" for m in admin.site._registry
                  if m._meta.app_label in ADMIN_APPS)


def test_every_stock_catalog_and_store_model_has_an_admin():
    assert set(registered()) == {
        "catalog.category", "catalog.brand", "catalog.product", "catalog.sku",
        "stores.region", "stores.city", "stores.warehouse", "stores.store", "stores.staffprofile",
        "stores.capabilityswitch", "stores.rolloutchange",
        *LEDGERS, *DOCUMENTS, "inventory.replenishmentrule",
    }


@pytest.mark.parametrize("label", registered())
def test_hq_user_sees_every_page(client, world, label):
    model = next(m for m in admin.site._registry if f"{m._meta.app_label}.{m._meta.model_name}" == label)
    model_admin = admin.site._registry[model]
    obj = model.objects.order_by("pk").first()
    assert obj is not None, f"the fixture should give {label} a row"

    listing = client.get(url(label, "changelist"))
    search = client.get(url(label, "changelist"), {"q": world["skus"][0].code})
    scanned = client.get(url(label, "changelist"), {"q": world["skus"][0].barcode})
    change = client.get(url(label, "change", obj.pk))

    assert listing.status_code == 200
    assert listing.context["cl"].result_count >= 1
    assert search.status_code == scanned.status_code == 200
    assert change.status_code == 200
    if model_admin.has_add_permission(listing.wsgi_request):
        assert client.get(url(label, "add")).status_code == 200


def test_sku_search_finds_by_code_barcode_and_name(client, world):
    sku = world["skus"][1]
    for term in (sku.code, sku.barcode, sku.name):
        response = client.get(url("catalog.sku", "changelist"), {"q": term})
        assert list(response.context["cl"].result_list) == [sku], term


def test_stock_level_search_by_barcode_and_filters(client, world):
    sku, store_a = world["skus"][0], world["store_a"]

    by_barcode = client.get(url("inventory.stocklevel", "changelist"), {"q": sku.barcode})
    by_store = client.get(url("inventory.stocklevel", "changelist"),
                          {"warehouse__store__id__exact": store_a.pk})

    assert {lv.warehouse_id for lv in by_barcode.context["cl"].result_list} == {
        world["central"].id, store_a.warehouse_id}
    assert [lv.warehouse_id for lv in by_store.context["cl"].result_list] == [store_a.warehouse_id]


# --- ledgers and documents are not editable by hand ------------------------------------------


@pytest.mark.parametrize("label", LEDGERS + DOCUMENTS)
@pytest.mark.parametrize("as_superuser", [False, True])
def test_ledgers_and_documents_refuse_edit_and_delete(client, world, hq, label, as_superuser):
    if as_superuser:
        get_user_model().objects.filter(pk=hq.pk).update(is_superuser=True)
    model = next(m for m in admin.site._registry if f"{m._meta.app_label}.{m._meta.model_name}" == label)
    obj = model.objects.order_by("pk").first()
    before = {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields}

    change = client.post(url(label, "change", obj.pk), {"note": "edited", "on_hand": "999", "qty": "999"})
    delete = client.post(url(label, "delete", obj.pk), {"post": "yes"})
    listing = client.get(url(label, "changelist"))

    assert change.status_code == 403
    assert delete.status_code == 403
    action_form = listing.context["action_form"]
    assert action_form is None or "delete_selected" not in dict(action_form.fields["action"].choices)
    obj.refresh_from_db()
    assert {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields} == before


@pytest.mark.parametrize("label", LEDGERS + ["inventory.replenishmentproposal"])
def test_ledgers_cannot_be_added_by_hand(client, world, label):
    assert client.get(url(label, "add")).status_code == 403


def test_stock_level_page_never_offers_on_hand_as_an_input(client, world):
    lv = level(world["central"], world["skus"][0])

    response = client.get(url("inventory.stocklevel", "change", lv.pk))

    assert response.status_code == 200
    assert 'name="on_hand"' not in response.content.decode()
    assert 'name="reserved"' not in response.content.decode()


# --- stock levels: adjust and move to damaged ------------------------------------------------


def adjust(client, warehouse, sku, delta, note="found in the back room", bucket=Bucket.SELLABLE):
    data = {"warehouse": warehouse.pk, "sku": sku.pk, "bucket": bucket, "delta": delta, "note": note}
    return client.post(reverse("admin:inventory_stocklevel_adjust"), data)


def test_adjust_form_prefills_from_a_level(client, world):
    lv = level(world["central"], world["skus"][0])

    response = client.get(reverse("admin:inventory_stocklevel_adjust"), {"level": lv.pk})

    assert response.status_code == 200
    assert response.context["form"].initial == {"warehouse": lv.warehouse_id, "sku": lv.sku_id,
                                                "bucket": Bucket.SELLABLE}
    assert client.get(reverse("admin:inventory_stocklevel_adjust"), {"level": "abc"}).status_code == 200


def test_adjust_writes_an_adjustment_move(client, world, hq):
    central, sku = world["central"], world["skus"][0]

    response = adjust(client, central, sku, 5)

    assert response.status_code == 302
    assert on_hand(central, sku) == 55
    move = StockMove.objects.get(reason=MoveReason.ADJUSTMENT)
    assert (move.warehouse_id, move.sku_id, move.qty, move.actor, move.note) == (
        central.id, sku.id, 5, hq, "found in the back room")


def test_adjust_below_available_shows_the_error_and_changes_nothing(client, world):
    central, sku = world["central"], world["skus"][0]  # 50 on hand, 2 reserved

    response = adjust(client, central, sku, -49)

    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert any("Not enough stock" in str(e) and sku.code in str(e) for e in errors)
    assert on_hand(central, sku) == 50
    assert not StockMove.objects.filter(reason=MoveReason.ADJUSTMENT).exists()


def test_adjust_rejects_zero_and_a_missing_reason(client, world):
    central, sku = world["central"], world["skus"][0]

    zero = adjust(client, central, sku, 0)
    no_reason = adjust(client, central, sku, 3, note="")

    assert zero.status_code == no_reason.status_code == 200
    assert "delta" in zero.context["form"].errors
    assert "note" in no_reason.context["form"].errors
    assert not StockMove.objects.filter(reason=MoveReason.ADJUSTMENT).exists()


def test_move_to_damaged_asks_for_a_quantity_then_quarantines(client, world, hq):
    central, sku = world["central"], world["skus"][1]
    lv = level(central, sku)

    ask = action(client, "inventory.stocklevel", "move_to_damaged", [lv])
    done = action(client, "inventory.stocklevel", "move_to_damaged", [lv], apply="1", qty="3", note="水渍")

    assert ask.status_code == 200 and "qty" in ask.context["form"].fields
    assert on_hand(central, sku) == 47
    assert on_hand(central, sku, Bucket.DAMAGED) == 3
    assert set(StockMove.objects.filter(reason=MoveReason.QUARANTINE).values_list("qty", "bucket")) == {
        (-3, Bucket.SELLABLE), (3, Bucket.DAMAGED)}
    assert any("damaged" in m for m in page_messages(done))


def test_move_to_damaged_beyond_stock_reports_and_changes_nothing(client, world):
    central, sku = world["central"], world["skus"][1]
    lv = level(central, sku)

    done = action(client, "inventory.stocklevel", "move_to_damaged", [lv], apply="1", qty="51", note="破损")

    assert any("Not enough stock" in m for m in page_messages(done))
    assert on_hand(central, sku) == 50
    assert not StockMove.objects.filter(reason=MoveReason.QUARANTINE).exists()


# --- transfers -------------------------------------------------------------------------------


def test_transfer_add_page_creates_a_draft_through_the_service(client, world, hq):
    central, store_a, skus = world["central"], world["store_a"], world["skus"]
    data = {"source": central.pk, "destination": store_a.warehouse_id, "note": "周末补货",
            **lines([{"sku": skus[0].pk, "qty": "4"}, {"sku": skus[1].pk, "qty": "2"},
                     {"sku": "", "qty": ""}])}

    response = client.post(url("inventory.transfer", "add"), data)

    transfer = Transfer.objects.get(note="周末补货")
    assert response.status_code == 302 and response.url == url("inventory.transfer", "change", transfer.pk)
    assert transfer.status == Transfer.Status.DRAFT and transfer.created_by == hq
    assert sorted(transfer.lines.values_list("sku_id", "qty")) == sorted([(skus[0].id, 4), (skus[1].id, 2)])
    assert on_hand(central, skus[0]) == 50  # nothing moves before shipping


def test_transfer_add_page_shows_domain_and_form_errors(client, world):
    central, skus = world["central"], world["skus"]
    count = Transfer.objects.count()

    same = client.post(url("inventory.transfer", "add"),
                       {"source": central.pk, "destination": central.pk,
                        **lines([{"sku": skus[0].pk, "qty": "1"}])})
    empty = client.post(url("inventory.transfer", "add"),
                        {"source": central.pk, "destination": world["store_a"].warehouse_id,
                         **lines([{"sku": "", "qty": ""}])})

    assert same.status_code == empty.status_code == 200
    assert "destination" in same.context["form"].errors
    assert empty.context["formset"].non_form_errors()
    assert Transfer.objects.count() == count


def test_ship_and_receive_actions_move_the_stock(client, world, hq):
    central, store_a, sku = world["central"], world["store_a"], world["skus"][1]
    transfer = services.transfer_create(source=central, destination=store_a.warehouse, lines=[(sku.id, 6)])

    shipped = action(client, "inventory.transfer", "ship", [transfer])
    transfer.refresh_from_db()
    in_transit = (transfer.status, on_hand(central, sku), on_hand(store_a.warehouse, sku))
    received = action(client, "inventory.transfer", "receive_all", [transfer])
    transfer.refresh_from_db()

    assert in_transit == (Transfer.Status.SHIPPED, 44, 0)
    assert (transfer.status, transfer.shipped_by, transfer.received_by) == (Transfer.Status.RECEIVED, hq, hq)
    assert on_hand(store_a.warehouse, sku) == 6
    assert any("shipped" in m for m in page_messages(shipped))
    assert any("received" in m for m in page_messages(received))


def test_ship_without_stock_shows_the_error_and_changes_nothing(client, world):
    central, store_a, sku = world["central"], world["store_a"], world["skus"][1]
    transfer = services.transfer_create(source=central, destination=store_a.warehouse, lines=[(sku.id, 51)])
    moves = StockMove.objects.count()

    response = action(client, "inventory.transfer", "ship", [transfer])

    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.DRAFT
    assert StockMove.objects.count() == moves
    assert any(transfer.number in m and "Not enough stock" in m for m in page_messages(response))


def test_cancel_refuses_a_shipped_transfer(client, world):
    central, store_a, sku = world["central"], world["store_a"], world["skus"][1]
    draft = services.transfer_create(source=central, destination=store_a.warehouse, lines=[(sku.id, 1)])
    shipped = services.transfer_create(source=central, destination=store_a.warehouse, lines=[(sku.id, 2)])
    services.transfer_ship(transfer=shipped)

    response = action(client, "inventory.transfer", "cancel", [draft, shipped])

    draft.refresh_from_db()
    shipped.refresh_from_db()
    assert (draft.status, shipped.status) == (Transfer.Status.CANCELLED, Transfer.Status.SHIPPED)
    texts = page_messages(response)
    assert any(shipped.number in m for m in texts)
    assert any("1 transfer(s) cancelled" in m for m in texts)


def test_receive_page_records_damaged_and_lost_units(client, world):
    central, store_a, sku = world["central"], world["store_a"], world["skus"][1]
    transfer = services.transfer_create(source=central, destination=store_a.warehouse, lines=[(sku.id, 5)])
    services.transfer_ship(transfer=transfer)
    receive_url = reverse("admin:inventory_transfer_receive", args=[transfer.pk])

    form = client.get(receive_url)
    too_many = client.post(receive_url, {**lines([{"sellable": "5", "damaged": "1"}]),
                                         "lines-INITIAL_FORMS": "1"})
    done = client.post(receive_url, {**lines([{"sellable": "3", "damaged": "1"}]),
                                     "lines-INITIAL_FORMS": "1"})

    assert form.status_code == 200 and sku.code in form.content.decode()
    assert too_many.status_code == 200 and too_many.context["form"].non_field_errors()
    assert done.status_code == 302
    line = transfer.lines.get()
    assert (line.qty_received, line.qty_damaged, line.discrepancy) == (3, 1, 1)
    assert on_hand(store_a.warehouse, sku) == 3
    assert on_hand(store_a.warehouse, sku, Bucket.DAMAGED) == 1


# --- receipts, counts, proposals -------------------------------------------------------------


def test_receipt_add_page_receives_the_goods(client, world, hq):
    central, sku = world["central"], world["skus"][4]
    data = {"warehouse": central.pk, "supplier": "宁波针织厂", "supplier_reference": "DN-778",
            **lines([{"sku": sku.pk, "qty": "12", "unit_cost": "18.60"},
                     {"sku": "", "qty": "", "unit_cost": ""}])}

    response = client.post(url("inventory.receipt", "add"), data)

    receipt = Receipt.objects.get(supplier_reference="DN-778")
    assert response.status_code == 302
    assert receipt.received_by == hq
    assert list(receipt.lines.values_list("sku_id", "qty", "unit_cost")) == [(sku.id, 12, Decimal("18.60"))]
    assert on_hand(central, sku) == 62
    assert StockMove.objects.filter(reference=receipt.number, reason=MoveReason.RECEIPT, qty=12).exists()


def test_count_add_and_apply_post_the_difference(client, world, hq):
    store_a, sku = world["store_a"], world["skus"][0]  # 10 on hand at store A
    added = client.post(url("inventory.stockcount", "add"),
                        {"warehouse": store_a.warehouse_id, **lines([{"sku": sku.pk, "counted": "7"}])})
    count = StockCount.objects.filter(created_by=hq).get()

    response = action(client, "inventory.stockcount", "apply_count", [count])

    count.refresh_from_db()
    assert added.status_code == 302
    assert count.status == StockCount.Status.APPLIED and count.applied_by == hq
    assert on_hand(store_a.warehouse, sku) == 7
    assert StockMove.objects.get(reason=MoveReason.COUNT).qty == -3
    assert any("applied" in m for m in page_messages(response))


def test_a_count_applied_after_a_sale_keeps_the_sale(client, world, hq):
    # Given store A's shelf counted at 7 in the admin while the books said 10
    store_a, sku = world["store_a"], world["skus"][0]
    client.post(url("inventory.stockcount", "add"),
                {"warehouse": store_a.warehouse_id, **lines([{"sku": sku.pk, "counted": "7"}])})
    count = StockCount.objects.filter(created_by=hq).get()
    # When the till sells one before HQ applies the count
    services.stock_sell(warehouse=store_a.warehouse, lines=[(sku.id, 1)], reference="POS-1")
    response = action(client, "inventory.stockcount", "apply_count", [count])

    # Then the three found missing are written off and the sale stays: 6 on the shelf and on the books
    assert any("applied" in m for m in page_messages(response))
    assert on_hand(store_a.warehouse, sku) == 6
    assert StockMove.objects.get(reference=count.number).qty == -3
    assert list(count.lines.values_list("expected", "difference")) == [(10, -3)]


def test_applying_a_count_twice_reports_and_changes_nothing(client, world):
    count = StockCount.objects.get()
    action(client, "inventory.stockcount", "apply_count", [count])
    moves = StockMove.objects.count()

    again = action(client, "inventory.stockcount", "apply_count", [count])

    assert StockMove.objects.count() == moves
    assert any(count.number in m for m in page_messages(again))


def test_accepting_a_proposal_drafts_the_transfer(client, world):
    proposal = ReplenishmentProposal.objects.get()
    assert proposal.kind == ReplenishmentProposal.Kind.TRANSFER

    action(client, "inventory.replenishmentproposal", "accept", [proposal])

    proposal.refresh_from_db()
    assert proposal.status == ReplenishmentProposal.Status.ACCEPTED
    assert proposal.transfer.status == Transfer.Status.DRAFT
    assert list(proposal.transfer.lines.values_list("sku_id", "qty")) == [(proposal.sku_id, proposal.qty)]


# --- staff and catalog -----------------------------------------------------------------------


def test_staff_add_page_creates_login_profile_and_group(client, world):
    store_a = world["store_a"]
    data = {"username": "liuyang", "password": "Guide-pass-88", "display_name": "刘洋", "employee_no": "E9001",
            "role": Role.GUIDE, "stores": [store_a.pk], "guide_code": "G-88"}

    response = client.post(url("stores.staffprofile", "add"), data)

    profile = StaffProfile.objects.get(employee_no="E9001")
    assert response.status_code == 302
    assert profile.user.username == "liuyang" and profile.user.check_password("Guide-pass-88")
    assert list(profile.stores.all()) == [store_a]
    assert list(profile.user.groups.values_list("name", flat=True)) == [Role.GUIDE.value]


def test_staff_add_page_shows_service_errors(client, world):
    weak = client.post(url("stores.staffprofile", "add"),
                       {"username": "x1", "password": "123", "display_name": "x", "employee_no": "E1",
                        "role": Role.CLERK, "stores": [world["store_a"].pk]})
    no_region = client.post(url("stores.staffprofile", "add"),
                            {"username": "x2", "password": "Guide-pass-88", "display_name": "x",
                             "employee_no": "E2", "role": Role.REGIONAL_MANAGER})

    assert "password" in weak.context["form"].errors
    assert "region" in no_region.context["form"].errors
    assert not get_user_model().objects.filter(username__in=["x1", "x2"]).exists()


def test_moving_a_category_rewrites_the_subtree_paths(client, hq):
    apparel = CategoryFactory(code="apparel", name="服装", path="apparel")
    tops = CategoryFactory(code="tops", name="上装", parent=apparel, path="apparel/tops")
    tees = CategoryFactory(code="tshirts", name="T恤", parent=tops, path="apparel/tops/tshirts")
    sale = CategoryFactory(code="sale", name="特卖", path="sale")

    moved = client.post(url("catalog.category", "change", tops.pk),
                        {"parent": sale.pk, "code": "tops", "name": "上装"})
    loop = client.post(url("catalog.category", "change", sale.pk),
                       {"parent": tees.pk, "code": "sale", "name": "特卖"})

    assert moved.status_code == 302
    assert loop.status_code == 200 and "parent" in loop.context["adminform"].form.errors
    assert dict(Category.objects.values_list("code", "path")) == {
        "apparel": "apparel", "sale": "sale", "tops": "sale/tops", "tshirts": "sale/tops/tshirts"}


# --- who may see what ------------------------------------------------------------------------


def test_store_staff_cannot_enter_the_admin(client, world):
    clerk = get_user_model().objects.get(username="zhang")
    client.force_login(clerk)

    for path in (reverse("admin:index"), url("inventory.stocklevel", "changelist"),
                 url("catalog.sku", "add")):
        response = client.get(path)
        assert response.status_code == 302 and reverse("admin:login") in response.url, path


def test_a_clerk_with_admin_access_still_sees_only_their_store_and_no_hq_pages(client, world):
    clerk = get_user_model().objects.get(username="zhang")
    get_user_model().objects.filter(pk=clerk.pk).update(is_staff=True)
    client.force_login(clerk)
    store_a = world["store_a"]

    levels = client.get(url("inventory.stocklevel", "changelist"))

    assert levels.status_code == 200
    assert {lv.warehouse_id for lv in levels.context["cl"].result_list} == {store_a.warehouse_id}
    for path in (url("catalog.sku", "add"), url("inventory.receipt", "add"), url("inventory.transfer", "add"),
                 url("stores.staffprofile", "add"), reverse("admin:inventory_stocklevel_adjust"),
                 url("inventory.stockmove", "changelist")):
        assert client.get(path).status_code == 403, path


def test_regional_manager_sees_their_region_and_cannot_change_catalog_or_stock(client, world):
    central, store_a, sku = world["central"], world["store_a"], world["skus"][0]
    nanjing = CityFactory(code="NJ", name="南京", region=RegionFactory(code="JS", name="江苏"))
    nj_central = WarehouseFactory(kind=Warehouse.Kind.CENTRAL, city=nanjing)
    nj_store = StoreFactory(code="NJ001", city=nanjing)
    away = services.transfer_create(source=nj_central, destination=nj_store.warehouse, lines=[(sku.id, 1)])
    regional = staff(Role.REGIONAL_MANAGER, "wang", region=store_a.city.region)
    client.force_login(regional)

    transfers = client.get(url("inventory.transfer", "changelist"))
    hidden = action(client, "inventory.transfer", "ship", [away])
    levels = client.get(url("inventory.stocklevel", "changelist"))

    assert away not in transfers.context["cl"].result_list
    assert transfers.context["cl"].result_count == Transfer.objects.exclude(pk=away.pk).count()
    away.refresh_from_db()
    assert away.status == Transfer.Status.DRAFT and hidden.status_code == 200
    assert levels.context["action_form"] is None  # neither "move to damaged" nor any other stock action
    assert client.get(url("catalog.sku", "add")).status_code == 403
    assert client.get(reverse("admin:inventory_stocklevel_adjust")).status_code == 403
    assert adjust(client, central, sku, 5).status_code == 403
    assert on_hand(central, sku) == 50
    assert client.get(url("inventory.transfer", "add")).status_code == 200


def test_domain_errors_reach_head_office_in_chinese_by_default(client, world):
    central, sku = world["central"], world["skus"][0]
    client.defaults.pop("HTTP_ACCEPT_LANGUAGE", None)

    response = adjust(client, central, sku, -49)

    errors = [str(e) for e in response.context["form"].non_field_errors()]
    assert any("可用库存不足" in e for e in errors), errors
