"""Sign-in throttling at the POS and the admin: after wrong passwords the right one is refused too,
with a message in Chinese, until the lockout window has passed."""

import time
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from o2o import login_throttle
from stores.models import Role
from stores.tests.factories import StaffFactory, UserFactory

PASSWORD = "Right-pass-2026"


@pytest.fixture
def isolated(settings):
    settings.API_RATE_LIMIT_PREFIX = f"o2o-test:{uuid.uuid4().hex}:ratelimit"
    settings.LOGIN_MAX_FAILURES = 5
    settings.LOGIN_LOCKOUT_SECONDS = 900
    return settings


@pytest.fixture
def clerk(store_a):
    user = StaffFactory(role=Role.CLERK, store=store_a).user
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def staff_user(db):
    user = UserFactory(username="hq-ops", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def sign_in(client, url, username, password):
    return client.post(url, {"username": username, "password": password, "next": ""},
                       HTTP_ACCEPT_LANGUAGE="zh-hans")


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["pos:login", "admin:login"])
def test_eight_wrong_passwords_then_the_right_one_is_refused(isolated, clerk, staff_user, url_name):
    user = clerk if url_name == "pos:login" else staff_user
    client = Client()
    url = reverse(url_name)
    for _attempt in range(8):
        response = sign_in(client, url, user.username, "wrong-guess")
        assert response.status_code == 200

    response = sign_in(client, url, user.username, PASSWORD)

    assert response.status_code == 200  # the sign-in page again, not a redirect into the app
    assert "_auth_user_id" not in client.session
    page = response.content.decode()
    assert "登录失败次数过多" in page and "15 分钟" in page


@pytest.mark.django_db
def test_the_lockout_ends_with_its_window_and_spares_other_addresses(isolated, clerk):
    url = reverse("pos:login")
    for _attempt in range(5):
        sign_in(Client(), url, clerk.username, "wrong-guess")
    client = Client()
    sign_in(client, url, clerk.username, PASSWORD)
    assert "_auth_user_id" not in client.session

    other_till = Client(REMOTE_ADDR="10.0.0.9")
    response = sign_in(other_till, url, clerk.username, PASSWORD)
    assert response.status_code == 302 and "_auth_user_id" in other_till.session

    login_throttle.failures_clear(clerk.username, "127.0.0.1")  # what the window's expiry does
    response = sign_in(client, url, clerk.username, PASSWORD)
    assert response.status_code == 302 and "_auth_user_id" in client.session


@pytest.mark.django_db
def test_fewer_failures_than_the_limit_still_sign_in_and_reset_the_count(isolated, clerk):
    url = reverse("pos:login")
    client = Client()
    for _attempt in range(4):
        sign_in(client, url, clerk.username, "wrong-guess")
    response = sign_in(client, url, clerk.username, PASSWORD)
    assert response.status_code == 302
    assert login_throttle.locked_for(clerk.username, "127.0.0.1") == 0
    for _attempt in range(4):  # the count started again after the success: 4 more are still allowed
        sign_in(Client(), url, clerk.username, "wrong-guess")
    response = sign_in(Client(), url, clerk.username, PASSWORD)
    assert response.status_code == 302


@pytest.mark.django_db
def test_the_window_expires_in_redis(isolated, clerk):
    isolated.LOGIN_LOCKOUT_SECONDS = 1
    url = reverse("pos:login")
    for _attempt in range(5):
        sign_in(Client(), url, clerk.username, "wrong-guess")
    assert login_throttle.locked_for(clerk.username, "127.0.0.1") >= 1

    time.sleep(2.1)
    assert login_throttle.locked_for(clerk.username, "127.0.0.1") == 0
    client = Client()
    assert sign_in(client, url, clerk.username, PASSWORD).status_code == 302
