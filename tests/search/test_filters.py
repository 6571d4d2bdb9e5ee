"""The search page's filters: labels, chips that remove one filter, errors in words, snippets."""

import re
from html import unescape
from urllib.parse import parse_qs

import pytest

from apps.measurements.reports import measurement_finish
from apps.search.forms import SearchForm
from apps.search.selectors import SearchParams, search


def chips(body: str) -> dict[str, dict[str, list[str]]]:
    """{chip text: the query its remove link leaves} of the active-filter chips on a page."""
    found = {}
    for text, query in re.findall(
        r'<li><span>(.*?)</span>\s*<a href="\?([^"]*)"', body, flags=re.S
    ):
        found[re.sub(r"<[^>]+>", "", unescape(text))] = parse_qs(unescape(query))
    return found


def test_the_metric_is_chosen_by_its_label(as_user, viewer, running_measurement):
    change, measurement = running_measurement
    measurement_finish(measurement=measurement)
    body = as_user(viewer).get("/search/").content.decode()
    assert '<option value="peak_rss">peak RSS</option>' in body
    # What a person types or reads, and the key the API has always taken, are one metric.
    for typed in ("peak RSS", "Peak RSS", "rss", "peak_rss"):
        form = SearchForm({"gain_metric": typed, "gain_min": "15"})
        assert form.is_valid(), form.errors
        assert form.params().gain_metric == "peak_rss"
    page = as_user(viewer).get("/search/", {"gain_metric": "peak RSS"})
    assert page.status_code == 200
    assert change.number in page.content.decode()
    assert '<option value="peak_rss" selected>peak RSS</option>' in page.content.decode()
    api = as_user(viewer).get("/api/search/", {"gain_metric": "peak_rss"})
    assert api.status_code == 200 and api.json()["count"] == 1


def test_a_hit_names_the_metric_its_gain_is_on(as_user, viewer, running_measurement):
    _change, measurement = running_measurement
    measurement_finish(measurement=measurement)
    hit = search(SearchParams(q="walrus")).hits[0]
    assert hit.gain == pytest.approx(20.0, abs=0.1)
    assert hit.gain_text == "peak RSS \u221220.0 %"
    body = as_user(viewer).get("/search/", {"q": "walrus"}).content.decode()
    assert "peak RSS \u221220.0 %" in body and "gain 20" not in body


def test_every_filter_has_a_label_and_room(as_user, viewer):
    body = as_user(viewer).get("/search/").content.decode()
    for name in SearchForm.base_fields:
        if name in ("q", "page"):
            continue
        assert re.search(rf'<label for="id_{name}">[^<]+</label>', body), name
    assert 'class="filter-grid"' in body


def test_chips_show_the_filters_and_each_removes_only_itself(as_user, viewer, file_change):
    change = file_change(title="Cap the badger pool", tags=["memory"])
    params = {"q": "badger", "tag": "memory", "status": "draft", "sort": "date", "page": "1"}
    body = as_user(viewer).get("/search/", params).content.decode()
    shown = chips(body)
    assert set(shown) == {"Tag: memory", "Status: Draft", "Sort by: Newest"}
    assert shown["Tag: memory"] == {"q": ["badger"], "status": ["draft"], "sort": ["date"]}
    assert shown["Status: Draft"] == {"q": ["badger"], "tag": ["memory"], "sort": ["date"]}
    # Following a chip's link drops that one filter and keeps the rest.
    query = "&".join(f"{k}={v[0]}" for k, v in shown["Tag: memory"].items())
    after = as_user(viewer).get(f"/search/?{query}").content.decode()
    assert set(chips(after)) == {"Status: Draft", "Sort by: Newest"}
    assert change.number in after


def test_errors_name_the_field_in_words(as_user, viewer, file_change):
    file_change()
    response = as_user(viewer).get(
        "/search/", {"gain_min": "lots", "date_from": "2024-02-30", "gain_metric": "zorbs"}
    )
    assert response.status_code == 400
    alert = re.search(r'<div role="alert"><ul class="error">(.*?)</ul>', response.content.decode())
    text = unescape(re.sub(r"<[^>]+>", " ", alert.group(1)))
    assert "Gain at least (%): Enter a number." in text
    assert "Filed from: Enter a valid date." in text
    assert "Metric: No measured change has a metric named “zorbs”." in text
    for key in ("gain_min", "date_from", "gain_metric"):
        assert key not in text


def test_snippets_are_cut_from_written_words_not_index_tokens(file_change):
    file_change(
        title="Bound the admin cache",
        reason="The admin pages keep every session; memory grows by the hour.",
        files_touched=["lru/admin/service.py", "lru/admin/views.py"],
        tags=["lru"],
    )
    # "lru" is only in the files touched and the tags: the snippet is the written reason.
    hit = search(SearchParams(q="lru admin")).hits[0]
    snippet = str(hit.snippet)
    assert "service py" not in snippet and "views py" not in snippet
    assert "session" in snippet and "<mark>admin</mark>" in snippet
    title_only = search(SearchParams(q="bound")).hits[0]
    assert "<mark>Bound</mark> the admin cache" in str(title_only.snippet)
