import pytest
from django.core.exceptions import ValidationError

from apps.accounts.roles import Role
from apps.search.selectors import PageOutOfRange, SearchParams, search
from tests.factories import ProjectFactory, UserFactory


def test_words_phrases_exclusion_and_or(file_change, found):
    leak = file_change(title="Fix the session leak", reason="Sessions were never closed.")
    cache = file_change(title="Bound the LRU cache", reason="The response cache grew forever.")
    both = file_change(title="Cache sessions briefly", reason="A small session cache.")
    assert set(found(q="session")) == {leak.pk, both.pk}
    assert found(q='"LRU cache"') == [cache.pk]
    assert set(found(q="cache -session")) == {cache.pk}
    assert set(found(q="leak or LRU")) == {leak.pk, cache.pk}
    # Stemming: "leaking" finds "leak".
    assert found(q="leaking sessions") == [leak.pk]


def test_relevance_prefers_the_title(file_change, found):
    in_reason = file_change(title="Tune workers", reason="The allocator fragments memory.")
    in_title = file_change(title="Allocator fragmentation fix", reason="See the numbers.")
    assert found(q="allocator") == [in_title.pk, in_reason.pk]


@pytest.mark.parametrize(
    ("q", "field"),
    [('"unclosed phrase', "q"), ("or cache", "q"), ("cache or", "q"), ("x " * 40, "q")],
)
def test_malformed_queries_are_refused(db, q, field):
    with pytest.raises(ValidationError) as exc:
        search(SearchParams(q=q))
    assert field in exc.value.message_dict


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("cache.py", {"a", "b"}),
        ("apps/billing/", {"b"}),
        ("billing/cache", {"b"}),
        ("CACHE.PY", {"a", "b"}),
        ("path:worker", {"c"}),
        ("-cache.py", {"c"}),
        ("app", {"a", "b", "c"}),  # the start of a folder name
        ("ache.py", set()),  # a fragment starts a folder or file name, never inside one
    ],
)
def test_path_search(file_change, found, fragment, expected):
    made = {
        "a": file_change(files_touched=["app/cache.py"]),
        "b": file_change(files_touched=["apps/billing/cache.py", "README.md"]),
        "c": file_change(files_touched=["apps/worker.py"]),
    }
    assert set(found(q=fragment)) == {made[k].pk for k in expected}
    if not fragment.startswith(("-", "path:")):
        assert set(found(path=fragment)) == {made[k].pk for k in expected}


def test_path_and_words_together(file_change, found):
    leaked = file_change(files_touched=["app/cache.py"], reason="The cache leaked memory.")
    file_change(files_touched=["app/cache.py"], reason="Faster hashing.")
    file_change(files_touched=["app/views.py"], reason="The view leaked memory.")
    assert found(q="cache.py leaked") == [leaked.pk]


def test_filters_and_facets(file_change, found, engineer, reviewer):
    other_project = ProjectFactory(slug="search-other")
    other_owner = UserFactory(username="otto", role=Role.ENGINEER)
    a = file_change(tags=["memory", "cache"])
    b = file_change(project=other_project, tags=["cpu"])
    c = file_change(actor=reviewer, owner=other_owner, tags=["memory"])
    assert set(found(q="cache", project=other_project)) == {b.pk}
    assert set(found(owner=other_owner)) == {c.pk}
    assert set(found(tag="memory")) == {a.pk, c.pk}
    assert set(found(status="draft")) == {a.pk, b.pk, c.pk}
    assert found(status="shipped") == []
    results = search(SearchParams(q="cache"))
    assert ("memory", "memory", 2) in results.facets["tag"]
    assert ("search-other", other_project.name, 1) in results.facets["project"]
    assert dict((v, n) for v, _, n in results.facets["owner"]) == {"erin": 2, "otto": 1}


def test_date_range(file_change, found):
    import datetime

    from apps.changes.models import Change
    from apps.search.index import index_change

    old = file_change()
    Change.objects.filter(pk=old.pk).update(
        created=datetime.datetime(2020, 5, 1, tzinfo=datetime.UTC)
    )
    index_change(old)
    new = file_change()
    assert found(date_to=datetime.date(2020, 12, 31)) == [old.pk]
    assert found(date_from=datetime.date(2021, 1, 1)) == [new.pk]


def test_pages(file_change):
    for n in range(5):
        file_change(title=f"Cache fix {n}")
    results = search(SearchParams(q="cache", page_size=2, page=3))
    assert results.count == 5 and len(results.hits) == 1 and results.num_pages == 3
    with pytest.raises(PageOutOfRange):
        search(SearchParams(q="cache", page_size=2, page=4))


