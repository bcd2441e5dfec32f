"""Errors of stores and the O2O roll-out."""

from __future__ import annotations

from django.utils.translation import gettext, gettext_lazy as _

from o2o.errors import Conflict
from stores.models import Capability


class NotLaunched(Conflict):
    """A capability asked for at a store where it is not switched on (yet).

    The code names the capability (``pickup_not_launched``, ``return_anywhere_not_launched``, …)
    so a partner can tell the customer which promise is not available there."""

    default_message = _("This is not available at this store yet.")

    def __init__(self, *, capability: str, store, field: str | None = None) -> None:
        label = Capability(capability).label
        super().__init__(gettext("%(capability)s is not available at %(store)s yet.")
                         % {"capability": label, "store": store},
                         code=f"{capability}_not_launched", field=field,
                         params={"capability": capability, "store": getattr(store, "code", str(store))})
