"""The settlement models, moved from the orders app with their tables (orders_*) as they are."""

import django.core.validators
import django.db.models.deletion
import django.db.models.expressions
import django.db.models.functions.comparison
from decimal import Decimal
from django.db import migrations, models


OLD_APP, NEW_APP = 'orders', 'settlement'
MOVED = ['partyshare', 'scheduledjob', 'settlementday', 'settlementstatement', 'splitline', 'splitrule', 'statementtender', 'storesettlement', 'tenderline', 'wallettransfer']


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
        ('orders', '0009_settlement_and_reporting_moved_out'),
        ('payments', '0006_marketplace_tender'),
        ('stores', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ScheduledJob',
                    fields=[
                        ('name', models.CharField(max_length=100, primary_key=True, serialize=False, verbose_name='name')),
                    ],
                    options={
                        'verbose_name': 'scheduled job',
                        'verbose_name_plural': 'scheduled jobs',
                        'managed': False,
                        'default_permissions': ('view',),
                    },
                ),
                migrations.CreateModel(
                    name='SettlementDay',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('day', models.DateField(unique=True, verbose_name='business day')),
                        ('status', models.CharField(choices=[('running', 'Running'), ('closed', 'Closed')], default='running', max_length=10, verbose_name='status')),
                        ('window_start', models.DateTimeField(verbose_name='from')),
                        ('window_end', models.DateTimeField(verbose_name='until')),
                        ('cutoff_hour', models.PositiveSmallIntegerField(verbose_name='cut-off hour')),
                        ('started_at', models.DateTimeField(auto_now_add=True, verbose_name='started at')),
                        ('closed_at', models.DateTimeField(blank=True, null=True, verbose_name='closed at')),
                        ('stores_settled', models.PositiveIntegerField(default=0, verbose_name='stores settled')),
                        ('sales_net', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='sales (net)')),
                        ('returns_net', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='returns')),
                        ('cancelled_net', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='cancelled after payment')),
                        ('net', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='net')),
                        ('adjustments_net', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='adjustments')),
                        ('payments_total', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='payments')),
                        ('refunds_total', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='refunds')),
                        ('commission_released', models.PositiveIntegerField(default=0, verbose_name='commission entries released')),
                        ('commission_released_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='commission released')),
                    ],
                    options={
                        'verbose_name': 'settlement day',
                        'verbose_name_plural': 'settlement days',
                        'db_table': 'orders_settlementday',
                        'ordering': ['-day'],
                        'constraints': [models.CheckConstraint(condition=models.Q(('window_end__gt', models.F('window_start'))), name='settlement_day_window'), models.CheckConstraint(condition=models.Q(models.Q(('closed_at__isnull', True), ('status', 'running')), models.Q(('closed_at__isnull', False), ('status', 'closed')), _connector='OR'), name='settlement_day_closed_at')],
                    },
                ),
                migrations.CreateModel(
                    name='SettlementStatement',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('business_day', models.DateField(db_index=True, verbose_name='business day')),
                        ('channel', models.CharField(choices=[('web', 'Web shop'), ('mini_program', 'WeChat mini-program'), ('marketplace', 'Marketplace partner'), ('pos', 'Store POS'), ('other', 'Not tied to an order')], max_length=20, verbose_name='channel')),
                        ('closed_at', models.DateTimeField(blank=True, null=True, verbose_name='closed at')),
                        ('orders_count', models.PositiveIntegerField(default=0, verbose_name='orders')),
                        ('sale_lines', models.PositiveIntegerField(default=0, verbose_name='lines sold')),
                        ('sales_gross', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='gross sales')),
                        ('sales_discount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='discounts')),
                        ('sales_net', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='sales (net)')),
                        ('coupon_discount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='coupon discounts')),
                        ('coupon_cost_ecommerce', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='coupon cost borne by e-commerce')),
                        ('coupon_cost_store', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='coupon cost borne by stores')),
                        ('return_lines', models.PositiveIntegerField(default=0, verbose_name='lines returned')),
                        ('returns_net', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='returns')),
                        ('cancelled_net', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='cancelled after payment')),
                        ('net', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='net')),
                        ('adjustments_net', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='of which late (adjustments)')),
                        ('split_ecommerce', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='e-commerce share')),
                        ('split_store', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name="fulfilling stores' share")),
                        ('split_guide_store', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name="guides' stores share")),
                        ('payments_count', models.PositiveIntegerField(default=0, verbose_name='payments')),
                        ('payments_total', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='payments taken')),
                        ('refunds_count', models.PositiveIntegerField(default=0, verbose_name='refunds')),
                        ('refunds_total', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='refunds given')),
                        ('tender_adjustments', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='money of late events')),
                        ('points_issued', models.IntegerField(default=0, verbose_name='points issued')),
                        ('points_redeemed', models.IntegerField(default=0, verbose_name='points redeemed')),
                        ('points_redeemed_value', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='points redeemed (value)')),
                        ('store', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='stores.store', verbose_name='store')),
                    ],
                    options={
                        'verbose_name': 'settlement statement',
                        'verbose_name_plural': 'settlement statements',
                        'db_table': 'orders_settlementstatement',
                        'ordering': ['-business_day', 'store_id', 'channel'],
                    },
                ),
                migrations.CreateModel(
                    name='SplitRule',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100, verbose_name='name')),
                        ('priority', models.PositiveIntegerField(default=100, help_text='Lower numbers are tried first.', verbose_name='priority')),
                        ('channel', models.CharField(blank=True, choices=[('web', 'Web shop'), ('mini_program', 'WeChat mini-program'), ('marketplace', 'Marketplace partner'), ('pos', 'Store POS')], default='', help_text='Empty: every channel.', max_length=20, verbose_name='channel')),
                        ('fulfillment', models.CharField(blank=True, choices=[('ship_warehouse', 'Ship from warehouse'), ('ship_store', 'Ship from store'), ('pickup', 'Pickup in store'), ('in_store', 'Taken in store')], default='', help_text='Empty: every fulfillment.', max_length=20, verbose_name='fulfillment')),
                        ('guide_condition', models.CharField(blank=True, choices=[('', 'Any order'), ('other_store', "The order's guide works at another store"), ('not_other_store', 'No guide, or the guide works at the fulfilling store')], default='', max_length=20, verbose_name='guide')),
                        ('ecommerce_percent', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=5, validators=[django.core.validators.MinValueValidator(Decimal('0.00')), django.core.validators.MaxValueValidator(Decimal('100.00'))], verbose_name='e-commerce share (%)')),
                        ('guide_store_percent', models.DecimalField(decimal_places=2, default=Decimal('0.00'), help_text='Paid only when the guide works at another store.', max_digits=5, validators=[django.core.validators.MinValueValidator(Decimal('0.00')), django.core.validators.MaxValueValidator(Decimal('100.00'))], verbose_name="guide's store share (%)")),
                        ('valid_from', models.DateField(blank=True, help_text='First business day; empty: always.', null=True, verbose_name='valid from')),
                        ('valid_until', models.DateField(blank=True, help_text='Last business day; empty: open ended.', null=True, verbose_name='valid until')),
                        ('is_active', models.BooleanField(default=True, verbose_name='active')),
                        ('note', models.CharField(blank=True, default='', max_length=300, verbose_name='note')),
                        ('first_used_on', models.DateField(blank=True, editable=False, null=True, verbose_name='first used on')),
                        ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                        ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                        ('store', models.ForeignKey(blank=True, help_text='Empty: every store.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='stores.store', verbose_name='fulfilling store')),
                    ],
                    options={
                        'verbose_name': 'revenue split rule',
                        'verbose_name_plural': 'revenue split rules',
                        'db_table': 'orders_splitrule',
                        'ordering': ['priority', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='SplitLine',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('sale', 'Sale'), ('return', 'Return'), ('cancel', 'Cancelled after payment')], max_length=10, verbose_name='kind')),
                        ('event_at', models.DateTimeField(verbose_name='time')),
                        ('adjustment', models.BooleanField(default=False, verbose_name='late (adjustment)')),
                        ('gross', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='gross')),
                        ('discount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='discount')),
                        ('coupon_discount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='coupon discount')),
                        ('coupon_cost_ecommerce', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='coupon cost (e-commerce)')),
                        ('coupon_cost_store', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='coupon cost (store)')),
                        ('net', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='net')),
                        ('ecommerce_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='e-commerce share')),
                        ('store_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name="fulfilling store's share")),
                        ('guide_store_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name="guide's store share")),
                        ('guide_store', models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='stores.store', verbose_name="guide's store")),
                        ('order', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='orders.order', verbose_name='order')),
                        ('order_line', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='orders.orderline', verbose_name='order line')),
                        ('return_line', models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='orders.returnline', verbose_name='return line')),
                        ('sale_line', models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='settlement.splitline', verbose_name='reverses sale')),
                        ('statement', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='split_lines', to='settlement.settlementstatement', verbose_name='statement')),
                        ('store', models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='stores.store', verbose_name='fulfilling store')),
                        ('rule', models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='settlement.splitrule', verbose_name='split rule')),
                    ],
                    options={
                        'verbose_name': 'split line',
                        'verbose_name_plural': 'split lines',
                        'db_table': 'orders_splitline',
                        'ordering': ['statement_id', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='StatementTender',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('tender', models.CharField(max_length=20, verbose_name='tender')),
                        ('payments_count', models.PositiveIntegerField(default=0, verbose_name='payments')),
                        ('payments_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='payments taken')),
                        ('refunds_count', models.PositiveIntegerField(default=0, verbose_name='refunds')),
                        ('refunds_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='refunds given')),
                        ('statement', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='tenders', to='settlement.settlementstatement', verbose_name='statement')),
                    ],
                    options={
                        'verbose_name': 'statement tender',
                        'verbose_name_plural': 'statement tenders',
                        'db_table': 'orders_statementtender',
                        'ordering': ['statement_id', 'tender'],
                    },
                ),
                migrations.CreateModel(
                    name='StoreSettlement',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('closed_at', models.DateTimeField(blank=True, null=True, verbose_name='closed at')),
                        ('orders_paid', models.PositiveIntegerField(default=0, verbose_name='orders paid')),
                        ('returns', models.PositiveIntegerField(default=0, verbose_name='returns')),
                        ('cancels', models.PositiveIntegerField(default=0, verbose_name='cancelled after payment')),
                        ('payments', models.PositiveIntegerField(default=0, verbose_name='payments')),
                        ('refunds', models.PositiveIntegerField(default=0, verbose_name='refunds')),
                        ('late_lines', models.PositiveIntegerField(default=0, verbose_name='late lines settled here')),
                        ('cash_payments', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='cash taken')),
                        ('cash_refunds', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='cash paid out')),
                        ('shifts_closed', models.PositiveIntegerField(default=0, verbose_name='shifts closed')),
                        ('shifts_cash_sales', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='shifts: cash sales')),
                        ('shifts_cash_refunds', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='shifts: cash refunds')),
                        ('shifts_expected_cash', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='shifts: expected cash')),
                        ('shifts_counted_cash', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='shifts: counted cash')),
                        ('shifts_over_short', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='shifts: over (+) / short (−)')),
                        ('wallet_recharged_principal', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='wallet recharges sold (principal)')),
                        ('wallet_recharged_bonus', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='wallet recharges sold (bonus)')),
                        ('wallet_recharge_refunded', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='wallet recharges refunded')),
                        ('wallet_spent_principal', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='wallet spent here (principal)')),
                        ('wallet_spent_bonus', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='wallet spent here (bonus)')),
                        ('wallet_cross_in_principal', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name="spent here from other stores' recharges (principal)")),
                        ('wallet_cross_in_bonus', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name="spent here from other stores' recharges (bonus)")),
                        ('wallet_cross_out_principal', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='our recharges spent elsewhere (principal)')),
                        ('wallet_cross_out_bonus', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='our recharges spent elsewhere (bonus)')),
                        ('commission_released', models.PositiveIntegerField(default=0, verbose_name='commission entries released')),
                        ('commission_released_amount', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='commission released')),
                        ('day', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='stores', to='settlement.settlementday', verbose_name='business day')),
                        ('store', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='stores.store', verbose_name='store')),
                    ],
                    options={
                        'verbose_name': 'store settlement',
                        'verbose_name_plural': 'store settlements',
                        'db_table': 'orders_storesettlement',
                        'ordering': ['-day__day', 'store_id'],
                    },
                ),
                migrations.AddField(
                    model_name='settlementstatement',
                    name='store_settlement',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='statements', to='settlement.storesettlement', verbose_name='store settlement'),
                ),
                migrations.CreateModel(
                    name='PartyShare',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('fulfilment_share', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='share as fulfilling store / e-commerce')),
                        ('guide_share', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name="share as the guide's store")),
                        ('total', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='total')),
                        ('store', models.ForeignKey(blank=True, help_text='Empty: the e-commerce department.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='stores.store', verbose_name='party')),
                        ('store_settlement', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='shares', to='settlement.storesettlement', verbose_name='store settlement')),
                    ],
                    options={
                        'verbose_name': 'party share',
                        'verbose_name_plural': 'party shares',
                        'db_table': 'orders_partyshare',
                        'ordering': ['store_settlement_id', 'store_id'],
                    },
                ),
                migrations.CreateModel(
                    name='TenderLine',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('payment', 'Payment'), ('refund', 'Refund')], max_length=10, verbose_name='kind')),
                        ('tender', models.CharField(max_length=20, verbose_name='tender')),
                        ('amount', models.DecimalField(decimal_places=2, max_digits=14, verbose_name='amount')),
                        ('event_at', models.DateTimeField(verbose_name='time')),
                        ('adjustment', models.BooleanField(default=False, verbose_name='late (adjustment)')),
                        ('payment', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='payments.payment', verbose_name='payment')),
                        ('refund', models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='payments.refund', verbose_name='refund')),
                        ('statement', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='tender_lines', to='settlement.settlementstatement', verbose_name='statement')),
                    ],
                    options={
                        'verbose_name': 'tender line',
                        'verbose_name_plural': 'tender lines',
                        'db_table': 'orders_tenderline',
                        'ordering': ['statement_id', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='WalletTransfer',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('principal', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='principal')),
                        ('bonus', models.DecimalField(decimal_places=2, default=Decimal('0.00'), max_digits=14, verbose_name='bonus')),
                        ('sold_store', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='stores.store', verbose_name='recharge sold by')),
                        ('store_settlement', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='wallet_transfers', to='settlement.storesettlement', verbose_name='spent at')),
                    ],
                    options={
                        'verbose_name': 'cross-store wallet spending',
                        'verbose_name_plural': 'cross-store wallet spending',
                        'db_table': 'orders_wallettransfer',
                    },
                ),
                migrations.AddConstraint(
                    model_name='splitrule',
                    constraint=models.CheckConstraint(condition=models.Q(('ecommerce_percent__gte', 0), ('guide_store_percent__gte', 0), ('ecommerce_percent__lte', django.db.models.expressions.CombinedExpression(models.Value(100), '-', models.F('guide_store_percent')))), name='split_rule_shares_within_100'),
                ),
                migrations.AddConstraint(
                    model_name='splitrule',
                    constraint=models.CheckConstraint(condition=models.Q(('valid_until__isnull', True), ('valid_from__isnull', True), ('valid_until__gte', models.F('valid_from')), _connector='OR'), name='split_rule_validity'),
                ),
                migrations.AddConstraint(
                    model_name='splitline',
                    constraint=models.UniqueConstraint(models.F('order_line'), models.F('kind'), django.db.models.functions.comparison.Coalesce(models.F('return_line'), models.Value(0)), name='split_line_once'),
                ),
                migrations.AddConstraint(
                    model_name='splitline',
                    constraint=models.CheckConstraint(condition=models.Q(('net', django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(models.F('ecommerce_amount'), '+', models.F('store_amount')), '+', models.F('guide_store_amount')))), name='split_line_shares_add_up'),
                ),
                migrations.AddConstraint(
                    model_name='splitline',
                    constraint=models.CheckConstraint(condition=models.Q(('net', django.db.models.expressions.CombinedExpression(models.F('gross'), '-', models.F('discount')))), name='split_line_net'),
                ),
                migrations.AddConstraint(
                    model_name='splitline',
                    constraint=models.CheckConstraint(condition=models.Q(('kind', 'return'), ('return_line__isnull', True), _connector='OR'), name='split_line_return_has_return_line'),
                ),
                migrations.AddConstraint(
                    model_name='statementtender',
                    constraint=models.UniqueConstraint(fields=('statement', 'tender'), name='statement_tender_once'),
                ),
                migrations.AddConstraint(
                    model_name='storesettlement',
                    constraint=models.UniqueConstraint(fields=('day', 'store'), name='store_settlement_once', nulls_distinct=False),
                ),
                migrations.AddConstraint(
                    model_name='settlementstatement',
                    constraint=models.UniqueConstraint(fields=('business_day', 'store', 'channel'), name='settlement_statement_once', nulls_distinct=False),
                ),
                migrations.AddConstraint(
                    model_name='settlementstatement',
                    constraint=models.CheckConstraint(condition=models.Q(('net', django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(models.F('sales_net'), '-', models.F('returns_net')), '-', models.F('cancelled_net')))), name='settlement_statement_net'),
                ),
                migrations.AddConstraint(
                    model_name='settlementstatement',
                    constraint=models.CheckConstraint(condition=models.Q(('net', django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(models.F('split_ecommerce'), '+', models.F('split_store')), '+', models.F('split_guide_store')))), name='settlement_statement_split_adds_up'),
                ),
                migrations.AddConstraint(
                    model_name='partyshare',
                    constraint=models.UniqueConstraint(fields=('store_settlement', 'store'), name='party_share_once', nulls_distinct=False),
                ),
                migrations.AddConstraint(
                    model_name='partyshare',
                    constraint=models.CheckConstraint(condition=models.Q(('total', django.db.models.expressions.CombinedExpression(models.F('fulfilment_share'), '+', models.F('guide_share')))), name='party_share_total'),
                ),
                migrations.AddConstraint(
                    model_name='tenderline',
                    constraint=models.UniqueConstraint(models.F('payment'), models.F('kind'), django.db.models.functions.comparison.Coalesce(models.F('refund'), models.Value(0)), name='tender_line_once'),
                ),
                migrations.AddConstraint(
                    model_name='tenderline',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('amount__gt', 0), ('kind', 'payment'), ('refund__isnull', True)), models.Q(('amount__lt', 0), ('kind', 'refund'), ('refund__isnull', False)), _connector='OR'), name='tender_line_shape'),
                ),
                migrations.AddConstraint(
                    model_name='wallettransfer',
                    constraint=models.UniqueConstraint(fields=('store_settlement', 'sold_store'), name='wallet_transfer_once', nulls_distinct=False),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
