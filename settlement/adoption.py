"""Adopt a simulated draft rule set as the split rules in force from a business day.

The draft's active rules are copied into rules in force, valid from that day (or from their own
later first day); every rule in force still valid on that day ends the day before (a rule that
would only have started on or after it is switched off instead).  Nothing about a rule's terms
changes, so the split lines of settled days keep explaining themselves, and the adoption is
refused from any day that is settled or being settled.  The draft stays as it was, for the record.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import connection
from django.db.models import Q
from django.utils.translation import gettext as _

from o2o.db import service
from settlement.exceptions import AdoptionRetroactive, DraftEmpty
from settlement.models import RuleSetAdoption, SettlementDay, SplitRule

TERMS = ("name", "priority", "channel", "fulfillment", "store_id", "guide_condition", "product_line", "territory",
         "credit_trade_area", "ecommerce_percent", "guide_store_percent", "trade_area_percent")


def first_open_day() -> date | None:
    """The first business day rules may still be adopted from (None: nothing settled yet, any day)."""
    last = SettlementDay.objects.order_by("-day").values_list("day", flat=True).first()
    return last + timedelta(days=1) if last is not None else None


@service
def split_draft_adopt(*, draft: str, effective_from: date, actor=None) -> RuleSetAdoption:
    """Put draft set ``draft`` in force from business day ``effective_from`` (module notes).

    Locks: the settlement's day-opening advisory lock (so no day opens meanwhile), then the rules in
    force, by id.  Raises AdoptionRetroactive (a day from ``effective_from`` on exists), DraftEmpty."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('orders.settlement.day_open'))")
    if SettlementDay.objects.filter(day__gte=effective_from).exists():
        raise AdoptionRetroactive(field="effective_from", params={"first_open_day": str(first_open_day())})
    drafts = list(SplitRule.objects.filter(draft=draft, is_active=True).order_by("priority", "id")) if draft else []
    if not drafts:
        raise DraftEmpty(field="draft", params={"draft": draft})
    ended, adopted = [], []
    current = SplitRule.objects.filter(draft="", is_active=True) \
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=effective_from)).order_by("pk").select_for_update()
    for rule in current:
        if rule.valid_from is not None and rule.valid_from >= effective_from:
            rule.is_active = False  # it never started: nothing names it
            rule.save(update_fields=["is_active", "updated_at"])
        else:
            rule.valid_until = effective_from - timedelta(days=1)
            rule.save(update_fields=["valid_until", "updated_at"])
        ended.append(rule.pk)
    for source in drafts:
        start = max(effective_from, source.valid_from or effective_from)
        if source.valid_until is not None and source.valid_until < start:
            continue  # the draft rule's own validity ends before the adoption: nothing to put in force
        rule = SplitRule.objects.create(
            **{field: getattr(source, field) for field in TERMS}, draft="", valid_from=start,
            valid_until=source.valid_until,
            note=_("Adopted from draft %(draft)s (rule %(id)s).") % {"draft": draft, "id": source.pk})
        adopted.append(rule.pk)
    return RuleSetAdoption.objects.create(draft=draft, effective_from=effective_from, rules_adopted=adopted,
                                          rules_ended=ended,
                                          adopted_by=actor if getattr(actor, "is_authenticated", False) else None)
