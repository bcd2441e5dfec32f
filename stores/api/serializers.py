"""Store and city output serializers (read-only)."""

from rest_framework import serializers

from stores.models import City, Store


class CityOut(serializers.ModelSerializer):
    region_code = serializers.CharField(source="region.code", read_only=True)

    class Meta:
        model = City
        fields = ["id", "code", "name", "region_code"]
        read_only_fields = fields


class StoreOut(serializers.ModelSerializer):
    city_code = serializers.CharField(source="city.code", read_only=True)

    class Meta:
        model = Store
        fields = ["id", "code", "name", "city", "city_code", "address", "phone", "warehouse", "is_active"]
        read_only_fields = fields
