"""Fill Change.latest_verdict from each change's latest finished measurement, as
`change_latest_verdict_record` writes it when a measurement finishes from now on."""

from django.db import migrations
from django.db.models import F

BATCH = 1000


def backfill(apps, schema_editor):
    from apps.measurements.reports import change_latest_verdict_record

    Measurement = apps.get_model("measurements", "Measurement")
    finished = (
        Measurement.objects.filter(
            status="done", kind__in=("compare", "staging"), change__isnull=False
        )
        .select_related("profile", "change")
        .only(
            "id",
            "kind",
            "results",
            "change_id",
            "profile__kind",
            "profile__metric_policy",
            "change__expected_result",
        )
        # The same order as search's index: the latest finished first within each change.
        .order_by("change_id", F("finished_at").desc(nulls_last=True), "-id")
    )
    batch, last_change = [], None
    for measurement in finished.iterator(chunk_size=BATCH):
        if measurement.change_id == last_change:
            continue
        last_change = measurement.change_id
        batch.append(measurement)
        if len(batch) >= BATCH:
            change_latest_verdict_record(measurements=batch)
            batch = []
    change_latest_verdict_record(measurements=batch)


class Migration(migrations.Migration):
    dependencies = [
        ("changes", "0004_list_verdict_and_filter_indexes"),
        ("measurements", "0008_http_profiles"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
