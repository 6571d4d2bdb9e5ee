from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.core.htmx import htmx_target

from .forms import FILTERS, SearchForm
from .selectors import PageOutOfRange, search


@login_required
@require_GET
def search_page(request):
    form = SearchForm(request.GET)
    results, error, status = None, None, 200
    if form.is_valid():
        try:
            results = search(form.params())
        except PageOutOfRange as exc:
            error, status = str(exc), 404
        except ValidationError as exc:
            error, status = " ".join(exc.messages), 400
    else:
        status = 400
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "results": results,
        "error": error,
        "query": query.urlencode(),
        "active_filters": form.active_filters(),
        "filter_fields": [form[name] for name in FILTERS],
    }
    if htmx_target(request) == "search-results":
        # Typing `"lru cache"` passes through `"lru cache`: in place, the message is the answer,
        # not a failed request (a browser logs every 4xx response as an error).
        status = 200 if status == 400 else status
        return render(request, "search/_results.html", context, status=status)
    return render(request, "search/search.html", context, status=status)
