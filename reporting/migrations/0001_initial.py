"""The reporting roll-ups, moved from the orders app with their tables (orders_*) as they are."""

import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models


OLD_APP, NEW_APP = 'orders', 'reporting'
MOVED = ['dailycommissionrollup', 'dailycouponrollup', 'dailyguidesalesrollup', 'dailymemberchannels', 'dailyo2orollup', 'dailysalesrollup', 'dailystocksoldrollup', 'memberactivityday']


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
        ('catalog', '0001_initial'),
        ('orders', '0009_settlement_and_reporting_moved_out'),
        ('stores', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='MemberActivityDay',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('member_id', models.BigIntegerField(verbose_name='member')),
                        ('day', models.DateField(verbose_name='day')),
                        ('next_day', models.DateField(blank=True, null=True, verbose_name='next day')),
                        ('last_web', models.DateField(blank=True, null=True)),
                        ('last_mini_program', models.DateField(blank=True, null=True)),
                        ('last_marketplace', models.DateField(blank=True, null=True)),
                        ('last_pos', models.DateField(blank=True, null=True)),
                    ],
                    options={
                        'verbose_name': 'member activity day',
                        'verbose_name_plural': 'member activity days',
                        'db_table': 'orders_memberactivityday',
                        'ordering': ['member_id', 'day'],
                        'indexes': [models.Index(fields=['day'], include=('next_day', 'last_web', 'last_mini_program', 'last_marketplace', 'last_pos'), name='member_activity_day_idx')],
                        'constraints': [models.UniqueConstraint(fields=('member_id', 'day'), name='member_activity_day_key')],
                    },
                ),
                migrations.CreateModel(
                    name='DailyCommissionRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField(verbose_name='day')),
                        ('amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='commission')),
                        ('refreshed_at', models.DateTimeField(verbose_name='refreshed at')),
                        ('guide', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='stores.staffprofile', verbose_name='guide')),
                    ],
                    options={
                        'verbose_name': 'daily commission roll-up',
                        'verbose_name_plural': 'daily commission roll-ups',
                        'db_table': 'orders_dailycommissionrollup',
                        'ordering': ['-day', 'guide_id'],
                        'constraints': [models.UniqueConstraint(fields=('day', 'guide'), name='daily_commission_rollup_key')],
                    },
                ),
                migrations.CreateModel(
                    name='DailyCouponRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField(verbose_name='day')),
                        ('channel', models.CharField(blank=True, max_length=20, verbose_name='channel')),
                        ('issued', models.PositiveIntegerField(default=0, verbose_name='issued')),
                        ('redeemed', models.PositiveIntegerField(default=0, verbose_name='redeemed')),
                        ('discount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='discount')),
                        ('ecommerce_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='borne by e-commerce')),
                        ('store_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='borne by the store')),
                        ('store', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='stores.store', verbose_name='store')),
                    ],
                    options={
                        'verbose_name': 'daily coupon roll-up',
                        'verbose_name_plural': 'daily coupon roll-ups',
                        'db_table': 'orders_dailycouponrollup',
                        'ordering': ['-day', 'store_id', 'channel'],
                        'constraints': [models.UniqueConstraint(fields=('day', 'store', 'channel'), name='daily_coupon_rollup_key', nulls_distinct=False)],
                    },
                ),
                migrations.CreateModel(
                    name='DailyGuideSalesRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField(verbose_name='day')),
                        ('orders', models.PositiveIntegerField(default=0, verbose_name='orders')),
                        ('sales', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='sales')),
                        ('guide', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='stores.staffprofile', verbose_name='guide')),
                        ('store', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='stores.store', verbose_name='store')),
                    ],
                    options={
                        'verbose_name': 'daily guide sales roll-up',
                        'verbose_name_plural': 'daily guide sales roll-ups',
                        'db_table': 'orders_dailyguidesalesrollup',
                        'ordering': ['-day', 'guide_id', 'store_id'],
                        'constraints': [models.UniqueConstraint(fields=('day', 'guide', 'store'), name='daily_guide_sales_rollup_key', nulls_distinct=False)],
                    },
                ),
                migrations.CreateModel(
                    name='DailyMemberChannels',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField(verbose_name='day')),
                        ('member_id', models.BigIntegerField(verbose_name='member')),
                        ('channels', models.SmallIntegerField(verbose_name='channels')),
                        ('store', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='stores.store', verbose_name='store')),
                    ],
                    options={
                        'verbose_name': 'daily member channels',
                        'verbose_name_plural': 'daily member channels',
                        'db_table': 'orders_dailymemberchannels',
                        'ordering': ['-day', 'member_id'],
                        'indexes': [models.Index(fields=['member_id', 'day'], include=('channels',), name='daily_member_channels_idx')],
                        'constraints': [models.UniqueConstraint(fields=('day', 'member_id', 'store'), include=('channels',), name='daily_member_channels_key', nulls_distinct=False)],
                    },
                ),
                migrations.CreateModel(
                    name='DailyO2ORollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField(verbose_name='day')),
                        ('channel', models.CharField(max_length=20, verbose_name='channel')),
                        ('fulfillment', models.CharField(max_length=20, verbose_name='fulfillment')),
                        ('orders', models.PositiveIntegerField(default=0, verbose_name='orders')),
                        ('picked_up', models.PositiveIntegerField(default=0, verbose_name='picked up')),
                        ('pickup_seconds', models.DecimalField(decimal_places=6, default=Decimal('0'), max_digits=20, verbose_name='time to pickup (seconds)')),
                        ('returns', models.PositiveIntegerField(default=0, verbose_name='returns (count)')),
                        ('returns_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='returns')),
                        ('store', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='stores.store', verbose_name='store')),
                    ],
                    options={
                        'verbose_name': 'daily O2O roll-up',
                        'verbose_name_plural': 'daily O2O roll-ups',
                        'db_table': 'orders_dailyo2orollup',
                        'ordering': ['-day', 'store_id', 'channel', 'fulfillment'],
                        'constraints': [models.UniqueConstraint(fields=('day', 'store', 'channel', 'fulfillment'), name='daily_o2o_rollup_key', nulls_distinct=False)],
                    },
                ),
                migrations.CreateModel(
                    name='DailySalesRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField(verbose_name='day')),
                        ('channel', models.CharField(max_length=20, verbose_name='channel')),
                        ('orders', models.PositiveIntegerField(default=0, verbose_name='orders')),
                        ('units', models.IntegerField(default=0, verbose_name='units')),
                        ('gross', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='gross sales')),
                        ('discounts', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='discounts')),
                        ('returns', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='returns')),
                        ('returned_orders', models.PositiveIntegerField(default=0, verbose_name='returns (count)')),
                        ('net', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='net sales')),
                        ('refreshed_at', models.DateTimeField(verbose_name='refreshed at')),
                        ('store', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='stores.store', verbose_name='store')),
                    ],
                    options={
                        'verbose_name': 'daily sales roll-up',
                        'verbose_name_plural': 'daily sales roll-ups',
                        'db_table': 'orders_dailysalesrollup',
                        'ordering': ['-day', 'store_id', 'channel'],
                        'indexes': [models.Index(fields=['store', 'day'], name='daily_sales_rollup_store_idx'), models.Index(fields=['channel', 'day'], name='daily_sales_rollup_channel_idx')],
                        'constraints': [models.UniqueConstraint(fields=('day', 'store', 'channel'), name='daily_sales_rollup_key', nulls_distinct=False)],
                    },
                ),
                migrations.CreateModel(
                    name='DailyStockSoldRollup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField(verbose_name='day')),
                        ('units', models.IntegerField(default=0, verbose_name='units')),
                        ('refreshed_at', models.DateTimeField(verbose_name='refreshed at')),
                        ('sku', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalog.sku', verbose_name='SKU')),
                        ('warehouse', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='stores.warehouse', verbose_name='warehouse')),
                    ],
                    options={
                        'verbose_name': 'daily stock sold roll-up',
                        'verbose_name_plural': 'daily stock sold roll-ups',
                        'db_table': 'orders_dailystocksoldrollup',
                        'ordering': ['-day', 'warehouse_id', 'sku_id'],
                        'indexes': [models.Index(fields=['warehouse', 'day'], name='daily_stock_sold_wh_idx')],
                        'constraints': [models.UniqueConstraint(fields=('day', 'warehouse', 'sku'), name='daily_stock_sold_rollup_key')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
