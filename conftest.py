"""Shared fixtures: a small city with a central warehouse, two stores, a few SKUs in stock and a clerk each."""

import os
from pathlib import Path

import pytest

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from inventory import soldout
from stores.models import Role, Warehouse
from stores.tests.factories import StaffFactory, StoreFactory, UserFactory, WarehouseFactory


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


# The browser tests (pos/tests/test_browser.py, reporting/tests/test_browser.py) drive this Chromium;
# `make test` installs it through scripts/provision-browser.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium_launch():
    """Playwright's launch arguments for the browser tests' Chromium. A missing Chromium is a
    failure that says what to run, not a skip: both browser test files behave the same."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/provision-browser (as root, it installs "
                    f"chromium with apt-get), or `sudo apt-get install chromium`")
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture
def screenshot_dir():
    """Where browser tests keep their screenshots: build/screenshots/ (ignored by git) unless
    O2O_SCREENSHOT_DIR says otherwise (`make screenshots` points it at docs/screenshots/)."""
    folder = Path(os.environ.get("O2O_SCREENSHOT_DIR") or Path(__file__).resolve().parent / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
