"""What the provider adapters share around the SDKs: settings, key material, timeouts, logging.

Settings come from the environment (o2o/settings.py); a key or certificate setting holds either
the PEM text itself or the path of a file holding it, so a deployment can mount its keys as
files.  Nothing here ever logs or prints a secret: ``redacted`` masks every field named in
``SECRET_FIELDS`` before a request or an answer reaches the log.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from django.conf import settings

log = logging.getLogger("payments.providers")

WECHATPAY_DEFAULT_API_URL = "https://api.mch.weixin.qq.com"
ALIPAY_DEFAULT_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
# Fields whose values never reach a log line: signatures, the customer's payment code, keys, and
# the wx.requestPayment parameters (a replayable signed package).
SECRET_FIELDS = frozenset({"sign", "paysign", "auth_code", "private_key", "apiv3_key", "app_private_key",
                           "authorization", "package", "ciphertext", "wechatpay-signature"})
BEIJING = ZoneInfo("Asia/Shanghai")


def setting(name: str) -> str:
    value = getattr(settings, name, "") or ""
    return str(value).strip()


def key_material(name: str) -> str:
    """A key or certificate setting: the text itself, or read from the file the setting names."""
    value = setting(name)
    if value and "-----BEGIN" not in value and "\n" not in value and len(value) < 1024 and os.path.isfile(value):
        with open(value, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    return value


def der_or_pem(text: str) -> str | bytes:
    """PEM text as is; Alipay's console shows bare base64, which the SDK takes as DER bytes."""
    if "-----BEGIN" in text:
        return text
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return text


def timeout_seconds() -> float:
    return float(getattr(settings, "PAYMENTS_HTTP_TIMEOUT_SECONDS", 10) or 10)


def query_attempts() -> int:
    """How many times a read-only call (query, refund query, bill) is tried on a transport error."""
    return max(1, int(getattr(settings, "PAYMENTS_QUERY_ATTEMPTS", 3) or 3))


def beijing_now() -> str:
    """Alipay wants Beijing time in its ``timestamp``; the SDK would stamp the host's local time."""
    return datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("***" if str(k).lower() in SECRET_FIELDS else redacted(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redacted(v) for v in value]
    return value


@contextmanager
def logged_call(provider: str, operation: str, reference: str, request: Any = None) -> Iterator[dict]:
    """Log one call to a provider: what we sent (redacted), what came back (redacted), how long it took.

    The caller puts the answer into the yielded dict (``record["answer"] = …``,
    ``record["status"] = …``); a raised exception is logged and passes through.
    """
    record: dict[str, Any] = {}
    started = time.monotonic()
    try:
        yield record
    except Exception as exc:
        log.warning("%s %s %s failed after %.0f ms: %s; request=%s", provider, operation, reference,
                    (time.monotonic() - started) * 1000, type(exc).__name__, redacted(request))
        raise
    log.info("%s %s %s status=%s in %.0f ms; request=%s; answer=%s", provider, operation, reference,
             record.get("status", ""), (time.monotonic() - started) * 1000, redacted(request),
             redacted(record.get("answer")))
