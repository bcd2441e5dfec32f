"""Create a partner API key and print it once:

    python manage.py create_partner --name "Mini-program backend" --channel mini_program \
        --scopes catalog:read stock:read orders:read orders:write payments:notify [--expires-in-days 365]

or rotate one: a new key with the same channel, partner, scopes and stores, while the old
key keeps working for a grace period (7 days unless --grace-days says otherwise):

    python manage.py create_partner --rotate <prefix> [--grace-days 7] [--expires-in-days 365]

The key is not stored (only its hash), so it cannot be shown again; revoke and
create a new one (or rotate) if it is lost.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from o2o.apiauth import (ROTATION_GRACE, SCOPES, KeyNotRotatable, partner_key_create, partner_key_rotate,
                         scopes_clean)
from o2o.channels import Channel
from o2o.models import PartnerKey
from stores.models import Store

CHANNELS = [c.value for c in Channel if c != Channel.POS]


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def days_or_zero(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Create a partner API key (printed once), or rotate one with --rotate <prefix>."

    def add_arguments(self, parser):
        parser.add_argument("--name")
        parser.add_argument("--channel", choices=CHANNELS)
        parser.add_argument("--scopes", nargs="+", help=f"Any of: {', '.join(SCOPES)}")
        parser.add_argument("--partner", default="",
                            help="Partner code (marketplace code); defaults to the name for "
                                 "marketplace keys.")
        parser.add_argument("--store", action="append", default=[], dest="stores",
                            help="Store code the key is limited to (repeat for several).")
        parser.add_argument("--rate-limit", type=int, default=None, help="Requests per minute for this key.")
        parser.add_argument("--expires-in-days", type=positive_int, default=None,
                            help="The new key stops working after this many days (default: never).")
        parser.add_argument("--rotate", metavar="PREFIX",
                            help="Replace the key with this prefix: same channel, partner, scopes and stores.")
        parser.add_argument("--grace-days", type=days_or_zero, default=ROTATION_GRACE.days,
                            help="With --rotate: days the old key keeps working (default %(default)s).")

    def handle(self, *args, **options):
        expires_at = (timezone.now() + timedelta(days=options["expires_in_days"])
                      if options["expires_in_days"] else None)
        if options["rotate"]:
            key, raw, old = self._rotate(options, expires_at)
        else:
            key, raw, old = (*self._create(options, expires_at), None)
        partner_note = f", partner {key.partner}" if key.partner else ""
        expiry_note = f"; expires {timezone.localtime(key.expires_at):%Y-%m-%d %H:%M}" if key.expires_at else ""
        self.stdout.write(f"Created key {key.prefix} for {key.name} (channel {key.channel}{partner_note}; "
                          f"scopes {' '.join(key.scopes)}{expiry_note}).")
        if old is not None:
            self.stdout.write(f"The old key {old.prefix} keeps working until "
                              f"{timezone.localtime(old.expires_at):%Y-%m-%d %H:%M}.")
        self.stdout.write("Store it now; it is not shown again:")
        self.stdout.write(raw)

    def _create(self, options, expires_at):
        missing = [f"--{name}" for name in ("name", "channel", "scopes") if not options[name]]
        if missing:
            raise CommandError(f"the following arguments are required: {', '.join(missing)}")
        try:
            scopes = scopes_clean(options["scopes"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        partner = options["partner"] or (
            options["name"].strip().lower().replace(" ",
                                                    "-")[:50] if options["channel"] == Channel.MARKETPLACE
            else "")
        stores = list(Store.objects.filter(code__in=options["stores"]))
        missing = set(options["stores"]) - {s.code for s in stores}
        if missing:
            raise CommandError(f"unknown store code(s): {', '.join(sorted(missing))}")
        return partner_key_create(name=options["name"], channel=options["channel"], scopes=scopes,
                                  partner=partner, stores=stores, rate_limit_per_minute=options["rate_limit"],
                                  expires_at=expires_at)

    def _rotate(self, options, expires_at):
        given = [f"--{name.replace('_', '-')}" for name in ("name", "channel", "scopes", "partner", "rate_limit")
                 if options[name]] + (["--store"] if options["stores"] else [])
        if given:
            raise CommandError(f"--rotate keeps the old key's settings; do not pass {', '.join(given)}")
        old = PartnerKey.objects.filter(prefix=options["rotate"]).first()
        if old is None:
            raise CommandError(f"no key with prefix {options['rotate']!r}")
        try:
            key, raw = partner_key_rotate(key=old, grace=timedelta(days=options["grace_days"]),
                                          expires_at=expires_at)
        except KeyNotRotatable as exc:
            raise CommandError(str(exc)) from None
        return key, raw, old
