import django_filters

from o2o.api import bool_filter, id_filter
from stores.models import City, Store


class CityFilter(django_filters.FilterSet):
    code = django_filters.CharFilter(max_length=20)

    class Meta:
        model = City
        fields = ["code"]


class StoreFilter(django_filters.FilterSet):
    city = id_filter(field_name="city_id")
    code = django_filters.CharFilter(max_length=20)
    is_active = bool_filter()

    class Meta:
        model = Store
        fields = ["city", "code", "is_active"]
