import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def english():
    """These tests read the English wording of mismatch reasons and form errors (zh-Hans is the default)."""
    with translation.override("en"):
        yield


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client
