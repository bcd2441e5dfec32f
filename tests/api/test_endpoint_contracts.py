"""The generic endpoint contract (tests/api/mixins.py) applied to order, refund and member endpoints."""

import pytest

from members.services import members
from o2o.apiauth import MEMBERS_READ, ORDERS_READ, ORDERS_WRITE
from tests.api.mixins import Endpoint, EndpointContract
from tests.api.test_order_versions import handed_over, return_one
from tests.api.test_orders import ORDERS, placed

pytestmark = pytest.mark.django_db


class TestOrderDetail(EndpointContract):
    scope = ORDERS_READ

    @pytest.fixture
    def endpoint(self, partner, stocked, store_a):
        order = placed(partner[1], store_a, stocked)
        return Endpoint(f"{ORDERS}{order['id']}/", order_id=order["id"])


class TestOrderPatch(EndpointContract):
    method, scope = "patch", ORDERS_WRITE
    if_match = if_match_required = True
    bad_body, bad_field = {"remark": "x" * 301}, "remark"

    @pytest.fixture
    def endpoint(self, partner, stocked, store_a):
        order = placed(partner[1], store_a, stocked)
        return Endpoint(f"{ORDERS}{order['id']}/", {"remark": "ring twice"}, order_id=order["id"])


class TestOrderCancel(EndpointContract):
    method, scope, idempotent = "post", ORDERS_WRITE, True
    if_match = True
    bad_body, bad_field = {"reason": ["not", "text"]}, "reason"

    @pytest.fixture
    def endpoint(self, partner, stocked, store_a):
        order = placed(partner[1], store_a, stocked)
        return Endpoint(f"{ORDERS}{order['id']}/cancel/", {"reason": "changed mind"}, order_id=order["id"])


class TestOrderReturn(EndpointContract):
    method, scope, idempotent = "post", ORDERS_WRITE, True
    if_match = True
    bad_body, bad_field = {"lines": []}, "lines"

    @pytest.fixture
    def endpoint(self, partner, clerk_a, stocked, store_a):
        order = handed_over(partner[1], clerk_a, store_a, stocked)
        return Endpoint(f"{ORDERS}{order['id']}/returns/",
                        {"store": store_a.pk, "lines": [{"order_line": order["lines"][0]["id"], "qty": 1}]},
                        order_id=order["id"])


class TestOrderRefunds(EndpointContract):
    scope = ORDERS_READ

    @pytest.fixture
    def endpoint(self, partner, clerk_a, stocked, store_a):
        order = handed_over(partner[1], clerk_a, store_a, stocked)
        return_one(partner[1], order, store_a)
        return Endpoint(f"{ORDERS}{order['id']}/refunds/", order_id=order["id"])


class TestRefundDetail(EndpointContract):
    scope = ORDERS_READ

    @pytest.fixture
    def endpoint(self, partner, clerk_a, stocked, store_a):
        order = handed_over(partner[1], clerk_a, store_a, stocked)
        return_one(partner[1], order, store_a)
        refund = partner[1].get(f"{ORDERS}{order['id']}/refunds/").json()["results"][0]
        return Endpoint(f"/api/v1/refunds/{refund['id']}/", order_id=order["id"])


class TestRefundList(EndpointContract):
    scope, isolated = ORDERS_READ, False

    @pytest.fixture
    def endpoint(self, db):
        return Endpoint("/api/v1/refunds/")


class TestMemberDetail(EndpointContract):
    scope = MEMBERS_READ

    @pytest.fixture
    def endpoint(self, db):
        member = members.member_register(phone="13800138000", channel="mini_program")
        return Endpoint(f"/api/v1/members/{member.pk}/")
