"""What every POS request costs before its view: the session and cache reads reuse their Redis client."""

import json

import pytest
import redis
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_pos_requests_build_no_redis_client_per_cache_call(client_a, stocked, shift_a, monkeypatch):
    shirt, _ = stocked
    body = json.dumps({"lines": [{"sku": shirt.pk, "qty": 1}]})
    # Warm up: the first requests of a process open the session cache's client.
    assert client_a.get(reverse("pos:sale")).status_code == 200
    assert client_a.post("/pos/till/price/", body, content_type="application/json").status_code == 200
    built = []
    original = redis.Redis.__init__

    def counting_init(self, *args, **kwargs):
        built.append(kwargs.get("connection_pool"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counting_init)
    for _ in range(3):
        assert client_a.get(reverse("pos:sale")).status_code == 200
        response = client_a.post("/pos/till/price/", body, content_type="application/json")
        assert response.status_code == 200 and response.json()["lines"][0]["qty"] == 1
    assert built == []
