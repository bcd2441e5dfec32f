"""Stock levels per SKU and warehouse (scope stock:read), limited to the warehouses the caller may see."""

from django.db.models import Q
from drf_spectacular.utils import OpenApiExample
from rest_framework import generics

from inventory.api.filters import StockLevelFilter
from inventory.api.serializers import StockLevelOut
from inventory.models import StockLevel
from o2o.api import LIST_ERRORS, api_doc
from o2o.apiauth import STOCK_READ, principal_of
from stores import selectors as store_read
from stores.models import Warehouse


def levels_visible(request):
    """Staff: their warehouses; a store-restricted key: its stores' stockrooms and non-store warehouses."""
    principal = principal_of(request)
    qs = StockLevel.objects.select_related("warehouse__store", "sku")
    if principal is None:
        return qs.none()
    if not principal.is_partner:
        if principal.store_ids is None:
            return qs
        return qs.filter(warehouse_id__in=store_read.staff_warehouse_ids(principal.user))
    if principal.store_ids is None:
        return qs
    return qs.filter(Q(warehouse__store__id__in=principal.store_ids)
                     | ~Q(warehouse__kind=Warehouse.Kind.STORE))


class StockLevelList(generics.ListAPIView):
    """On hand, reserved and available per warehouse × SKU × bucket.  Order: (updated_at, id)."""

    required_scopes = {"GET": STOCK_READ}
    serializer_class = StockLevelOut
    filterset_class = StockLevelFilter
    ordering = ("updated_at", "id")

    def get_queryset(self):
        return levels_visible(self.request)

    @api_doc(summary="List stock levels", tags=["stock"], responses={200: StockLevelOut(many=True)},
             errors=LIST_ERRORS, examples=[OpenApiExample("level", response_only=True, status_codes=["200"],
                                                          value={
                 "id": 40, "warehouse": 3, "warehouse_code": "WH003", "warehouse_kind": "store", "store": 2,
                 "sku": 12, "sku_code": "SKU000012", "bucket": "sellable", "on_hand": 5, "reserved": 2,
                 "available": 3, "updated_at": "2026-11-23T18:00:00+08:00"})])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
