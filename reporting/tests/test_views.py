"""Who may open the dashboard, and what a regional manager sees."""

import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from inventory import services as stock
from orders import services
from reporting import rollups, selectors
from orders.services import LineIn, TenderIn
from stores.models import Role
from stores.tests.factories import CityFactory, RegionFactory, StaffFactory, StoreFactory

pytestmark = pytest.mark.django_db
URL = reverse("dashboard:index")


@pytest.fixture
def other_region_sale(stocked):
    """A 99.00 POS sale in 上海 (region SH), outside the fixture's 浙江."""
    city = CityFactory(code="SH", name="上海", region=RegionFactory(code="SH", name="上海"))
    store = StoreFactory(code="SH001", name="上海南京路店", city=city, warehouse__city=city)
    stock.stock_receive(warehouse=store.warehouse, lines=[(stocked[0].id, 3)])
    services.pos_sale_create(store=store, client_uuid=uuid.uuid4(), lines=[LineIn(stocked[0].id, 1)],
                             tenders=[TenderIn("cash", Decimal("99.00"))])
    today = rollups.business_today()
    rollups.sales_rollup_refresh(first=today, last=today)
    return store


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("role", [Role.CLERK, Role.STORE_MANAGER, Role.GUIDE])
def test_store_staff_get_no_dashboard(client, store_a, role):
    client.force_login(StaffFactory(role=role, store=store_a).user)
    assert client.get(URL).status_code == 403


def test_hq_sees_every_region(client, hq_user, fixture_day, other_region_sale):
    client.force_login(hq_user)
    response = client.get(URL)
    assert response.status_code == 200
    assert response.context["sales"]["totals"]["net"] == Decimal("387.00")  # 288.00 + 99.00 in 上海
    assert b'id="dashboard-data"' in response.content


def test_regional_manager_sees_only_their_region(client, fixture_day, other_region_sale, store_a):
    manager = StaffFactory(role=Role.REGIONAL_MANAGER, region=store_a.city.region).user
    client.force_login(manager)
    response = client.get(URL)
    assert response.status_code == 200
    assert response.context["sales"]["totals"]["net"] == Decimal("189.00")  # store A only; no warehouse orders
    assert other_region_sale.pk not in response.context["scope"].store_ids
    assert "上海南京路店" not in response.content.decode()

    # choosing the other region's store through the URL shows nothing of it
    response = client.get(URL, {"store": other_region_sale.pk})
    assert response.context["invalid"] is True
    assert response.context["sales"]["totals"]["net"] == Decimal("189.00")


def test_region_filter_and_date_range(client, hq_user, fixture_day, other_region_sale):
    client.force_login(hq_user)
    region = other_region_sale.city.region
    response = client.get(URL, {"region": region.pk})
    assert response.context["sales"]["totals"]["net"] == Decimal("99.00")
    day = fixture_day["day"]
    response = client.get(URL, {"start": "2020-01-01", "end": "2020-01-31"})
    assert response.context["sales"]["totals"]["orders"] == 0
    assert len(response.context["sales"]["by_day"]) == 31
    response = client.get(URL, {"start": day.isoformat(), "end": "2020-01-01"})
    assert response.context["invalid"] is True


def test_reports_read_the_replica_when_configured(settings):
    assert selectors.report_db() == "default"
    settings.DATABASES = {**settings.DATABASES, "replica": settings.DATABASES["default"]}
    assert selectors.report_db() == "replica"
