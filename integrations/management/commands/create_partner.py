"""Create a partner API key and print it once:

    python manage.py create_partner --name "Mini-program backend" --channel mini_program \
        --scopes catalog:read stock:read orders:read orders:write payments:notify

The key is not stored (only its hash), so it cannot be shown again; revoke and
create a new one if it is lost.
"""

from django.core.management.base import BaseCommand, CommandError

from o2o.apiauth import SCOPES, partner_key_create, scopes_clean
from o2o.channels import Channel
from stores.models import Store

CHANNELS = [c.value for c in Channel if c != Channel.POS]


class Command(BaseCommand):
    help = "Create a partner API key (printed once)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--channel", required=True, choices=CHANNELS)
        parser.add_argument("--scopes", nargs="+", required=True, help=f"Any of: {', '.join(SCOPES)}")
        parser.add_argument("--partner", default="",
                            help="Partner code (marketplace code); defaults to the name for "
                                 "marketplace keys.")
        parser.add_argument("--store", action="append", default=[], dest="stores",
                            help="Store code the key is limited to (repeat for several).")
        parser.add_argument("--rate-limit", type=int, default=None, help="Requests per minute for this key.")

    def handle(self, *args, **options):
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
        key, raw = partner_key_create(name=options["name"], channel=options["channel"], scopes=scopes,
                                      partner=partner, stores=stores,
                                      rate_limit_per_minute=options["rate_limit"])
        partner_note = f", partner {key.partner}" if key.partner else ""
        self.stdout.write(f"Created key {key.prefix} for {key.name} (channel {key.channel}{partner_note}; "
                          f"scopes {' '.join(key.scopes)}).")
        self.stdout.write("Store it now; it is not shown again:")
        self.stdout.write(raw)
