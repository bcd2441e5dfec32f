"""Partner keys that expire, and rotation: two live keys during a changeover, then only the new one (which keeps
the webhook subscriptions)."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations import webhooks
from o2o.apiauth import KeyNotRotatable, partner_key_revoke, partner_key_rotate
from o2o.models import PartnerKey
from tests.api.conftest import bearer

SKUS = "/api/v1/catalog/skus/"
KEY_RE = re.compile(r"o2o_[0-9a-f]{12}_[\w-]{43}")


def expire(key: PartnerKey) -> None:
    """Move the key's expiry into the past, as if its time had run out."""
    PartnerKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_an_expired_key_is_401_with_its_own_code(make_key):
    key, raw = make_key()
    PartnerKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() + timedelta(hours=1))
    assert bearer(raw).get(SKUS).status_code == 200

    expire(key)
    response = bearer(raw).get(SKUS, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 401
    assert response.json() == {"code": "api_key_expired", "message": "This API key has expired."}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_wins_over_expired(make_key):
    key, raw = make_key()
    expire(key)
    partner_key_revoke(key=key)

    assert bearer(raw).get(SKUS).json()["code"] == "api_key_revoked"


def test_create_partner_with_an_expiry(db):
    out = StringIO()
    call_command("create_partner", "--name", "Web shop", "--channel", "web", "--scopes", "catalog:read",
                 "--expires-in-days", "30", stdout=out)

    key = PartnerKey.objects.get()
    raw = out.getvalue().strip().splitlines()[-1]
    assert timedelta(days=29, hours=23) < key.expires_at - timezone.now() <= timedelta(days=30)
    assert "expires" in out.getvalue()
    assert bearer(raw).get(SKUS).status_code == 200
    with pytest.raises(CommandError):
        call_command("create_partner", "--name", "x", "--channel", "web", "--scopes", "catalog:read",
                     "--expires-in-days", "0", stdout=StringIO())


def test_rotate_gives_two_live_keys_then_only_the_new_one(db, store_a, store_b):
    out = StringIO()
    call_command("create_partner", "--name", "Tmall", "--channel", "marketplace", "--scopes", "catalog:read",
                 "orders:read", "--store", store_a.code, "--rate-limit", "90", stdout=out)
    old = PartnerKey.objects.get()
    old_raw = out.getvalue().strip().splitlines()[-1]

    out = StringIO()
    call_command("create_partner", "--rotate", old.prefix, stdout=out)
    new_raw = out.getvalue().strip().splitlines()[-1]
    new = PartnerKey.objects.exclude(pk=old.pk).get()
    old.refresh_from_db()

    assert (new.name, new.channel, new.partner, new.scopes, new.rate_limit_per_minute) == \
        (old.name, old.channel, "tmall", ["catalog:read", "orders:read"], 90)
    assert list(new.stores.all()) == [store_a]
    assert new.expires_at is None and old.replaced_by == new
    assert timedelta(days=6, hours=23) < old.expires_at - timezone.now() <= timedelta(days=7)
    assert f"The old key {old.prefix} keeps working until" in out.getvalue()
    assert bearer(old_raw).get(SKUS).status_code == 200
    assert bearer(new_raw).get(SKUS).status_code == 200

    expire(old)
    assert bearer(old_raw).get(SKUS).json()["code"] == "api_key_expired"
    assert bearer(new_raw).get(SKUS).status_code == 200


def test_rotate_options(make_key):
    key, _raw = make_key()

    call_command("create_partner", "--rotate", key.prefix, "--grace-days", "0", "--expires-in-days", "90",
                 stdout=StringIO())
    key.refresh_from_db()
    new = key.replaced_by

    assert key.expires_at <= timezone.now() and not key.is_active
    assert timedelta(days=89) < new.expires_at - timezone.now() <= timedelta(days=90)
    with pytest.raises(CommandError, match="revoked or expired"):
        call_command("create_partner", "--rotate", key.prefix, stdout=StringIO())
    with pytest.raises(CommandError, match="no key"):
        call_command("create_partner", "--rotate", "nothing", stdout=StringIO())
    with pytest.raises(CommandError, match="--scopes"):
        call_command("create_partner", "--rotate", new.prefix, "--scopes", "orders:write", stdout=StringIO())
    assert PartnerKey.objects.count() == 2


def test_a_key_is_rotated_once(make_key):
    key, _raw = make_key()
    partner_key_rotate(key=key)

    with pytest.raises(KeyNotRotatable, match="already rotated"):
        partner_key_rotate(key=PartnerKey.objects.get(pk=key.pk))
    assert PartnerKey.objects.count() == 2


def test_a_rotation_never_extends_an_earlier_expiry(make_key):
    key, _raw = make_key()
    soon = timezone.now() + timedelta(days=2)
    PartnerKey.objects.filter(pk=key.pk).update(expires_at=soon)
    key.refresh_from_db()

    partner_key_rotate(key=key)

    key.refresh_from_db()
    assert key.expires_at == soon


def test_an_expired_keys_subscriptions_get_no_events(make_key, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    live, _raw = make_key(name="live")
    gone, _raw2 = make_key(name="gone")
    for key in (live, gone):
        webhooks.subscription_create(key=key, url="http://127.0.0.1/x", events=["order.paid"])
    expire(gone)

    found = webhooks.subscriptions_for("order.paid", channel="mini_program", partner="")

    assert [s.partner_key.name for s in found] == ["live"]


def test_admin_shows_expiry_and_rotates(hq_user, client, make_key):
    key, old_raw = make_key(name="Web shop")
    client.force_login(hq_user)

    response = client.post("/admin/o2o/partnerkey/", {"action": "rotate", "_selected_action": [key.pk]},
                           follow=True, HTTP_ACCEPT_LANGUAGE="en")

    shown = " ".join(str(m) for m in response.context["messages"])
    new_raw = KEY_RE.search(shown).group(0)
    key.refresh_from_db()
    assert new_raw != old_raw and key.prefix in shown
    assert bearer(new_raw).get(SKUS).status_code == 200
    assert bearer(old_raw).get(SKUS).status_code == 200
    assert key.expires_at is not None and key.replaced_by.prefix in new_raw
    listing = client.get("/admin/o2o/partnerkey/").content.decode()
    assert "column-expires_at" in listing and "column-live" in listing

    again = client.post("/admin/o2o/partnerkey/", {"action": "rotate", "_selected_action": [key.pk]},
                        follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "was not rotated" in " ".join(str(m) for m in again.context["messages"])
    assert PartnerKey.objects.count() == 2


def test_admin_sets_an_expiry_on_a_new_key(hq_user, client):
    client.force_login(hq_user)
    client.post("/admin/o2o/partnerkey/add/", {
        "name": "Trial", "channel": "web", "partner": "", "scopes": ["catalog:read"], "rate_limit_per_minute": "",
        "expires_at_0": "2030-01-31", "expires_at_1": "18:00:00"}, HTTP_ACCEPT_LANGUAGE="en")

    key = PartnerKey.objects.get()
    assert timezone.localtime(key.expires_at).strftime("%Y-%m-%d %H:%M") == "2030-01-31 18:00"


def test_webhook_subscriptions_follow_the_rotation(make_key, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    old, old_raw = make_key(name="shop")
    sub = webhooks.subscription_create(key=old, url="http://127.0.0.1/x", events=["order.paid"])

    out = StringIO()
    call_command("create_partner", "--rotate", old.prefix, stdout=out)
    new_raw = out.getvalue().strip().splitlines()[-1]
    expire(old)

    sub.refresh_from_db()
    found = webhooks.subscriptions_for("order.paid", channel="mini_program", partner="")
    assert sub.partner_key.prefix in new_raw and sub.secret.startswith("whsec_")
    assert [s.pk for s in found] == [sub.pk]
    listed = bearer(new_raw).get("/api/v1/webhooks/subscriptions/").json()["results"]
    assert [s["id"] for s in listed] == [sub.pk]
    assert bearer(old_raw).get("/api/v1/webhooks/subscriptions/").status_code == 401
