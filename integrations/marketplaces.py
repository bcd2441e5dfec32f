"""Marketplace adapters: pull a marketplace's orders, push our stock figures to it.

An adapter turns a marketplace's wire format into plain values; it never
touches the database and is only called outside transactions (it talks to the
network).  Marketplaces are configured in ``settings.MARKETPLACES``::

    MARKETPLACES = {
        "tmall": {"adapter": "integrations.marketplaces.HttpJsonMarketplace",
                  "base_url": "https://…", "token": "…", "timeout": 10},
    }

The key ("tmall") is the partner code orders are imported under
(``Order.partner``, channel ``marketplace``), so the import is idempotent on
(channel, partner, the marketplace's order id).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

from o2o.money import FEN

MARKETPLACE_CHANNEL = "marketplace"


class MarketplaceError(Exception):
    """The marketplace could not be reached or answered something we cannot read."""


@dataclass(frozen=True)
class RemoteLine:
    sku_code: str
    qty: int
    # What the marketplace sold one unit at, after its discounts (None: not sent).
    price: Decimal | None = None


@dataclass(frozen=True)
class RemoteOrder:
    external_id: str
    lines: tuple[RemoteLine, ...]
    fulfillment: str = "ship_warehouse"
    store_code: str = ""
    ship_city_code: str = ""
    ship_address: str = ""
    customer_name: str = ""
    customer_phone: str = ""
    paid: bool = False


@dataclass
class OrderBatch:
    orders: list[RemoteOrder]
    cursor: str | None
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (external id or "?", reason)


@dataclass(frozen=True)
class StockFigure:
    sku_code: str
    available: int


class MarketplaceAdapter(abc.ABC):
    channel = MARKETPLACE_CHANNEL

    def __init__(self, code: str, **options: Any):
        self.code = code
        self.options = options

    @abc.abstractmethod
    def orders_fetch(self, *, cursor: str | None) -> OrderBatch:
        """Orders changed after ``cursor`` (None: from the start) and the cursor to ask with next time."""

    @abc.abstractmethod
    def stock_push(self, figures: list[StockFigure]) -> None:
        """Tell the marketplace how many of each SKU it may sell.  Raises MarketplaceError."""


def _text(value: Any, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, (str, int)):
        raise ValueError("not text")
    return str(value)[:max_length]


def _price(value: Any) -> Decimal | None:
    """A unit price sent as a decimal string ("89.00"); floats are refused (money is never a float)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("price is not a decimal string")
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise ValueError("price is not a number") from None
    if not price.is_finite() or price < 0 or price > Decimal("1000000") or price != price.quantize(FEN):
        raise ValueError("price is out of range")
    return price


def remote_order_parse(data: Any) -> RemoteOrder:
    """A marketplace order from its JSON; ValueError when it cannot be one."""
    if not isinstance(data, dict):
        raise ValueError("order is not an object")
    external_id = _text(data.get("id"), 100)
    if not external_id:
        raise ValueError("order has no id")
    lines = []
    for line in data.get("lines") or []:
        if not isinstance(line, dict):
            raise ValueError("line is not an object")
        qty = line.get("qty")
        if isinstance(qty, bool) or not isinstance(qty, int) or not 0 < qty <= 10_000:
            raise ValueError("line quantity is not a positive whole number")
        lines.append(RemoteLine(sku_code=_text(line.get("sku_code"), 40), qty=qty, price=_price(line.get("price"))))
    if not lines:
        raise ValueError("order has no lines")
    return RemoteOrder(external_id=external_id, lines=tuple(lines),
                       fulfillment=_text(data.get("fulfillment") or "ship_warehouse", 20),
                       store_code=_text(data.get("store_code"), 20),
                       ship_city_code=_text(data.get("ship_city_code"), 20),
                       ship_address=_text(data.get("ship_address"), 300),
                       customer_name=_text(data.get("customer_name"), 100),
                       customer_phone=_text(data.get("customer_phone"), 20),
                       paid=bool(data.get("paid")))


class HttpJsonMarketplace(MarketplaceAdapter):
    """A marketplace speaking plain JSON over HTTP with a bearer token.

    ``GET {base_url}/orders?cursor=…`` → ``{"orders": [...], "cursor": "…"}``;
    ``POST {base_url}/stock`` with ``{"items": [{"sku_code", "available"}]}`` → 2xx.
    """

    def _client(self) -> httpx.Client:
        headers = {"User-Agent": "o2o-marketplace/1"}
        if self.options.get("token"):
            headers["Authorization"] = f"Bearer {self.options['token']}"
        return httpx.Client(base_url=str(self.options["base_url"]).rstrip("/"), headers=headers,
                            timeout=float(self.options.get("timeout", 10)), trust_env=False)

    def orders_fetch(self, *, cursor: str | None) -> OrderBatch:
        params = {"cursor": cursor} if cursor else {}
        try:
            with self._client() as client:
                response = client.get("/orders", params=params)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise MarketplaceError(f"{self.code}: orders not fetched: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("orders"), list):
            raise MarketplaceError(f"{self.code}: unexpected orders answer")
        batch = OrderBatch(orders=[],
                           cursor=str(data["cursor"]) if data.get("cursor") is not None else cursor)
        for item in data["orders"]:
            try:
                batch.orders.append(remote_order_parse(item))
            except ValueError as exc:
                ident = str(item.get("id", "?"))[:100] if isinstance(item, dict) else "?"
                batch.rejected.append((ident, str(exc)))
        return batch

    def stock_push(self, figures: list[StockFigure]) -> None:
        payload = {"items": [{"sku_code": f.sku_code, "available": f.available} for f in figures]}
        try:
            with self._client() as client:
                response = client.post("/stock", json=payload)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise MarketplaceError(f"{self.code}: stock not pushed: {exc}") from exc


def marketplaces() -> dict[str, MarketplaceAdapter]:
    """The configured marketplaces by partner code."""
    found = {}
    for code, options in (getattr(settings, "MARKETPLACES", None) or {}).items():
        options = dict(options)
        cls = import_string(options.pop("adapter", "integrations.marketplaces.HttpJsonMarketplace"))
        found[code] = cls(code, **options)
    return found
