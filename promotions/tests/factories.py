"""Promotions for tests: live from yesterday to tomorrow unless told otherwise."""

from datetime import timedelta

from django.utils import timezone

from promotions.models import Promotion

SCOPES = ("regions", "cities", "stores", "categories", "products", "skus")


def promotion(**kwargs) -> Promotion:
    now = timezone.now()
    fields = {"code": f"PR{Promotion.objects.count() + 1:04d}", "name": "促销", "kind": "threshold_off",
              "valid_from": now - timedelta(days=1), "valid_until": now + timedelta(days=1)}
    fields.update(kwargs)
    scope = {k: fields.pop(k) for k in SCOPES if k in fields}
    promo = Promotion(**fields)
    promo.full_clean()
    promo.save()
    for name, values in scope.items():
        getattr(promo, name).set(values)
    return promo
