"""Provider adapters and their registry.

``provider_named("wechat_pay")`` for an incoming notification,
``provider_for(tender)`` for a payment's tender.  Adapters read their settings
when called, so a deployment configures them without a restart of anything
but the process, and tests can override settings.
"""

from __future__ import annotations

from payments.exceptions import UnknownProvider
from payments.providers.alipay import AlipayProvider
from payments.providers.base import Notification, ProviderAdapter, RefundResult
from payments.providers.sandbox import SandboxProvider, sandbox_notification
from payments.providers.wechat_pay import WeChatPayProvider
from payments.tenders import tender_for

_ADAPTERS: dict[str, type[ProviderAdapter]] = {
    cls.name: cls for cls in (SandboxProvider, WeChatPayProvider, AlipayProvider)
}


def provider_named(name: str) -> ProviderAdapter:
    try:
        return _ADAPTERS[name]()
    except (KeyError, TypeError):
        raise UnknownProvider(params={"provider": str(name)}) from None


def provider_for(tender: str) -> ProviderAdapter:
    """The adapter of a provider-backed tender.  Raises UnknownTender / UnknownProvider."""
    kind = tender_for(tender)
    if not kind.provider_backed:
        raise UnknownProvider(params={"tender": str(tender)})
    return provider_named(kind.provider)


__all__ = ["Notification", "ProviderAdapter", "RefundResult", "provider_for", "provider_named",
           "sandbox_notification"]
