"""Catalog reads for partners and store apps (scope catalog:read)."""

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiExample
from rest_framework import generics

from catalog.api.filters import CategoryFilter, ProductFilter, SkuFilter
from catalog.api.serializers import CategoryOut, ProductOut, SkuOut
from catalog.models import Category, Product, Sku
from o2o.api import LIST_ERRORS, READ_ERRORS, api_doc
from o2o.apiauth import CATALOG_READ

TAGS = ["catalog"]
SCOPES = {"GET": CATALOG_READ}

CATEGORY = {"id": 3, "code": "tops", "name": "上装", "parent": 1, "path": "apparel/tops"}
SKU_SUMMARY = {"id": 12, "code": "SKU000012", "barcode": "6901234567892", "name": "Linen shirt white M",
               "color": "white", "size": "M", "list_price": "129.00", "currency": "CNY", "is_active": True}
PRODUCT = {"id": 5, "code": "SPU00005", "name": "Linen shirt", "brand": 1, "brand_code": "lakeside",
           "category": 3,
           "category_code": "tops", "description": "", "is_active": True,
           "created_at": "2026-11-01T09:00:00+08:00", "updated_at": "2026-11-20T09:00:00+08:00",
           "skus": [SKU_SUMMARY]}
SKU = {**SKU_SUMMARY, "product": 5, "product_code": "SPU00005", "category": 3,
       "attributes": {"fabric": "linen"},
       "created_at": "2026-11-01T09:00:00+08:00", "updated_at": "2026-11-20T09:00:00+08:00"}


def example(name, value):
    return OpenApiExample(name, value=value, response_only=True, status_codes=["200"])


class CategoryList(generics.ListAPIView):
    required_scopes = SCOPES
    serializer_class = CategoryOut
    filterset_class = CategoryFilter
    queryset = Category.objects.all()
    ordering = "id"

    @api_doc(summary="List categories", tags=TAGS, responses={200: CategoryOut(many=True)},
             errors=LIST_ERRORS,
             examples=[example("category", CATEGORY)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CategoryDetail(generics.RetrieveAPIView):
    required_scopes = SCOPES
    serializer_class = CategoryOut
    queryset = Category.objects.all()

    @api_doc(summary="Read a category", tags=TAGS, responses={200: CategoryOut}, errors=READ_ERRORS,
             examples=[example("category", CATEGORY)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _products():
    return (Product.objects.select_related("brand", "category")
            .prefetch_related(Prefetch("skus", queryset=Sku.objects.order_by("code"))))


class ProductList(generics.ListAPIView):
    """Products with their SKUs.  Sync changes with ``updated_since``; the order is (updated_at, id)."""

    required_scopes = SCOPES
    serializer_class = ProductOut
    filterset_class = ProductFilter
    ordering = ("updated_at", "id")

    def get_queryset(self):
        return _products()

    @api_doc(summary="List products", tags=TAGS, responses={200: ProductOut(many=True)}, errors=LIST_ERRORS,
             examples=[example("product", PRODUCT)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ProductDetail(generics.RetrieveAPIView):
    required_scopes = SCOPES
    serializer_class = ProductOut

    def get_queryset(self):
        return _products()

    @api_doc(summary="Read a product", tags=TAGS, responses={200: ProductOut}, errors=READ_ERRORS,
             examples=[example("product", PRODUCT)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SkuList(generics.ListAPIView):
    """SKUs; look one up by ``barcode``, or sync changes with ``updated_since`` (order: updated_at, id)."""

    required_scopes = SCOPES
    serializer_class = SkuOut
    filterset_class = SkuFilter
    queryset = Sku.objects.select_related("product")
    ordering = ("updated_at", "id")

    @api_doc(summary="List SKUs", tags=TAGS, responses={200: SkuOut(many=True)}, errors=LIST_ERRORS,
             examples=[example("SKU", SKU)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SkuDetail(generics.RetrieveAPIView):
    required_scopes = SCOPES
    serializer_class = SkuOut
    queryset = Sku.objects.select_related("product")

    @api_doc(summary="Read a SKU", tags=TAGS, responses={200: SkuOut}, errors=READ_ERRORS,
             examples=[example("SKU", SKU)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
