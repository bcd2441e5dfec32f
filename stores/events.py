"""Audit rows of the roll-out: written in the business transaction, with the acting user."""

from __future__ import annotations

import uuid

from stores.models import RolloutChange


def rollout_change(*, batch: uuid.UUID, kind: str, actor, capability: str = "", region=None, city=None,
                   store=None, before: str = "", after: str = "", source: str = "") -> RolloutChange:
    user = actor if getattr(actor, "is_authenticated", False) else None
    return RolloutChange.objects.create(batch=batch, kind=kind, capability=capability, region=region, city=city,
                                        store=store, before=before, after=after, source=source, actor=user)
