"""Oversized URLs and headers, and mangled cursors: the API's one error shape, never HTML."""

import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from django.db import connection
from django.test import Client

from tests.procs import database_url

ROOT = Path(__file__).resolve().parents[2]


def test_a_too_long_url_is_414_in_the_api_shape(partner):
    _key, client = partner

    response = client.get("/api/v1/catalog/skus/", {"q": "x" * 5000}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 414
    body = response.json()
    assert body["code"] == "request_uri_too_long"
    assert body["message"] == "The URL is too long; send fewer or shorter filters."
    assert body["params"]["max_bytes"] == 4096


def test_a_url_just_under_the_limit_is_served(partner):
    _key, client = partner

    response = client.get("/api/v1/catalog/skus/", {"limit": "2", "pad": "x" * 3900})

    assert response.status_code == 200


def test_one_too_large_header_is_431(partner):
    _key, client = partner

    response = client.get("/api/v1/catalog/skus/", HTTP_X_TRACE="y" * 9000)

    assert response.status_code == 431
    assert response.json()["code"] == "request_headers_too_large"


def test_too_many_header_bytes_together_are_431(partner):
    _key, client = partner
    many = {f"HTTP_X_PART_{i}": "z" * 4000 for i in range(5)}

    response = client.get("/api/v1/catalog/skus/", **many)

    assert response.status_code == 431
    assert response.json()["code"] == "request_headers_too_large"


def test_the_message_follows_accept_language(partner):
    _key, client = partner

    response = client.get("/api/v1/catalog/skus/", {"q": "x" * 5000}, HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.status_code == 414
    assert response.json()["message"] == "网址过长，请减少或缩短筛选条件。"


def test_pages_outside_the_api_are_not_limited_here(db):
    response = Client().get("/pos/login/", {"next": "/pos/?" + "x" * 5000})

    assert response.status_code == 200


# --- cursors ------------------------------------------------------------------------------------


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("cursor", [
    "!!!!",                    # not base64: DRF's lenient decoding read it as the first page
    _cursor("foo"),            # base64 of something that is not a cursor
    _cursor("x=1"),            # unknown token
    _cursor("p=5&p=6"),        # a token twice
    _cursor("r=2&p=5"),        # a direction that is neither 0 nor 1
    _cursor("o=-1"),           # a negative offset
    _cursor("p=abc"),          # a position that is not an id
    "cD0x" + "%",              # truncated / mangled in transit
])
def test_a_corrupted_cursor_is_400_invalid_cursor(partner, cursor):
    _key, client = partner

    response = client.get(f"/api/v1/stores/?cursor={cursor}")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_cursor"
    assert "cursor" in body["fields"]


def test_the_links_we_give_still_work_both_ways(partner, store_a, store_b):
    _key, client = partner

    first = client.get("/api/v1/stores/", {"limit": 1}).json()
    second = client.get(first["next"]).json()
    back = client.get(second["previous"]).json()
    empty = client.get("/api/v1/stores/?cursor=&limit=1").json()

    assert first["results"] and second["results"]
    assert first["results"][0]["id"] != second["results"][0]["id"]
    assert back["results"] == first["results"]
    assert empty["results"] == first["results"]


# --- real gunicorn, started as docker-compose.yml starts it ----------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raw_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    lines = [f"GET {path} HTTP/1.0", f"Host: 127.0.0.1:{port}", "Connection: close",
             *[f"{k}: {v}" for k, v in (headers or {}).items()], "", ""]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _sep, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    content_type = next((h.split(":", 1)[1].strip() for h in header_lines
                         if h.lower().startswith("content-type:")), "")
    return int(status_line.split()[1]), content_type, body


@pytest.fixture
def gunicorn_server(db):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    argv = list(compose["services"]["web"]["command"])
    port = _free_port()
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "o2o.settings", "DEBUG": "0", "GUNICORN_WORKERS": "1",
           "SECRET_KEY": "request-limits-test-" + "k" * 40, "ALLOWED_HOSTS": "127.0.0.1",
           "SECURE_SSL_REDIRECT": "0", "O2O_MANIFEST_STATIC": "0",
           "DATABASE_URL": database_url(connection.settings_dict)}
    proc = subprocess.Popen([sys.executable, "-m", *argv], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _raw_get(port, "/api/v1/nowhere/")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_gunicorn_lets_oversized_requests_through_to_the_api_error_shape(gunicorn_server):
    port = gunicorn_server

    status, content_type, body = _raw_get(port, "/api/v1/catalog/skus/?q=" + "x" * 6000)
    assert (status, content_type) == (414, "application/json")
    assert json.loads(body)["code"] == "request_uri_too_long"

    status, content_type, body = _raw_get(port, "/api/v1/catalog/skus/", {"X-Trace": "y" * 12000})
    assert (status, content_type) == (431, "application/json")
    assert json.loads(body)["code"] == "request_headers_too_large"

    # Beyond gunicorn's own ceiling (8190 bytes of request line) the server itself refuses.
    status, _content_type, _body = _raw_get(port, "/api/v1/catalog/skus/?q=" + "x" * 9000)
    assert status == 414
