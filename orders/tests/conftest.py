import pytest

from inventory import services as stock
from stores.models import Role
from stores.tests.factories import StaffFactory


@pytest.fixture
def stocked(central, store_a, store_b, skus):
    """Central has 50 of each SKU, store A 5 of each, store B none."""
    stock.stock_receive(warehouse=central, lines=[(s.id, 50) for s in skus])
    stock.stock_receive(warehouse=store_a.warehouse, lines=[(s.id, 5) for s in skus])
    return skus


@pytest.fixture
def clerk_a(store_a):
    return StaffFactory(role=Role.CLERK, store=store_a).user


@pytest.fixture
def clerk_b(store_b):
    return StaffFactory(role=Role.CLERK, store=store_b).user
