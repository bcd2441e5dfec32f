"""The API docs pages load nothing from a CDN: Swagger UI and ReDoc are the project's own static
files (drf-spectacular-sidecar), so /api/v1/docs/ works offline and where CDNs are blocked."""

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from rest_framework.test import APIClient

URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|["']((?:https?:)?//[^"']+)["']""")


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_reference_only_local_static_files(page):
    response = APIClient().get(page)
    assert response.status_code == 200
    html = response.content.decode()

    urls = [a or b for a, b in URL.findall(html)]
    external = [u for u in urls if re.match(r"^(https?:)?//", u)]
    assert external == [], f"{page} loads from outside the site: {external}"
    assets = [u for u in urls if u.startswith(settings.STATIC_URL)]
    assert any(u.endswith(".js") for u in assets), urls  # the UI itself is among them
    for url in assets:
        assert finders.find(url[len(settings.STATIC_URL):]), f"{url} is not a local static file"
    # the schema the UI reads is ours, by path
    assert "/api/v1/schema/" in html
