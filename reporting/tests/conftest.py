"""A fixture day built with the real order services, so every dashboard figure can be checked by hand.

Store A (西湖店) holds 5 of each SKU, central 50; every SKU lists at 99.00.

  POS sale 1   store A, SKU0 × 2 (member M, guide G)         198.00
  POS sale 2   store A, SKU1 × 1 less 9.00 discount            90.00
  web pickup   store A, SKU2 × 1 (member M), paid, handed over  99.00
  web ship     central, SKU3 × 1, paid, not shipped             99.00
  web unpaid   store A pickup, SKU4 × 1, never paid              —
  return 1     one unit of POS sale 1 at store A                −99.00
  return 2     the web pickup order, received at store B        −99.00
"""

import uuid
from decimal import Decimal

import pytest

from members.models import CommissionRule
from members.services.members import member_register
from orders import services
from reporting import rollups
from orders.models import Channel, Fulfillment
from orders.services import LineIn, ReturnLineIn, TenderIn
from stores.models import Role
from stores.tests.factories import StaffFactory


@pytest.fixture
def guide_a(store_a):
    return StaffFactory(role=Role.GUIDE, store=store_a, guide_code="G-A-01", display_name="刘洋")


@pytest.fixture
def fixture_day(stocked, central, store_a, store_b, clerk_a, clerk_b, guide_a):
    skus = stocked
    CommissionRule.objects.create(rate_percent=Decimal("5.00"))
    member = member_register(phone="+8613800000001", channel=Channel.POS, store_id=store_a.pk)
    sale1 = services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(skus[0].id, 2)],
                                     tenders=[TenderIn("cash", Decimal("198.00"))], actor=clerk_a,
                                     member=member, guide_id=guide_a.pk).order
    sale2 = services.pos_sale_create(store=store_a, client_uuid=uuid.uuid4(), lines=[LineIn(skus[1].id, 1)],
                                     tenders=[TenderIn("cash", Decimal("90.00"))], actor=clerk_a,
                                     discount=Decimal("9.00")).order
    pickup = services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store_a,
                                  lines=[LineIn(skus[2].id, 1)], member=member).order
    services.order_pay(order=pickup, tenders=[TenderIn("cash", pickup.total)], store=store_a)
    services.pickup_handover(code=pickup.pickup_code, store=store_a, actor=clerk_a)
    shipped = services.order_place(channel=Channel.MINI_PROGRAM, fulfillment=Fulfillment.SHIP_WAREHOUSE,
                                   lines=[LineIn(skus[3].id, 1)]).order
    services.order_pay(order=shipped, tenders=[TenderIn("cash", shipped.total)])
    services.order_place(channel=Channel.WEB, fulfillment=Fulfillment.PICKUP, store=store_a,
                         lines=[LineIn(skus[4].id, 1)])
    line1 = sale1.lines.get()
    services.return_create(order=sale1, store=store_a, lines=[ReturnLineIn(line1.id, 1)], actor=clerk_a)
    services.return_create(order=pickup, store=store_b, lines=[ReturnLineIn(pickup.lines.get().id, 1)],
                           actor=clerk_b)
    today = rollups.business_today()
    rollups.sales_rollup_refresh(first=today, last=today)
    return {"day": today, "member": member, "sale1": sale1, "sale2": sale2, "pickup": pickup,
            "shipped": shipped, "skus": skus}
