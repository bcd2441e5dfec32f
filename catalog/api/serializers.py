"""Catalog output serializers.  The catalog is read-only over the API (HQ edits it in the admin)."""

from rest_framework import serializers

from catalog.models import Category, Product, Sku
from o2o.money import CURRENCY


class CategoryOut(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "code", "name", "parent", "path"]
        read_only_fields = fields


class SkuSummaryOut(serializers.ModelSerializer):
    currency = serializers.SerializerMethodField()

    class Meta:
        model = Sku
        fields = ["id", "code", "barcode", "name", "color", "size", "list_price", "currency", "is_active"]
        read_only_fields = fields

    def get_currency(self, obj) -> str:
        return CURRENCY


class ProductOut(serializers.ModelSerializer):
    brand_code = serializers.CharField(source="brand.code", default=None, read_only=True, allow_null=True)
    category_code = serializers.CharField(source="category.code", read_only=True)
    skus = SkuSummaryOut(many=True, read_only=True)

    class Meta:
        model = Product
        fields = ["id", "code", "name", "brand", "brand_code", "category", "category_code", "description",
                  "is_active", "created_at", "updated_at", "skus"]
        read_only_fields = fields


class SkuOut(serializers.ModelSerializer):
    product_code = serializers.CharField(source="product.code", read_only=True)
    category = serializers.IntegerField(source="product.category_id", read_only=True)
    currency = serializers.SerializerMethodField()

    class Meta:
        model = Sku
        fields = ["id", "code", "barcode", "name", "product", "product_code", "category", "color", "size",
                  "attributes", "list_price", "currency", "is_active", "created_at", "updated_at"]
        read_only_fields = fields

    def get_currency(self, obj) -> str:
        return CURRENCY
