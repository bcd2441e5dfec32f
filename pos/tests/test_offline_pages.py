"""The connection light on the POS pages, the offline till page, its service worker and manifest,
and the catalogue snapshot the till keeps for selling offline."""

from decimal import Decimal

import pytest

from .conftest import login

D = Decimal


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/pos/sale/", "/pos/shift/", "/pos/returns/"])
def test_every_pos_page_shows_the_connection_light_in_chinese(store_a, stocked, clerk_a, shift_a, url):
    page = login(clerk_a).get(url).content.decode()
    assert 'id="connection"' in page and 'role="status"' in page
    assert 'data-text-offline="离线"' in page and 'data-text-syncing="同步中 {count} 笔"' in page
    assert "网络已断开：{count} 个扫码已排队" in page
    assert "pos/connection.js" in page
