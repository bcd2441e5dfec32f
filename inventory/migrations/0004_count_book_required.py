from django.db import migrations, models


class Migration(migrations.Migration):
    """Every count line holds its book figure from when it was counted (filled by 0003)."""

    dependencies = [
        ('inventory', '0003_count_book_snapshot'),
    ]

    operations = [
        migrations.AlterField(
            model_name='stockcountline',
            name='expected',
            field=models.IntegerField(help_text='On the books when the shelf was counted.', verbose_name='book quantity'),
        ),
        migrations.AddConstraint(
            model_name='stockcountline',
            constraint=models.CheckConstraint(condition=models.Q(('difference__isnull', True), ('difference', models.F('counted') - models.F('expected')), _connector='OR'), name='count_line_difference_from_snapshot'),
        ),
    ]
