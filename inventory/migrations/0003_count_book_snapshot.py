from django.db import migrations


def snapshot_open_counts(apps, schema_editor):
    """Counts not yet applied get the book figure of now: the best snapshot there is for them."""
    StockCountLine = apps.get_model("inventory", "StockCountLine")
    StockLevel = apps.get_model("inventory", "StockLevel")
    for line in StockCountLine.objects.filter(expected__isnull=True).select_related("count"):
        level = StockLevel.objects.filter(warehouse_id=line.count.warehouse_id, sku_id=line.sku_id,
                                          bucket="sellable").first()
        line.expected = level.on_hand if level else 0
        line.save(update_fields=["expected"])


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0002_transfer_reference'),
    ]

    operations = [
        migrations.RunPython(snapshot_open_counts, migrations.RunPython.noop),
    ]
