"""The project page's sync region refreshes itself while a sync waits on a worker, ends in its
result, and says so when no worker has taken the sync for a while."""

from datetime import timedelta

from django.utils import timezone

from apps.projects.models import JobKind, RepositoryJob
from apps.projects.tasks import sync_project

from .test_sync import synced, upstream  # noqa: F401

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "project-sync"}
POLL = 'hx-trigger="every 2s" hx-target="#project-sync"'


def test_a_sync_polls_until_a_worker_ends_it(as_user, engineer, synced):  # noqa: F811
    client = as_user(engineer)
    page = client.get(f"/projects/{synced.slug}/").content.decode()
    assert '<dd id="project-sync" aria-live="polite">' in page
    assert POLL not in page, "nothing to wait for"

    requested = client.post(f"/projects/{synced.slug}/sync/", **HX).content.decode()
    assert "<html" not in requested
    assert "Syncing" in requested
    assert POLL in requested
    assert "No worker has taken this" not in requested, "a worker may still be on its way"

    RepositoryJob.objects.filter(project=synced, kind=JobKind.SYNC).update(
        updated=timezone.now() - timedelta(minutes=3)
    )
    waiting = client.get(f"/projects/{synced.slug}/", **HX).content.decode()
    assert (
        "No worker has taken this for 3\xa0minutes — is a worker consuming queue "
        "<code>default</code>?" in waiting
    )

    sync_project(synced.pk)
    done = client.get(f"/projects/{synced.slug}/", **HX).content.decode()
    assert "In sync" in done
    assert POLL not in done, "the poll ends with the work"
    assert "No worker has taken this" not in done


def test_without_htmx_sync_posts_and_redirects(as_user, engineer, synced):  # noqa: F811
    response = as_user(engineer).post(f"/projects/{synced.slug}/sync/")
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{synced.slug}/"
