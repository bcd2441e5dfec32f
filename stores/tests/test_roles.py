import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group, Permission

from o2o.errors import Conflict, InvalidInput
from stores.models import Role, StaffProfile, StoreMembership, Warehouse
from stores.roles import roles_sync
from stores.selectors import staff_sees_all, staff_store_ids, staff_warehouse_ids, user_role
from stores.services import staff_create
from stores.tests.factories import CityFactory, RegionFactory, StoreFactory, UserFactory, WarehouseFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Lake-view-2026"


def perms_of(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")}


def make_staff(role, *, username, stores=(), region=None, **extra):
    return staff_create(username=username, password=PASSWORD, display_name=username, role=role,
                        employee_no=f"E-{username}", stores=stores, region=region, **extra)


@pytest.fixture
def other_region_store(db):
    city = CityFactory(code="NJ", name="南京", region=RegionFactory(code="JS", name="江苏"))
    return StoreFactory(code="NJ001", name="南京新街口店", city=city)


# --- roles_sync ------------------------------------------------------------------------------


def test_roles_sync_creates_one_group_per_role_and_is_idempotent():
    first = {role: perms_of(group) for role, group in roles_sync().items()}

    second = {role: perms_of(group) for role, group in roles_sync().items()}

    assert set(first) == set(Role.values)
    assert Group.objects.filter(name__in=Role.values).count() == len(Role.values)
    assert first == second


def test_roles_sync_puts_a_tampered_group_back():
    clerk = roles_sync()[Role.CLERK]
    clerk.permissions.add(Permission.objects.get(codename="delete_sku"))
    clerk.permissions.remove(Permission.objects.get(codename="view_sku"))

    roles_sync(roles=[Role.CLERK])

    assert "catalog.delete_sku" not in perms_of(clerk)
    assert "catalog.view_sku" in perms_of(clerk)


def test_role_permissions_follow_the_role():
    groups = {role: perms_of(group) for role, group in roles_sync().items()}

    hq = groups[Role.HQ_ADMIN]
    inventory_perms = {f"inventory.{p.codename}"
                       for p in Permission.objects.filter(content_type__app_label="inventory")}
    assert inventory_perms <= hq
    assert {"catalog.add_sku", "catalog.change_sku", "stores.add_store", "inventory.change_stocklevel"} <= hq
    assert "auth.change_user" not in hq  # no way to grant oneself superuser

    regional = groups[Role.REGIONAL_MANAGER]
    assert {"catalog.view_sku", "stores.view_store", "inventory.view_stockmove", "inventory.change_transfer",
            "inventory.add_transfer", "inventory.add_stockcount", "inventory.change_stockcount"} <= regional
    assert not {"catalog.add_sku", "catalog.change_sku", "inventory.change_stocklevel",
                "inventory.add_receipt", "stores.change_store"} & regional

    for role in (Role.STORE_MANAGER, Role.CLERK):
        assert {"catalog.view_sku", "catalog.view_product", "inventory.view_stocklevel",
                "inventory.add_stockcount"} <= groups[role]
        assert not {"inventory.change_transfer", "inventory.change_stocklevel", "catalog.change_sku",
                    "inventory.change_stockcount"} & groups[role]

    catalog_views = {f"catalog.{p.codename}" for p in Permission.objects.filter(
        content_type__app_label="catalog", codename__startswith="view_")}
    assert "catalog.view_sku" in catalog_views
    assert groups[Role.GUIDE] == catalog_views


# --- staff_create ----------------------------------------------------------------------------


def test_staff_create_makes_user_profile_memberships_and_group(store_a, store_b):
    profile = make_staff(Role.STORE_MANAGER, username="lina", stores=[store_a, store_b.pk])

    user = authenticate(username="lina", password=PASSWORD)
    assert user == profile.user
    assert not user.is_staff and not user.is_superuser
    assert set(profile.stores.all()) == {store_a, store_b}
    assert list(user.groups.values_list("name", flat=True)) == [Role.STORE_MANAGER.value]
    assert user.has_perm("inventory.add_stockcount")
    assert not user.has_perm("inventory.change_transfer")


def test_admin_roles_may_use_the_admin_but_are_not_superusers(store_a):
    hq = make_staff(Role.HQ_ADMIN, username="chen")
    regional = make_staff(Role.REGIONAL_MANAGER, username="wang", region=store_a.city.region)

    for profile in (hq, regional):
        assert profile.user.is_staff and not profile.user.is_superuser
    assert hq.user.has_perm("inventory.change_stocklevel")
    assert regional.user.has_perm("inventory.change_transfer")
    assert not regional.user.has_perm("catalog.change_sku")


def test_staff_create_guide_keeps_the_guide_code(store_a):
    profile = make_staff(Role.GUIDE, username="liu", stores=[store_a], guide_code="G-01")

    assert profile.guide_code == "G-01"
    assert profile.user.has_perm("catalog.view_sku")
    assert not profile.user.has_perm("inventory.view_stocklevel")


@pytest.mark.parametrize("role, kwargs, code", [
    (Role.REGIONAL_MANAGER, {}, "region_required"),
    (Role.CLERK, {}, "store_required"),
    (Role.GUIDE, {}, "store_required"),
    ("cashier", {}, "unknown_role"),
    (Role.HQ_ADMIN, {"password": "123456"}, "invalid_password"),
    (Role.HQ_ADMIN, {"password": "zhang"}, "invalid_password"),
    (Role.HQ_ADMIN, {"username": "  "}, "username_required"),
    (Role.CLERK, {"stores": [999999]}, "unknown_store"),
])
def test_staff_create_rejects_bad_input_and_creates_nothing(role, kwargs, code):
    args = {"username": "zhang", "password": PASSWORD, "display_name": "张伟", "role": role,
            "employee_no": "E100", **kwargs}

    with pytest.raises(InvalidInput) as err:
        staff_create(**args)

    assert err.value.code == code
    assert not get_user_model().objects.exists()
    assert not StaffProfile.objects.exists()


def test_staff_create_rejects_taken_names_and_creates_nothing(store_a):
    make_staff(Role.GUIDE, username="liu", stores=[store_a], guide_code="G-01")
    users = get_user_model().objects.count()

    with pytest.raises(Conflict) as taken_username:
        make_staff(Role.CLERK, username="LIU", stores=[store_a])
    with pytest.raises(Conflict) as taken_employee_no:
        staff_create(username="other", password=PASSWORD, display_name="x", role=Role.CLERK,
                     employee_no="E-liu", stores=[store_a])
    with pytest.raises(Conflict) as taken_guide_code:
        make_staff(Role.GUIDE, username="yang", stores=[store_a], guide_code="G-01")

    assert [e.value.code for e in (taken_username, taken_employee_no, taken_guide_code)] == [
        "username_taken", "employee_no_taken", "guide_code_taken"]
    assert get_user_model().objects.count() == users
    assert StoreMembership.objects.count() == 1


# --- selectors -------------------------------------------------------------------------------


def test_selectors_scope_each_role(central, store_a, store_b, other_region_store):
    hq = make_staff(Role.HQ_ADMIN, username="chen").user
    regional = make_staff(Role.REGIONAL_MANAGER, username="wang", region=store_a.city.region).user
    manager = make_staff(Role.STORE_MANAGER, username="li", stores=[store_a, store_b]).user
    clerk = make_staff(Role.CLERK, username="zhang", stores=[store_b]).user
    guide = make_staff(Role.GUIDE, username="liu", stores=[store_a]).user
    superuser = UserFactory(username="root", is_superuser=True, is_staff=True)
    nobody = UserFactory(username="visitor")
    nanjing_central = WarehouseFactory(kind=Warehouse.Kind.CENTRAL, city=other_region_store.city)
    every_store = {store_a.id, store_b.id, other_region_store.id}

    assert [user_role(u) for u in (hq, regional, manager, clerk, guide, superuser, nobody)] == [
        Role.HQ_ADMIN, Role.REGIONAL_MANAGER, Role.STORE_MANAGER, Role.CLERK, Role.GUIDE, Role.HQ_ADMIN, None]
    assert staff_store_ids(hq) == staff_store_ids(superuser) == every_store
    assert staff_store_ids(regional) == {store_a.id, store_b.id}
    assert staff_store_ids(manager) == {store_a.id, store_b.id}
    assert staff_store_ids(clerk) == {store_b.id}
    assert staff_store_ids(guide) == {store_a.id}
    assert staff_store_ids(nobody) == set()
    assert staff_sees_all(hq) and staff_sees_all(superuser) and not staff_sees_all(regional)

    assert staff_warehouse_ids(regional) == {central.id, store_a.warehouse_id, store_b.warehouse_id}
    assert staff_warehouse_ids(clerk) == {store_b.warehouse_id}
    assert nanjing_central.id in staff_warehouse_ids(hq)
    assert staff_warehouse_ids(nobody) == set()


def test_inactive_staff_see_nothing(store_a):
    profile = make_staff(Role.CLERK, username="zhang", stores=[store_a])
    profile.is_active = False
    profile.save()
    user = get_user_model().objects.get(pk=profile.user_id)

    assert user_role(user) is None
    assert staff_store_ids(user) == set()
    assert staff_warehouse_ids(user) == set()
