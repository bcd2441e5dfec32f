"""The webhook models moved to the integrations app; their tables stay (state only)."""

from django.db import migrations



class Migration(migrations.Migration):

    dependencies = [
        ('o2o', '0003_partner_api'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='webhookdelivery',
                    name='subscription',
                ),
                migrations.RemoveField(
                    model_name='webhooksubscription',
                    name='partner_key',
                ),
                migrations.DeleteModel(
                    name='WebhookAttempt',
                ),
                migrations.DeleteModel(
                    name='WebhookDelivery',
                ),
                migrations.DeleteModel(
                    name='WebhookSubscription',
                ),
            ],
            database_operations=[],
        ),
    ]
