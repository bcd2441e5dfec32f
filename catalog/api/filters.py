"""One FilterSet per catalog resource (shared by the API and any page that lists the catalog)."""

import django_filters
from django.db.models import Exists, OuterRef, Q

from catalog.models import Category, Product, Sku
from o2o.api import bool_filter, datetime_filter, id_filter


def category_subtree(queryset, prefix: str, category_id: int):
    """Objects in the category or any category below it (by the materialised path)."""
    path = Category.objects.filter(pk=category_id).values_list("path", flat=True).first()
    if path is None:
        return queryset.none()
    return queryset.filter(Q(**{f"{prefix}path": path}) | Q(**{f"{prefix}path__startswith": f"{path}/"}))


class CategoryFilter(django_filters.FilterSet):
    parent = id_filter(field_name="parent_id", help_text="Direct children of this category.")
    code = django_filters.CharFilter(max_length=40)

    class Meta:
        model = Category
        fields = ["parent", "code"]


SEARCH_HELP = ("Text search, case-insensitive, in any part of the name (Chinese or not), the code, the "
               "barcode, and for SKUs the product's name and code, e.g. 衬衫 or SKU-0012.")


def text_search(value: str) -> list[str]:
    """The words of a search: whitespace-separated, every one must match."""
    return [word for word in value.split() if word][:5]


class ProductFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", max_length=100, help_text=SEARCH_HELP)
    category = id_filter(method="filter_category", help_text="Products in this category or below it.")
    brand = id_filter(field_name="brand_id")
    code = django_filters.CharFilter(max_length=40)
    is_active = bool_filter()
    updated_since = datetime_filter(field_name="updated_at", lookup_expr="gte",
                                                      help_text="Changed at or after this time (ISO 8601).")

    class Meta:
        model = Product
        fields = ["q", "category", "brand", "code", "is_active", "updated_since"]

    def filter_category(self, queryset, name, value):
        return category_subtree(queryset, "category__", value)

    def filter_q(self, queryset, name, value):
        for word in text_search(value):
            sku_hit = Sku.objects.filter(Q(code__icontains=word) | Q(barcode__icontains=word)
                                         | Q(name__icontains=word), product=OuterRef("pk"))
            queryset = queryset.filter(Q(name__icontains=word) | Q(code__icontains=word) | Exists(sku_hit))
        return queryset


class SkuFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", max_length=100, help_text=SEARCH_HELP)
    category = id_filter(method="filter_category", help_text="SKUs of products in this category or below it.")
    product = id_filter(field_name="product_id")
    barcode = django_filters.CharFilter(max_length=14)
    code = django_filters.CharFilter(max_length=40)
    is_active = bool_filter()
    updated_since = datetime_filter(field_name="updated_at", lookup_expr="gte",
                                                      help_text="Changed at or after this time (ISO 8601).")

    class Meta:
        model = Sku
        fields = ["q", "category", "product", "barcode", "code", "is_active", "updated_since"]

    def filter_category(self, queryset, name, value):
        return category_subtree(queryset, "product__category__", value)

    def filter_q(self, queryset, name, value):
        for word in text_search(value):
            queryset = queryset.filter(Q(name__icontains=word) | Q(code__icontains=word)
                                       | Q(barcode__icontains=word) | Q(product__name__icontains=word)
                                       | Q(product__code__icontains=word))
        return queryset
