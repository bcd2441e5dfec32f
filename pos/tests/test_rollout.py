"""The counter obeys the roll-out: a store not yet taking part in returns anywhere refuses goods
bought elsewhere, with the reason on the page, and still takes back its own sales."""

import re

import pytest
from django.urls import reverse

from orders import services as order_services
from orders.models import Return
from payments.models import Refund
from stores.models import Capability
from stores.services import capability_set

from .conftest import online_pickup_order, pos_sale

pytestmark = pytest.mark.django_db


def return_uuid(html: str) -> str:
    return re.search(r'name="client_uuid" value="([^"]+)"', html).group(1)


def test_a_store_not_launched_refuses_a_return_from_elsewhere(client_a, store_a, store_b, clerk_a, clerk_b,
                                                              stocked, shift_a):
    shirt, _ = stocked
    capability_set(capability=Capability.RETURN_ANYWHERE, enabled=False, store=store_a)
    online = online_pickup_order(store_b, shirt)
    order_services.pickup_handover(code=online.pickup_code, store=store_b, actor=clerk_b)
    own = pos_sale(store_a, clerk_a, shirt)

    client_a.get(reverse("pos:returns"), {"q": online.number})  # found by its receipt number
    page = client_a.get(reverse("pos:return_detail", args=[online.pk])).content.decode()
    line = online.lines.get()
    refused = client_a.post(reverse("pos:return_detail", args=[online.pk]), {
        "client_uuid": return_uuid(page), f"qty_{line.pk}": "1", f"condition_{line.pk}": "sellable"})
    assert refused.status_code == 422  # the page again, with the reason
    assert f"{store_a} 尚未开通全渠道退货。" in refused.content.decode()
    assert not Return.objects.exists() and not Refund.objects.exists()

    client_a.get(reverse("pos:returns"), {"q": own.number})
    page = client_a.get(reverse("pos:return_detail", args=[own.pk])).content.decode()
    line = own.lines.get()
    taken = client_a.post(reverse("pos:return_detail", args=[own.pk]), {
        "client_uuid": return_uuid(page), f"qty_{line.pk}": "1", f"condition_{line.pk}": "sellable"})
    assert taken.status_code == 302
    assert Return.objects.get().order == own


def test_the_refusal_comes_before_any_manager_approval(client_a, store_a, store_b, clerk_b, stocked, shift_a):
    shirt, _ = stocked
    capability_set(capability=Capability.RETURN_ANYWHERE, enabled=False, store=store_a)
    online = online_pickup_order(store_b, shirt)
    order_services.pickup_handover(code=online.pickup_code, store=store_b, actor=clerk_b)

    # found by the customer's phone, not the receipt: a manager would have to approve, but
    # the store cannot take it back at all, so it says so at once
    page = client_a.get(reverse("pos:return_detail", args=[online.pk])).content.decode()
    line = online.lines.get()
    refused = client_a.post(reverse("pos:return_detail", args=[online.pk]), {
        "client_uuid": return_uuid(page), f"qty_{line.pk}": "1", f"condition_{line.pk}": "sellable"})
    assert refused.status_code == 422
    assert f"{store_a} 尚未开通全渠道退货。" in refused.content.decode()
    assert not Return.objects.exists()
