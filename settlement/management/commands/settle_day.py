"""Settle a business day (and any earlier day not settled yet) by hand, e.g. after an outage."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from o2o.errors import DomainError
from settlement import services


class Command(BaseCommand):
    help = "Settle business days up to --day (default: the last day that has ended). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--day", type=date.fromisoformat, default=None,
                            help="business day, YYYY-MM-DD (default: the last one that has ended)")

    def handle(self, *args, day, **options):
        day = day or services.last_ended_day()
        try:
            days = services.settlement_run(until=day)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        for settled in days:
            self.stdout.write(
                f"{settled.day} {settled.get_status_display()}: {settled.stores_settled} store step(s), "
                f"net {settled.net}, payments {settled.payments_total}, refunds {settled.refunds_total}, "
                f"commission released {settled.commission_released_amount}")
