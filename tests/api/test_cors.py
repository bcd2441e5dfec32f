"""Cross-origin calls from browsers: only configured origins, only /api/v1/."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

SHOP = "https://shop.example.com"


@pytest.fixture(autouse=True)
def shop_origin(settings):
    settings.CORS_ALLOWED_ORIGINS = [SHOP]


def preflight(path: str, origin: str, method: str = "POST"):
    return Client().options(path, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
                            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, idempotency-key")


def test_preflight_from_an_allowed_origin_is_answered(db):
    response = preflight("/api/v1/orders/", SHOP)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in response["Access-Control-Allow-Methods"]
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "if-match"} <= allowed
    assert "Access-Control-Allow-Credentials" not in response


def test_preflight_from_another_origin_gets_no_cors_headers(db):
    response = preflight("/api/v1/orders/", "https://evil.example.net")

    assert response.status_code == 200
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


def test_only_the_api_answers_cross_origin(db):
    response = preflight("/pos/login/", SHOP)

    assert "Access-Control-Allow-Origin" not in response


def test_an_actual_request_carries_the_headers_and_exposes_rate_limits(partner):
    _key, client = partner

    response = client.get("/api/v1/stores/", HTTP_ORIGIN=SHOP)
    refused = client.get("/api/v1/stores/", HTTP_ORIGIN="https://evil.example.net")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SHOP
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"etag", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= exposed
    assert "Access-Control-Allow-Origin" not in refused


def test_origins_come_from_the_environment():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "o2o.settings",
           "CORS_ALLOWED_ORIGINS": " https://a.example.com,https://b.example.com:8443 ,"}
    out = subprocess.run([sys.executable, "-c", "from django.conf import settings; "
                          "print(repr(settings.CORS_ALLOWED_ORIGINS))"],
                         cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                         check=True)

    assert out.stdout.strip() == "['https://a.example.com', 'https://b.example.com:8443']"
