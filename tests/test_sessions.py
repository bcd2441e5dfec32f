"""Login sessions where production keeps them (SESSION_BACKEND, Redis by default): POS and admin
sign-in, sign-out and the server-side end of a session, without a session row in PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from stores.models import Role
from stores.tests.factories import StaffFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "pass-1234"  # stores.tests.factories.UserFactory's


def _stored(client: Client) -> bool:
    """Whether the client's session is held by the session store on the server."""
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    return caches[settings.SESSION_CACHE_ALIAS].get(f"django.contrib.sessions.cache{key}") is not None


def _pos_sign_in(user) -> Client:
    client = Client()
    response = client.post(reverse("pos:login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("pos:home"), response
    return client


def test_the_suite_runs_on_the_production_session_store():
    assert settings.SESSION_BACKEND == "cache"
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.cache"
    assert settings.SESSION_CACHE_ALIAS == "sessions" and "sessions" in settings.CACHES


def test_pos_sign_in_keeps_the_session_in_redis_and_no_request_touches_the_session_table(store_a):
    clerk = StaffFactory(role=Role.CLERK, store=store_a).user
    # Given a clerk signed in through the POS login page
    client = _pos_sign_in(clerk)
    assert _stored(client)
    assert not Session.objects.exists()
    # When the till loads its pages
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("pos:shift")).status_code == 200
    # Then the session is read and written without a statement on django_session
    assert queries.captured_queries
    assert not [q["sql"] for q in queries.captured_queries if "django_session" in q["sql"]]
    assert not Session.objects.exists()


def test_pos_sign_out_ends_the_session_on_the_server(store_a):
    clerk = StaffFactory(role=Role.CLERK, store=store_a).user
    client = _pos_sign_in(clerk)
    old_cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    # When the clerk signs out
    response = client.post(reverse("pos:logout"))
    assert response.status_code == 302
    # Then the session is gone from Redis, and a copy of the old cookie signs nobody in
    assert caches[settings.SESSION_CACHE_ALIAS].get(f"django.contrib.sessions.cache{old_cookie}") is None
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = old_cookie
    assert replay.get(reverse("pos:shift"))["Location"].startswith(reverse("pos:login"))


def test_a_deactivated_clerk_is_signed_out_on_the_next_request(store_a):
    profile = StaffFactory(role=Role.CLERK, store=store_a)
    client = _pos_sign_in(profile.user)
    assert client.get(reverse("pos:shift")).status_code == 200
    # When the account is deactivated while the session is still in Redis
    profile.user.is_active = False
    profile.user.save(update_fields=["is_active"])
    # Then the till is sent to the login page
    assert client.get(reverse("pos:shift"))["Location"].startswith(reverse("pos:login"))


def test_a_clerk_whose_staff_profile_is_deactivated_reaches_no_store(store_a):
    profile = StaffFactory(role=Role.CLERK, store=store_a)
    client = _pos_sign_in(profile.user)
    profile.is_active = False
    profile.save(update_fields=["is_active"])
    assert client.get(reverse("pos:shift")).status_code == 403


def test_a_session_deleted_on_the_server_signs_the_till_out(store_a):
    """What ending a session from the server does (a lost till): the key leaves Redis."""
    clerk = StaffFactory(role=Role.CLERK, store=store_a).user
    client = _pos_sign_in(clerk)
    session = client.session
    session.delete()
    assert not _stored(client)
    assert client.get(reverse("pos:shift"))["Location"].startswith(reverse("pos:login"))


def test_admin_sign_in_and_out_with_sessions_in_redis(db):
    admin = UserFactory(username="hq-admin", is_staff=True, is_superuser=True)
    client = Client()
    response = client.post(reverse("admin:login"), {"username": admin.username, "password": PASSWORD,
                                                    "next": reverse("admin:index")})
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    assert _stored(client) and not Session.objects.exists()
    assert client.get(reverse("admin:index")).status_code == 200
    client.post(reverse("admin:logout"))
    assert reverse("admin:login") in client.get(reverse("admin:index"))["Location"]


def _settings_from_env(**env: str) -> subprocess.CompletedProcess:
    code = ("import json; from django.conf import settings as s; d = s.DATABASES['default']; "
            "print(json.dumps([s.SESSION_ENGINE, d['CONN_HEALTH_CHECKS'], d.get('DISABLE_SERVER_SIDE_CURSORS', False), "
            "d['CONN_MAX_AGE']]))")
    base = {k: v for k, v in os.environ.items()
            if k not in {"SESSION_BACKEND", "DB_CONN_HEALTH_CHECKS", "DB_POOLER", "DB_CONN_MAX_AGE"}}
    return subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT,
                          env={**base, "DJANGO_SETTINGS_MODULE": "o2o.settings", "DATABASE_URL": settings.DATABASE_URL,
                               "REDIS_URL": settings.REDIS_URL, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("env, expected", [
    ({}, ["django.contrib.sessions.backends.cache", False, False, 60]),
    ({"SESSION_BACKEND": "db", "DB_CONN_HEALTH_CHECKS": "1"}, ["django.contrib.sessions.backends.db", True, False, 60]),
    ({"SESSION_BACKEND": "signed_cookies", "DB_POOLER": "pgbouncer"},
     ["django.contrib.sessions.backends.signed_cookies", False, True, 60]),
])
def test_production_defaults_and_their_switches(env, expected):
    done = _settings_from_env(**env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected


@pytest.mark.parametrize("env, message", [({"SESSION_BACKEND": "file"}, "SESSION_BACKEND must be one of"),
                                          ({"DB_POOLER": "pgpool"}, "DB_POOLER must be empty or 'pgbouncer'")])
def test_an_unknown_choice_stops_the_settings_with_a_clear_error(env, message):
    done = _settings_from_env(**env)
    assert done.returncode != 0 and message in done.stderr
