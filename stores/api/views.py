"""Stores (where a pickup order can be collected) and cities (where an order can be shipped)."""

from drf_spectacular.utils import OpenApiExample
from rest_framework import generics

from o2o.api import LIST_ERRORS, READ_ERRORS, api_doc
from o2o.apiauth import CATALOG_READ, principal_of
from stores.api.filters import CityFilter, StoreFilter
from stores.api.serializers import CityOut, StoreOut
from stores.models import City, Store

TAGS = ["stores"]
SCOPES = {"GET": CATALOG_READ}
STORE = {"id": 2, "code": "HZ001", "name": "西湖店", "city": 1, "city_code": "HZ", "address": "1 Lakeside Road",
         "phone": "0571-88880000", "warehouse": 3, "is_active": True}
CITY = {"id": 1, "code": "HZ", "name": "杭州", "region_code": "ZJ"}


def example(name, value):
    return OpenApiExample(name, value=value, response_only=True, status_codes=["200"])


def stores_visible(request):
    """Every store for an unrestricted caller; a restricted key or store staff see their stores only."""
    principal = principal_of(request)
    qs = Store.objects.select_related("city")
    if principal is None:
        return qs.none()
    if principal.store_ids is not None:
        qs = qs.filter(pk__in=principal.store_ids)
    return qs


class StoreList(generics.ListAPIView):
    required_scopes = SCOPES
    serializer_class = StoreOut
    filterset_class = StoreFilter
    ordering = "id"

    def get_queryset(self):
        return stores_visible(self.request)

    @api_doc(summary="List stores", tags=TAGS, responses={200: StoreOut(many=True)}, errors=LIST_ERRORS,
             examples=[example("store", STORE)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class StoreDetail(generics.RetrieveAPIView):
    required_scopes = SCOPES
    serializer_class = StoreOut

    def get_queryset(self):
        return stores_visible(self.request)

    @api_doc(summary="Read a store", tags=TAGS, responses={200: StoreOut}, errors=READ_ERRORS,
             examples=[example("store", STORE)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CityList(generics.ListAPIView):
    required_scopes = SCOPES
    serializer_class = CityOut
    filterset_class = CityFilter
    queryset = City.objects.select_related("region")
    ordering = "id"

    @api_doc(summary="List cities", tags=TAGS, responses={200: CityOut(many=True)}, errors=LIST_ERRORS,
             examples=[example("city", CITY)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
