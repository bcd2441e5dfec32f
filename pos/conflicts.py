"""The store manager's tasks from offline sales: see the open conflicts, count, resolve."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from o2o.db import service
from o2o.errors import Conflict, NotFound, PermissionDenied
from payments import approvals
from pos.models import OfflineConflict
from stores.models import Store


class ConflictNotFound(NotFound):
    code = "offline_conflict_not_found"
    default_message = _("No such offline sale conflict at this store.")


class ConflictResolved(Conflict):
    code = "offline_conflict_resolved"
    default_message = _("This conflict was already resolved.")


class ManagerRequired(PermissionDenied):
    code = "manager_required"
    default_message = _("Only the store manager can resolve offline sale conflicts.")


def open_conflicts(store: Store):
    return (OfflineConflict.objects.filter(store=store, status=OfflineConflict.Status.OPEN)
            .select_related("offline_sale", "sku").order_by("created_at", "pk"))


@service
def offline_conflict_resolve(*, conflict_id: int, actor, note: str = "", store: Store | None = None,
                             hq: bool = False) -> OfflineConflict:
    """Mark a conflict resolved (counted, or the price difference accepted), naming who and why.

    Locks the conflict row.  A store manager resolves their store's (``store``); HQ (``hq``)
    any.  Raises ConflictNotFound, ConflictResolved, ManagerRequired.
    """
    rows = OfflineConflict.objects.select_for_update(of=("self",)).filter(pk=conflict_id)
    if store is not None:
        rows = rows.filter(store=store)
    conflict = rows.first()
    if conflict is None:
        raise ConflictNotFound()
    if not hq and not approvals.is_store_manager(actor, conflict.store_id):
        raise ManagerRequired()
    if conflict.status != OfflineConflict.Status.OPEN:
        raise ConflictResolved()
    conflict.status = OfflineConflict.Status.RESOLVED
    conflict.resolved_at = timezone.now()
    conflict.resolved_by = actor
    conflict.note = (note or "").strip()[:300]
    conflict.save(update_fields=["status", "resolved_at", "resolved_by", "note"])
    return conflict
