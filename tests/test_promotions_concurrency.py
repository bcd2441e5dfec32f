"""A capped promotion under 20 concurrent sales on real PostgreSQL with real threads: never past its cap,
also while returns give uses and budget back.

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
from orders.services import LineIn, ReturnLineIn, TenderIn
from promotions.tests.factories import promotion
from stores.models import Warehouse
from stores.tests.factories import StoreFactory, WarehouseFactory
from tests.concurrency import run_at_once
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


@pytest.mark.parametrize("cap", [{"max_uses": 5}, {"budget": D("100.00")}])
def test_returns_and_new_sales_racing_at_the_cap_never_pass_it(world, cap):
    """The cap is full; five customers return their promoted goods while ten new orders come in, all at
    once.  Each return gives its use and its 20.00 back in its own transaction; a new order takes them
    only once given back.  However the race goes, the promotion counts exactly the promoted sales still
    standing, and never more than its cap."""
    store, sku = world
    promo = promotion(code="FLASH", kind="special_price", price=D("79.00"), skus=[sku], **cap)  # 20 off a sale
    sold = [services.pos_sale_create(store=store, client_uuid=uuid.uuid4(), lines=[LineIn(sku.id, 1)],
                                     tenders=[TenderIn("cash", D("79.00"))]).order for _ in range(5)]
    promo.refresh_from_db()
    assert (promo.used_count, promo.used_amount) == (5, D("100.00"))

    def give_back(order):
        line = order.lines.get()
        return lambda: services.return_create(order=order.pk, store=store, lines=[ReturnLineIn(line.pk, 1)])

    def buy(i):
        return lambda: services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.PICKUP,
                                            store=store, lines=[LineIn(sku.id, 1)], external_id=f"R{i}").order

    jobs = [give_back(o) for o in sold] + [buy(i) for i in range(10)]
    outcomes = run_at_once(jobs)

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    bought = outcomes[5:]
    promoted = [o for o in bought if o.total == D("79.00")]
    assert len(promoted) <= 5 and all(o.total in (D("79.00"), D("99.00")) for o in bought)
    promo.refresh_from_db()
    standing = OrderLinePromotion.objects.filter(promotion=promo, line__qty_returned=0).count()
    assert standing == len(promoted)
    assert (promo.used_count, promo.used_amount) == (len(promoted), D("20.00") * len(promoted))
    assert promo.used_count <= 5 and promo.used_amount <= D("100.00")
