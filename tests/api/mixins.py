"""A generic contract for API endpoints: one class gives an endpoint its auth, scope, isolation,
error-shape and If-Match tests.

Subclass ``EndpointContract`` in a test module, set what the endpoint needs, and provide an
``endpoint`` fixture that makes the object (as the ``partner`` key, mini-program channel) and returns
an ``Endpoint``.  Each test below then runs against it:

* no key → 401 in the one error shape;
* a key with every scope but the one needed → 403 ``insufficient_scope``;
* another partner's key (``isolated``) → 404, and the object is unchanged;
* a body the endpoint refuses (``bad_body``) → 400 with ``code``, ``message`` and ``fields``;
* a stale If-Match (``if_match``) → 412 ``precondition_failed``, the order's version unchanged;
  ``if_match_required`` → 428 without it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from rest_framework.test import APIClient

from o2o.apiauth import SCOPES
from tests.api.conftest import bearer


@dataclass
class Endpoint:
    url: str
    body: dict = field(default_factory=dict)
    order_id: int | None = None  # the order whose version a change would move


def error_shape(response) -> dict:
    body = response.json()
    assert set(body) >= {"code", "message"}, body
    assert isinstance(body["code"], str) and body["code"] and isinstance(body["message"], str)
    return body


class EndpointContract:
    method = "get"
    scope = ""
    isolated = True
    idempotent = False
    if_match = False
    if_match_required = False
    bad_body: dict | None = None
    bad_field = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Only the tests that apply to the endpoint are collected.
        if not cls.isolated:
            cls.test_another_partners_object_is_not_found = None
        if cls.bad_body is None:
            cls.test_bad_input_is_400_in_the_one_shape = None
        if not cls.if_match:
            cls.test_a_stale_if_match_is_412_and_changes_nothing = None

    def call(self, client: APIClient, endpoint: Endpoint, body: dict | None = None, **headers):
        if self.idempotent:
            headers.setdefault("HTTP_IDEMPOTENCY_KEY", uuid.uuid4().hex)
        if self.method == "get":
            return client.get(endpoint.url, **headers)
        return getattr(client, self.method)(endpoint.url, endpoint.body if body is None else body, format="json",
                                            **headers)

    def version(self, partner, endpoint: Endpoint) -> str | None:
        if endpoint.order_id is None:
            return None
        return partner[1].get(f"/api/v1/orders/{endpoint.order_id}/")["ETag"]

    def test_without_a_key_is_401(self, endpoint):
        response = self.call(APIClient(), endpoint)

        assert response.status_code == 401
        assert error_shape(response)["code"] == "not_authenticated"

    def test_without_its_scope_is_403(self, endpoint, make_key):
        _key, raw = make_key(scopes=[s for s in SCOPES if s != self.scope], name="lacks a scope")

        response = self.call(bearer(raw), endpoint)

        assert response.status_code == 403
        assert error_shape(response)["code"] == "insufficient_scope"

    def test_another_partners_object_is_not_found(self, endpoint, partner, other_partner):
        before = self.version(partner, endpoint)

        response = self.call(other_partner[1], endpoint)

        assert response.status_code == 404
        error_shape(response)
        assert self.version(partner, endpoint) == before

    def test_bad_input_is_400_in_the_one_shape(self, endpoint, partner):
        before = self.version(partner, endpoint)
        headers = {"HTTP_IF_MATCH": before} if before and self.if_match else {}

        response = self.call(partner[1], endpoint, body=self.bad_body, **headers)

        assert response.status_code == 400
        body = error_shape(response)
        assert self.bad_field in body.get("fields", {}), body
        assert self.version(partner, endpoint) == before

    def test_a_stale_if_match_is_412_and_changes_nothing(self, endpoint, partner):
        before = self.version(partner, endpoint)
        stale = f'"{int(before.strip(chr(34))) - 1}"'

        response = self.call(partner[1], endpoint, HTTP_IF_MATCH=stale)

        assert response.status_code == 412
        assert error_shape(response)["code"] == "precondition_failed"
        assert self.version(partner, endpoint) == before
        if self.if_match_required:
            missing = self.call(partner[1], endpoint)
            assert missing.status_code == 428 and error_shape(missing)["code"] == "precondition_required"
