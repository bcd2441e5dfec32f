"""Who may call the API: partner keys (hashed, scoped, revocable), store staff sessions, rate limits."""

import hashlib
import re
import threading
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from o2o import ratelimit
from o2o.apiauth import CATALOG_READ, ORDERS_READ, partner_key_revoke
from o2o.models import PartnerKey
from tests.api.conftest import bearer, idem

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"
SKUS = "/api/v1/catalog/skus/"


def test_no_key_is_401_with_a_bearer_challenge():
    response = APIClient().get(SKUS)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", [
    "Bearer o2o_nosuchprefix_secret",
    "Bearer not-a-key",
    "Bearer",
    "Bearer a b",
    "Bearer o2o__",
])
def test_malformed_or_unknown_key_is_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(SKUS)

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_right_prefix_wrong_secret_is_401(make_key):
    key, raw = make_key()
    forged = raw.rsplit("_", 1)[0] + "_" + "x" * 43

    response = bearer(forged).get(SKUS)

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_revoked_key_is_401(make_key):
    key, raw = make_key()
    assert bearer(raw).get(SKUS).status_code == 200

    partner_key_revoke(key=key)
    response = bearer(raw).get(SKUS)

    assert response.status_code == 401
    assert response.json()["code"] == "api_key_revoked"


def test_only_a_hash_of_the_key_is_stored(make_key):
    key, raw = make_key()
    key.refresh_from_db()

    assert raw not in {key.prefix, key.key_hash}
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(f"o2o_{key.prefix}_")


def test_missing_scope_is_403_insufficient_scope(make_key):
    _key, raw = make_key(scopes=[CATALOG_READ])
    client = bearer(raw)

    assert client.get(SKUS).status_code == 200
    read = client.get(ORDERS)
    write = client.post(ORDERS, {}, format="json", **idem())

    assert read.status_code == 403 and read.json()["code"] == "insufficient_scope"
    assert "orders:read" in read.json()["message"]
    assert write.status_code == 403 and write.json()["code"] == "insufficient_scope"


def test_read_scope_does_not_allow_writes(make_key, stocked, store_a):
    _key, raw = make_key(scopes=[ORDERS_READ])

    response = bearer(raw).post(ORDERS, {"fulfillment": "pickup", "store": store_a.pk,
                                         "lines": [{"sku": stocked[0].pk,
                                                    "qty": 1}]}, format="json", **idem())

    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


def test_staff_may_not_place_orders_and_partners_may_not_hand_over(clerk_a, partner, stocked, store_a):
    _user, staff = clerk_a
    _key, client = partner

    placed_by_staff = staff.post(ORDERS, {"fulfillment": "pickup", "store": store_a.pk,
                                          "lines": [{"sku": stocked[0].pk,
                                                     "qty": 1}]}, format="json", **idem())
    handover_by_partner = client.post("/api/v1/pickups/handover/", {"code": "12345678"}, format="json",
                                      **idem())

    assert placed_by_staff.status_code == handover_by_partner.status_code == 403
    assert placed_by_staff.json()["code"] == handover_by_partner.json()["code"] == "caller_not_allowed"


def test_a_logged_in_user_without_a_staff_profile_is_403(db):
    user = get_user_model().objects.create_user("shopper", password="pw-12345678")
    client = APIClient()
    client.force_login(user)

    response = client.get(SKUS)

    assert response.status_code == 403
    assert response.json()["code"] == "not_staff"


def test_staff_session_reads_the_catalog(clerk_a, skus):
    _user, client = clerk_a

    response = client.get(SKUS)

    assert response.status_code == 200
    assert len(response.json()["results"]) == len(skus)


def test_messages_follow_accept_language(db):
    english = APIClient().get(SKUS, HTTP_ACCEPT_LANGUAGE="en")
    chinese = APIClient().get(SKUS, HTTP_ACCEPT_LANGUAGE="zh-Hans")

    assert english.json()["code"] == chinese.json()["code"] == "not_authenticated"
    assert english.json()["message"] == "Authentication credentials were not provided."
    assert chinese.json()["message"] != english.json()["message"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese.json()["message"])


