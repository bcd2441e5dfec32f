"""What one dashboard page costs: a pinned number of statements, and no list of every admin model."""

from unittest import mock

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

pytestmark = pytest.mark.django_db
URL = reverse("dashboard:index")

# The user (the session is in Redis), permission checks, the filter choices and every figure of the page, each read
# from its roll-up rows.  A figure that starts reading per store or per day shows up here first.
MAX_QUERIES = 40
PAGE_QUERIES = 23


def test_the_page_is_a_fixed_number_of_statements(client, hq_user, fixture_day):
    client.force_login(hq_user)
    with CaptureQueriesContext(connection) as everything:
        response = client.get(URL)
    assert response.status_code == 200
    assert len(everything) <= MAX_QUERIES, [q["sql"][:120] for q in everything]
    assert len(everything) == PAGE_QUERIES, [q["sql"][:100] for q in everything]
    # The count does not grow with the range or the scope chosen.
    with CaptureQueriesContext(connection) as ranged:
        assert client.get(URL, {"start": "2020-01-01", "end": fixture_day["day"].isoformat()}).status_code == 200
    assert len(ranged) == len(everything)


def test_the_page_frame_does_not_build_the_admin_model_list(client, hq_user, fixture_day):
    client.force_login(hq_user)
    with mock.patch.object(admin.site, "get_app_list", side_effect=AssertionError("model list built")):
        response = client.get(URL)
    assert response.status_code == 200
    assert response.context["available_apps"] == []
    # The admin's frame is still there: header, user tools with the log-out form, breadcrumbs home.
    body = response.content.decode()
    assert 'id="header"' in body and 'id="user-tools"' in body
    assert reverse("admin:logout") in body
    assert f'href="{reverse("admin:index")}"' in body
