"""Measurements that move a change tell its page, which then asks for what depends on them."""

import json

from apps.measurements.execution import execute
from apps.measurements.models import Measurement

from ..checklists.test_live import HX, oob


def test_a_measurement_moving_the_change_tells_the_page(
    as_user, engineer, demo_change, profile, transactional_db
):
    client = as_user(engineer)
    started = client.post(f"/changes/{demo_change.number}/measure/", {"profile": profile.pk}, **HX)
    assert json.loads(started["HX-Trigger-After-Settle"]) == {"change-updated": None}
    html = started.content.decode()
    assert html.startswith("<section") or '<section id="measurements"' in html
    assert "0 of 10 runs" in html
    measurement = Measurement.objects.get()
    assert 'hx-trigger="every 1s"' in html

    polled = client.get(
        f"/measurements/{measurement.pk}/", HTTP_HX_TARGET=f"measurement-{measurement.pk}", **HX
    )
    assert "HX-Trigger-After-Settle" not in polled, "still running: nothing else moved"

    execute(measurement_id=measurement.pk, worker="w@test")
    finished = client.get(
        f"/measurements/{measurement.pk}/", HTTP_HX_TARGET=f"measurement-{measurement.pk}", **HX
    )
    assert json.loads(finished["HX-Trigger-After-Settle"]) == {"change-updated": None}
    # What the page then asks for: the badge says the change is no longer measuring.
    regions = client.get(f"/checklists/changes/{demo_change.pk}/", **HX).content.decode()
    assert "Ready" in oob(regions, "change-status")
    assert "Measuring" not in oob(regions, "change-status")


def test_cancelling_in_place_answers_with_the_card(as_user, engineer, demo_change, profile):
    client = as_user(engineer)
    client.post(f"/changes/{demo_change.number}/measure/", {"profile": profile.pk}, **HX)
    measurement = Measurement.objects.get()
    answer = client.post(f"/measurements/{measurement.pk}/cancel/", **HX)
    assert answer.status_code == 200
    assert json.loads(answer["HX-Trigger-After-Settle"]) == {"change-updated": None}
    assert "Cancelled after 0 of 10 runs." in answer.content.decode()
    plain = client.post(f"/measurements/{measurement.pk}/cancel/")
    assert plain.status_code == 302
