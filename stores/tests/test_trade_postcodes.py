"""HQ keeps each store's trade-area postcode prefixes on the store's admin page."""

import pytest
from django.urls import reverse

from stores.models import TradeAreaPostcode
from stores.tests.factories import StoreFactory, UserFactory

pytestmark = pytest.mark.django_db


def store_form(store, postcodes: list[tuple[str, str]]) -> dict:
    data = {"code": store.code, "name": store.name, "city": store.city_id, "address": store.address,
            "phone": store.phone, "warehouse": store.warehouse_id, "is_active": "on",
            "cash_rounding": store.cash_rounding,
            "trade_areas-TOTAL_FORMS": "0", "trade_areas-INITIAL_FORMS": "0",
            "trade_postcodes-TOTAL_FORMS": str(len(postcodes)), "trade_postcodes-INITIAL_FORMS": "0"}
    for i, (prefix, district) in enumerate(postcodes):
        data[f"trade_postcodes-{i}-prefix"] = prefix
        data[f"trade_postcodes-{i}-district"] = district
    return data


def test_the_store_admin_keeps_postcode_prefixes_and_refuses_what_is_not_digits(client):
    store = StoreFactory(code="PC1", name="西湖店")
    client.force_login(UserFactory(username="hq-postcode", is_staff=True, is_superuser=True))
    url = reverse("admin:stores_store_change", args=[store.pk])

    bad = client.post(url, store_form(store, [("31A0", "")]), HTTP_ACCEPT_LANGUAGE="en")
    assert bad.status_code == 200 and "One to six digits." in bad.content.decode()
    assert not TradeAreaPostcode.objects.exists()

    saved = client.post(url, store_form(store, [("3100", "西湖区"), ("310012", "")]))
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert sorted(TradeAreaPostcode.objects.filter(store=store).values_list("prefix", "district")) == [
        ("3100", "西湖区"), ("310012", "")]
