"""``manage.py payments_check``: which payment providers are ready to go live, and what each still lacks.

Prints setting names, the gateway each provider is pointed at and whether the sandbox is on;
never a key, a secret or a certificate.  ``--strict`` fails (exit status 1) when a provider
is not ready, for deployment checks.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from payments.providers import provider_named
from payments.providers.alipay import gateway_url
from payments.providers.wechat_pay import api_url

PROVIDERS = {"wechat_pay": api_url, "alipay": gateway_url}


class Command(BaseCommand):
    help = "Say which payment provider settings are missing (never prints a secret)."

    def add_arguments(self, parser):
        parser.add_argument("--strict", action="store_true", help="exit with an error when a provider is not ready")

    def handle(self, *args, strict=False, **options):
        not_ready = []
        for name, gateway in PROVIDERS.items():
            missing = provider_named(name).missing_settings()
            if missing:
                not_ready.append(name)
                self.stdout.write(f"{name}: not configured (gateway {gateway()}); missing: {', '.join(missing)}")
            else:
                self.stdout.write(f"{name}: ready (gateway {gateway()})")
        sandbox = bool(getattr(settings, "SANDBOX_PAY_ENABLED", True))
        self.stdout.write(f"sandbox: {'enabled' if sandbox else 'disabled'}; POS payment codes charged by: "
                          f"{getattr(settings, 'POS_MICROPAY_PROVIDER', '') or 'each wallet’s own provider'}")
        if strict and not_ready:
            raise CommandError(f"not ready: {', '.join(not_ready)}")
