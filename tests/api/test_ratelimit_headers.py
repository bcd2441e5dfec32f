"""RateLimit-Limit / -Remaining / -Reset: where a caller stands in its rate-limit window."""

import redis
import yaml
from rest_framework.test import APIClient

from o2o import ratelimit
from tests.api.conftest import bearer

SKUS = "/api/v1/catalog/skus/"
HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def test_a_partner_sees_its_window_count_down_to_the_429(make_key):
    _key, raw = make_key(rate_limit=3)
    client = bearer(raw)

    answers = [client.get(SKUS) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a["RateLimit-Limit"] for a in answers] == ["3"] * 4
    assert [a["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    resets = [int(a["RateLimit-Reset"]) for a in answers]
    assert all(1 <= r <= ratelimit.WINDOW_SECONDS for r in resets)
    assert resets == sorted(resets, reverse=True)  # the same window, never a later one
    assert answers[-1]["RateLimit-Reset"] == answers[-1]["Retry-After"]


def test_the_limit_is_the_default_for_keys_without_their_own(make_key, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 50
    _key, raw = make_key()

    response = bearer(raw).get("/api/v1/stores/")

    assert response.status_code == 200
    assert (response["RateLimit-Limit"], response["RateLimit-Remaining"]) == ("50", "49")


def test_keys_count_apart(make_key):
    _a, raw_a = make_key(rate_limit=5)
    _b, raw_b = make_key(rate_limit=5, name="other")

    bearer(raw_a).get(SKUS)
    bearer(raw_a).get(SKUS)
    other = bearer(raw_b).get(SKUS)

    assert other["RateLimit-Remaining"] == "4"


def test_a_refused_key_is_not_counted_and_gets_no_headers(db):
    response = bearer("o2o_nothing_here").get(SKUS)

    assert response.status_code == 401
    assert not any(h in response for h in HEADERS)


def test_staff_sessions_see_their_window_too(clerk_a, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 7
    _user, client = clerk_a

    response = client.get("/api/v1/stores/")

    assert response.status_code == 200
    assert (response["RateLimit-Limit"], response["RateLimit-Remaining"]) == ("7", "6")


def test_without_redis_nothing_is_promised(make_key, monkeypatch):
    _key, raw = make_key(rate_limit=3)

    def down(*args, **kwargs):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(ratelimit, "hit", down)
    response = bearer(raw).get(SKUS)

    assert response.status_code == 200
    assert not any(h in response for h in HEADERS)


def test_pages_outside_the_api_carry_no_rate_limit_headers(client, db):
    response = client.get("/pos/login/")

    assert not any(h in response for h in HEADERS)


def test_the_schema_documents_the_headers(db):
    document = yaml.safe_load(APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi").content)

    ok = document["paths"]["/api/v1/catalog/skus/"]["get"]["responses"]["200"]
    limited = document["paths"]["/api/v1/orders/"]["post"]["responses"]["429"]
    for answer in (ok, limited):
        assert set(HEADERS) <= set(answer["headers"])
        assert answer["headers"]["RateLimit-Remaining"]["schema"]["type"] == "integer"
