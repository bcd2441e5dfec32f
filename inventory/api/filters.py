import django_filters

from o2o.api import datetime_filter, id_filter
from inventory.models import Bucket, StockLevel


class StockLevelFilter(django_filters.FilterSet):
    sku = id_filter(field_name="sku_id")
    sku_code = django_filters.CharFilter(field_name="sku__code", max_length=40)
    barcode = django_filters.CharFilter(field_name="sku__barcode", max_length=14)
    warehouse = id_filter(field_name="warehouse_id")
    store = id_filter(field_name="warehouse__store__id", help_text="The stockroom of this store.")
    bucket = django_filters.ChoiceFilter(choices=Bucket.choices)
    updated_since = datetime_filter(field_name="updated_at", lookup_expr="gte",
                                                      help_text="Changed at or after this time (ISO 8601).")

    class Meta:
        model = StockLevel
        fields = ["sku", "sku_code", "barcode", "warehouse", "store", "bucket", "updated_since"]
