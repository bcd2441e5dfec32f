from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("o2o", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE IF NOT EXISTS o2o_document_number_seq",
            "DROP SEQUENCE IF EXISTS o2o_document_number_seq",
        ),
    ]