def test_snippets_highlight_and_escape_markup(file_change):
    file_change(
        title="Escape <b>bold</b> cache",
        reason='<script>alert("x")</script> the cache \x02leaked\x03 memory',
    )
    hit = search(SearchParams(q="cache")).hits[0]
    html = str(hit.snippet)
    assert "<mark>" in html
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;" in html
    # Only whole <mark>…</mark> pairs come from us.
    assert html.count("<mark>") == html.count("</mark>")


def test_a_search_counts_and_ranks_the_most_recently_filed_matches(file_change, monkeypatch):
    from apps.search import selectors

    made = [
        file_change(title=f"Cache fix {n}", tags=["memory"] if n else ["cpu"]) for n in range(5)
    ]
    monkeypatch.setattr(selectors, "WINDOW", 3)
    results = search(SearchParams(q="cache", page_size=2))
    assert results.capped and results.count == 3 and results.num_pages == 2
    assert [h.change.pk for h in results.hits] == [made[4].pk, made[3].pk]
    # Facet counts cover the same three changes.
    assert results.facets["tag"] == [("memory", "memory", 3)]
    assert [h.change.pk for h in search(SearchParams(q="cache", page_size=2, page=2)).hits] == [
        made[2].pk
    ]
    with pytest.raises(PageOutOfRange):
        search(SearchParams(q="cache", page_size=2, page=3))
    narrowed = search(SearchParams(q="cache", tag="cpu"))
    assert not narrowed.capped and [h.change.pk for h in narrowed.hits] == [made[0].pk]


def test_paths_with_quotes_and_backslashes(file_change, found):
    odd = file_change(files_touched=['apps/it\'s/we\\ird "x".py'])
    file_change(files_touched=["apps/plain.py"])
    assert found(path="it's/we\\ird") == [odd.pk]
    assert found(path='we\\ird "x"') == [odd.pk]
    assert found(q="path:it's/") == [odd.pk]


def test_filter_tokens_never_match_words(file_change, found, project):
    from apps.search import tokens
    from apps.search.index import fts5_token, pg_token

    change = file_change()
    assert found(project=project) == [change.pk]
    # (The tag itself is a word of the text: tags are searchable.)
    for token in (
        tokens.project(project.pk),
        tokens.status("draft"),
        tokens.owner(change.owner_id),
    ):
        for text in (token, fts5_token(token), pg_token(token)):
            assert found(q=f'"{text}"') == []


def test_missing_entries_are_indexed_after_migrate(file_change, found):
    from apps.search.index import index_missing
    from apps.search.models import SearchEntry

    change = file_change(title="Cap the walrus pool")
    SearchEntry.objects.filter(pk=change.pk).delete()
    assert found(q="walrus") == []
    assert index_missing() == 1
    assert found(q="walrus") == [change.pk]


def test_a_huge_diff_is_indexed_and_its_first_files_found(file_change, found):
    deep = "/".join(c * 100 for c in "def")
    files = [f"{deep}/n{i}.py" for i in range(5000)]
    change = file_change(files_touched=files)
    assert found(path="n0.py") == [change.pk]
    assert found(path=f"{deep}/n1.py") == [change.pk]
    # Past the per-change budget of path tokens, files are found by words only.
    assert found(path="n4999.py") == []


def test_a_search_reads_partitions_newest_first_and_stops(file_change, monkeypatch):
    """On PostgreSQL entries live in partitions of consecutive ids; here two ids each."""
    from apps.search import partitions, selectors
    from apps.search.selectors import matching_changes

    monkeypatch.setattr(partitions, "PARTITION_SIZE", 2)
    made = [file_change(title=f"Walrus fix {n}") for n in range(5)]
    file_change(title="Unrelated")
    monkeypatch.setattr(selectors, "WINDOW", 3)
    results = search(SearchParams(q="walrus"))
    assert results.capped
    assert {h.change.pk for h in results.hits} == {c.pk for c in made[2:]}
    newest_first = [c.pk for c in reversed(made)]
    assert [c.pk for c in matching_changes(SearchParams(q="walrus"), limit=100)] == newest_first
    # Pages of two below the last page's oldest id cross partitions and stop at the limit.
    paged = matching_changes(SearchParams(q="walrus"), limit=4, chunk=2)
    assert [c.pk for c in paged] == newest_first[:4]


def test_a_phrase_search_leaves_the_planner_settings_alone(file_change, found):
    from django.db import connection

    change = file_change()
    assert found(q='"LRU cache"') == [change.pk]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_indexscan")
            assert cursor.fetchone()[0] == "on"


def test_date_order_follows_the_time_filed_not_the_number(file_change, found):
    import datetime

    from apps.changes.models import Change
    from apps.search.index import index_change

    first, second = file_change(), file_change()
    Change.objects.filter(pk=first.pk).update(created=second.created + datetime.timedelta(days=1))
    index_change(first)
    assert found(sort="date") == [first.pk, second.pk]
    assert found(q="cache", sort="date") == [first.pk, second.pk]
