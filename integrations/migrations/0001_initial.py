"""The webhook models, moved from the o2o app with their tables (o2o_webhook*) as they are."""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


OLD_APP, NEW_APP = 'o2o', 'integrations'
MOVED = ['webhookattempt', 'webhookdelivery', 'webhooksubscription']


def _content_types(apps, schema_editor, old, new, models):
    """Keep the content types (and so the permissions and admin log entries) of the moved models."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.using(schema_editor.connection.alias).filter(
        app_label=old, model__in=models).update(app_label=new)


def forwards(apps, schema_editor):
    _content_types(apps, schema_editor, OLD_APP, NEW_APP, MOVED)


def backwards(apps, schema_editor):
    _content_types(apps, schema_editor, NEW_APP, OLD_APP, MOVED)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('o2o', '0004_webhooks_moved_out'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='WebhookDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('event_id', models.CharField(max_length=64, verbose_name='event id')),
                        ('topic', models.CharField(max_length=100, verbose_name='event')),
                        ('body', models.TextField(verbose_name='body')),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('succeeded', 'Delivered'), ('dead', 'Dead letter')], default='pending', max_length=10, verbose_name='status')),
                        ('attempts', models.PositiveIntegerField(default=0, verbose_name='attempts')),
                        ('next_attempt_at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), verbose_name='next attempt')),
                        ('give_up_at', models.DateTimeField(verbose_name='give up at')),
                        ('locked_until', models.DateTimeField(blank=True, editable=False, null=True)),
                        ('last_status_code', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='last HTTP status')),
                        ('last_error', models.CharField(blank=True, default='', max_length=500, verbose_name='last error')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                        ('delivered_at', models.DateTimeField(blank=True, null=True, verbose_name='delivered at')),
                    ],
                    options={
                        'verbose_name': 'webhook delivery',
                        'verbose_name_plural': 'webhook deliveries',
                        'db_table': 'o2o_webhookdelivery',
                        'ordering': ['-id'],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookAttempt',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('attempted_at', models.DateTimeField(auto_now_add=True, verbose_name='time')),
                        ('status_code', models.PositiveSmallIntegerField(blank=True, null=True, verbose_name='HTTP status')),
                        ('duration_ms', models.PositiveIntegerField(default=0, verbose_name='duration (ms)')),
                        ('error', models.CharField(blank=True, default='', max_length=500, verbose_name='error')),
                        ('response_excerpt', models.CharField(blank=True, default='', max_length=500, verbose_name='response')),
                        ('succeeded', models.BooleanField(default=False, verbose_name='succeeded')),
                        ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attempt_log', to='integrations.webhookdelivery', verbose_name='delivery')),
                    ],
                    options={
                        'verbose_name': 'webhook attempt',
                        'verbose_name_plural': 'webhook attempts',
                        'db_table': 'o2o_webhookattempt',
                        'ordering': ['id'],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookSubscription',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('url', models.URLField(max_length=500, verbose_name='URL')),
                        ('events', models.JSONField(default=list, verbose_name='events')),
                        ('secret', models.CharField(editable=False, max_length=100, verbose_name='signing secret')),
                        ('is_active', models.BooleanField(default=True, verbose_name='active')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                        ('partner_key', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='webhooks', to='o2o.partnerkey', verbose_name='partner key')),
                    ],
                    options={
                        'verbose_name': 'webhook subscription',
                        'verbose_name_plural': 'webhook subscriptions',
                        'db_table': 'o2o_webhooksubscription',
                        'ordering': ['-id'],
                    },
                ),
                migrations.AddField(
                    model_name='webhookdelivery',
                    name='subscription',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='integrations.webhooksubscription', verbose_name='subscription'),
                ),
                migrations.AddIndex(
                    model_name='webhookdelivery',
                    index=models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at'], name='webhook_delivery_due_idx'),
                ),
                migrations.AddConstraint(
                    model_name='webhookdelivery',
                    constraint=models.UniqueConstraint(fields=('subscription', 'event_id'), name='webhook_delivery_once'),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
