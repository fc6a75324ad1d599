from django.db import migrations

from compliance.presets import SOURCE, TIER_PRESETS

ROLES = ("viewer", "operator", "admin")


def forwards(apps, schema_editor):
    TierPreset = apps.get_model("compliance", "TierPreset")
    for tier, values in TIER_PRESETS.items():
        TierPreset.objects.update_or_create(tier=tier, defaults={**values, "source": SOURCE})
    Group = apps.get_model("auth", "Group")
    for role in ROLES:
        Group.objects.get_or_create(name=role)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0002_timeseries"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
