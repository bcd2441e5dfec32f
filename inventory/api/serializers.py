"""Stock level output (read-only: stock changes only through inventory services)."""

from rest_framework import serializers

from inventory.models import StockLevel


class StockLevelOut(serializers.ModelSerializer):
    warehouse_code = serializers.CharField(source="warehouse.code", read_only=True)
    warehouse_kind = serializers.CharField(source="warehouse.kind", read_only=True)
    store = serializers.SerializerMethodField()
    sku_code = serializers.CharField(source="sku.code", read_only=True)
    available = serializers.IntegerField(read_only=True)

    class Meta:
        model = StockLevel
        fields = ["id", "warehouse", "warehouse_code", "warehouse_kind", "store", "sku", "sku_code", "bucket",
                  "on_hand", "reserved", "available", "updated_at"]
        read_only_fields = fields

    def get_store(self, obj) -> int | None:
        store = getattr(obj.warehouse, "store", None) if obj.warehouse.kind == "store" else None
        return store.pk if store is not None else None
