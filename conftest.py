"""Shared fixtures: a small city with a central warehouse, two stores and a few SKUs."""

import pytest

from catalog.tests.factories import SkuFactory
from stores.models import Warehouse
from stores.tests.factories import StoreFactory, UserFactory, WarehouseFactory


@pytest.fixture
def central(db):
    return WarehouseFactory(kind=Warehouse.Kind.CENTRAL, code="CW01", name="杭州总仓")


@pytest.fixture
def store_a(db):
    return StoreFactory(code="HZ001", name="西湖店")


@pytest.fixture
def store_b(db):
    return StoreFactory(code="HZ002", name="滨江店")


@pytest.fixture
def sku(db):
    return SkuFactory()


@pytest.fixture
def skus(db):
    return SkuFactory.create_batch(5)


@pytest.fixture
def hq_user(db):
    return UserFactory(username="hq", is_staff=True, is_superuser=True)