def test_rate_limit_answers_429_with_retry_after(make_key):
    _key, raw = make_key(rate_limit=3)
    client = bearer(raw)

    statuses = [client.get(SKUS).status_code for _ in range(4)]
    response = client.get(SKUS)

    assert statuses == [200, 200, 200, 429]
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_rate_limit_default_comes_from_settings(make_key, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    _key, raw = make_key()
    client = bearer(raw)

    assert [client.get(SKUS).status_code for _ in range(3)] == [200, 200, 429]


def test_rate_limits_are_per_key(make_key):
    _a, raw_a = make_key(rate_limit=1)
    _b, raw_b = make_key(rate_limit=1, name="other")

    assert bearer(raw_a).get(SKUS).status_code == 200
    assert bearer(raw_a).get(SKUS).status_code == 429
    assert bearer(raw_b).get(SKUS).status_code == 200


def test_rate_limit_counter_is_atomic_under_concurrency(isolated_redis_keys):
    """50 threads hit one counter at once with a limit of 20: exactly 20 are let through."""
    barrier = threading.Barrier(50)
    results = []
    lock = threading.Lock()

    def hit():
        barrier.wait()
        allowed, _count, _ttl = ratelimit.hit("concurrency", limit=20)
        with lock:
            results.append(allowed)

    threads = [threading.Thread(target=hit) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert results.count(True) == 20
    assert ratelimit.redis_client().ttl(f"{ratelimit.key_prefix()}:concurrency") > 0


def test_create_partner_command_prints_a_working_key_once(db):
    out = StringIO()
    call_command("create_partner", "--name", "Tmall", "--channel", "marketplace", "--scopes", "catalog:read",
                 "stock:read", stdout=out)

    raw = out.getvalue().strip().splitlines()[-1]
    key = PartnerKey.objects.get()
    assert key.partner == "tmall" and key.channel == "marketplace"
    assert key.scopes == ["catalog:read", "stock:read"]
    assert raw not in key.key_hash
    assert bearer(raw).get(SKUS).status_code == 200
    assert bearer(raw).get(ORDERS).status_code == 403


def test_create_partner_refuses_unknown_scopes(db):
    with pytest.raises(Exception, match="unknown scope"):
        call_command("create_partner", "--name", "x", "--channel", "web", "--scopes", "orders:everything",
                     stdout=StringIO())
    assert not PartnerKey.objects.exists()


def test_admin_shows_a_new_key_once(hq_user, client):
    client.force_login(hq_user)

    response = client.post("/admin/o2o/partnerkey/add/", {
        "name": "Web shop", "channel": "web", "partner": "", "scopes": ["catalog:read", "orders:read"],
        "rate_limit_per_minute": ""}, follow=True)

    key = PartnerKey.objects.get()
    shown = [str(m) for m in response.context["messages"]]
    raw = next(found.group(0) for m in shown if (found := re.search(r"o2o_[0-9a-f]{12}_[\w-]{43}", m)))
    assert bearer(raw).get(SKUS).status_code == 200
    assert key.scopes == ["catalog:read", "orders:read"]
    page = client.get(f"/admin/o2o/partnerkey/{key.pk}/change/")
    assert raw not in page.content.decode()


@pytest.mark.parametrize("page", ["o2o/partnerkey", "integrations/webhooksubscription",
                                  "integrations/webhookdelivery", "o2o/idempotencyrecord"])
def test_admin_pages_of_the_partner_api_render(hq_user, client, make_key, page):
    key, _raw = make_key()
    client.force_login(hq_user)

    listing = client.get(f"/admin/{page}/")

    assert listing.status_code == 200
    if page == "o2o/partnerkey":
        assert key.prefix in listing.content.decode()
        revoke = client.post("/admin/o2o/partnerkey/", {"action": "revoke", "_selected_action": [key.pk]})
        assert revoke.status_code == 302
        key.refresh_from_db()
        assert key.revoked_at is not None
