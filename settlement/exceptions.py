from django.utils.translation import gettext_lazy as _

from o2o.errors import Conflict, InvalidInput


class DayNotOver(Conflict):
    code = "settlement_day_not_over"
    default_message = _("This business day has not ended yet (or is still in its grace period).")


class EarlierDayOpen(Conflict):
    code = "settlement_earlier_day_open"
    default_message = _("An earlier business day is not settled yet; settle the days in order.")


class BeforeFirstDay(InvalidInput):
    code = "settlement_before_first_day"
    default_message = _("Settlement started after this day; earlier days cannot be settled any more.")


class InvalidCutoff(InvalidInput):
    code = "settlement_invalid_cutoff"
    default_message = _("SETTLEMENT_CUTOFF_HOUR must be an hour of the day, 0 to 23.")


class AdoptionRetroactive(Conflict):
    code = "rule_adoption_retroactive"
    default_message = _("Business days from that day on are already settled (or being settled): rules can only "
                        "be adopted from the first day not yet settled.")


class DraftEmpty(InvalidInput):
    code = "rule_draft_empty"
    default_message = _("This draft set has no active rules to adopt.")
