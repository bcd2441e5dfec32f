import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    """Shipments and returns say when they last changed, so partners can sync them incrementally."""

    dependencies = [("orders", "0015_order_return_cash_rounding")]

    operations = [
        migrations.AddField(
            model_name="shipment", name="updated_at",
            field=models.DateTimeField(auto_now=True, db_index=True, default=django.utils.timezone.now,
                                       verbose_name="updated at"),
            preserve_default=False),
        migrations.AddField(
            model_name="return", name="updated_at",
            field=models.DateTimeField(auto_now=True, db_index=True, default=django.utils.timezone.now,
                                       verbose_name="updated at"),
            preserve_default=False),
        migrations.RunSQL(
            "UPDATE orders_shipment SET updated_at = COALESCE(shipped_at, created_at);"
            "UPDATE orders_return SET updated_at = created_at;",
            migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="orderevent", name="kind",
            field=models.CharField(choices=[("status", "Status change"), ("payment", "Payment"),
                                            ("shipment", "Shipment"), ("pickup_verified", "Pickup code verified"),
                                            ("pickup_rejected", "Pickup code refused"), ("return", "Return"),
                                            ("note", "Note"), ("update", "Details changed")],
                                   max_length=20, verbose_name="kind")),
    ]
