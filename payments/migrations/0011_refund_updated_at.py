import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    """Refunds say when they last changed, so partners can sync them incrementally."""

    dependencies = [("payments", "0010_shift_cash_unit")]

    operations = [
        migrations.AddField(
            model_name="refund", name="updated_at",
            field=models.DateTimeField(auto_now=True, db_index=True, default=django.utils.timezone.now,
                                       verbose_name="updated at"),
            preserve_default=False),
        migrations.RunSQL("UPDATE payments_refund SET updated_at = COALESCE(completed_at, created_at);",
                          migrations.RunSQL.noop),
    ]
