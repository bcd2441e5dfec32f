"""Row locks of stores, always taken in the same order."""

from __future__ import annotations

from stores.models import City


def cities_for_update(city_ids) -> list[City]:
    """Lock cities by id, in id order (a roll-out copy writes their switches and launch dates)."""
    return list(City.objects.filter(pk__in=list(city_ids)).order_by("pk").select_for_update(of=("self",)))
