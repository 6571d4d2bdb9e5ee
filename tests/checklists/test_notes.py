"""Final notes on the page: Markdown rendered and sanitised; still downloadable as Markdown."""

import pytest

from apps.changes.models import Change
from apps.checklists.notes import notes_html
from apps.checklists.shipping import change_ship

HOSTILE = (
    "# Notes\n\n"
    "<script>window.pwned = 1</script>\n\n"
    "[click me](javascript:alert(1)) and [docs](https://example.org/fix)\n\n"
    '<img src="x" onerror="alert(1)">\n\n'
    "| metric | change |\n|---|---|\n| peak RSS | -40 % |\n"
)


@pytest.mark.config_independent
def test_markdown_becomes_html_without_anything_that_runs():
    html = notes_html(HOSTILE)
    assert "<h3>Notes</h3>" in html, "under the page's own headings"
    assert "<table>" in html and "<td>peak RSS</td>" in html
    assert '<a href="https://example.org/fix" rel="noopener noreferrer nofollow">docs</a>' in html
    # What would run stays text: shown escaped, never an element, attribute or link.
    assert "<script" not in html
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in html
    assert 'href="javascript' not in html
    assert "<img" not in html
    assert "<a" not in html.replace('<a href="https://example.org/fix"', "")


def test_shipped_notes_render_on_the_page_and_download_as_markdown(as_user, admin, reviewer, fix):
    # Text people typed reaches the notes; it must not reach the page as markup.
    Change.objects.filter(pk=fix.pk).update(
        reason="It never evicts. <script>window.pwned = 1</script> "
        "[see](javascript:alert(document.cookie))"
    )
    fix.refresh_from_db()
    shipped = change_ship(actor=admin, change=fix, override_reason="test")
    page = as_user(reviewer).get(fix.get_absolute_url()).content.decode()
    notes = page[page.index('<article class="notes prose">') :]
    notes = notes[: notes.index("</article>")]
    assert "<h4>Reason</h4>" in notes
    assert "<li><code>app/cache.py</code>" in notes, "files touched as a list"
    assert "<table>" in notes or "Not measured." in notes
    assert "<script" not in notes
    assert 'href="javascript' not in notes
    assert "<pre" in notes, "the command is a code block"
    download = as_user(reviewer).get(f"/checklists/changes/{fix.pk}/notes.md")
    assert download["Content-Disposition"] == f'attachment; filename="{fix.number}.md"'
    assert download.content.decode() == shipped.final_notes
    assert "<script>window.pwned = 1</script>" in shipped.final_notes, "the .md is as written"
