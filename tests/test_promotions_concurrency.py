"""A capped promotion under 20 concurrent sales on real PostgreSQL with real threads: never past its cap.

Online orders that lose the race are placed at the price without the promotion (the server sets the
price); counter sales, whose customer agreed to the promoted price, are refused with
promotion_exhausted and nothing of them is kept.
"""

import uuid
from decimal import Decimal

import pytest

from catalog.tests.factories import SkuFactory
from inventory import services as stock
from o2o.errors import DomainError
from orders import services
from orders.models import Channel, Fulfillment, Order, OrderLinePromotion
from orders.pricing import sale_price
from orders.services import LineIn, TenderIn
from promotions.tests.factories import promotion
from stores.models import Warehouse
from stores.tests.factories import StoreFactory, WarehouseFactory
from tests.test_orders_concurrency import run_threads

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


@pytest.fixture
def world():
    WarehouseFactory(kind=Warehouse.Kind.CENTRAL, code="CW")
    store = StoreFactory(code="S1")
    sku = SkuFactory(list_price=D("99.00"))
    stock.stock_receive(warehouse=store.warehouse, lines=[(sku.id, 100)])
    return store, sku


@pytest.mark.parametrize("cap", [{"max_uses": 5}, {"budget": D("100.00")}])
def test_twenty_orders_at_once_never_pass_the_cap(world, cap):
    store, sku = world
    promo = promotion(code="FLASH", kind="special_price", price=D("79.00"), skus=[sku], **cap)  # 20 off a sale

    def attempt(i):
        return services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP, store=store,
                                    lines=[LineIn(sku.id, 1)], external_id=f"MP{i}").order

    results = run_threads(20, attempt)

    assert all(isinstance(r, Order) for r in results), [r for r in results if not isinstance(r, Order)]
    promoted = [o for o in results if o.total == D("79.00")]
    assert len(promoted) == 5 and len([o for o in results if o.total == D("99.00")]) == 15
    promo.refresh_from_db()
    assert (promo.used_count, promo.used_amount) == (5, D("100.00"))
    assert OrderLinePromotion.objects.filter(promotion=promo).count() == 5


def test_counter_sales_past_the_cap_are_refused_and_leave_nothing(world):
    store, sku = world
    promo = promotion(code="FLASH", kind="special_price", price=D("79.00"), skus=[sku], max_uses=3)

    # Each till priced its basket while the promotion was still there, then all submit at once.
    priced = sale_price(demand={sku.id: 1}, channel=Channel.POS, store_id=store.pk)
    assert priced.total == D("79.00")
    results = run_threads(20, lambda i: services.pos_sale_create(
        store=store, client_uuid=uuid.uuid4(), priced=priced, tenders=[TenderIn("cash", D("79.00"))]).order)

    sold = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(sold) == 3
    assert all(isinstance(e, DomainError) and e.code == "promotion_exhausted" for e in refused), refused
    promo.refresh_from_db()
    assert promo.used_count == 3
    assert Order.objects.count() == 3
    # The next basket is priced without the promotion.
    assert services.pos_sale_create(store=store, client_uuid=uuid.uuid4(), lines=[LineIn(sku.id, 1)],
                                    tenders=[TenderIn("cash", D("99.00"))]).order.total == D("99.00")
