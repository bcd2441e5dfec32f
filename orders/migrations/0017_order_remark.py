from django.db import migrations, models


class Migration(migrations.Migration):
    """A remark on an order, which partners may change until fulfilment starts."""

    dependencies = [("orders", "0016_shipment_return_updated_at")]

    operations = [
        migrations.AddField(
            model_name="order", name="remark",
            field=models.CharField(blank=True, default="", max_length=300, verbose_name="remark",
                                   help_text="The customer's or partner's note for the people fulfilling the "
                                             "order."),
        ),
    ]
