import json
import threading
import weakref
from collections.abc import Iterator
from itertools import islice

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, Throttled, ValidationError
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import APIView

from apps.changes.api import ChangeSerializer
from apps.changes.models import Change

from .forms import SearchForm
from .selectors import PageOutOfRange, matching_changes, search

PARAMETERS = [
    OpenApiParameter(
        "q",
        str,
        description='Words; "a phrase"; -excluded; a or b; cache.py, '
        "apps/billing/ or path:x for file paths.",
    ),
    OpenApiParameter("path", str, description="Part of a file path the change touched."),
    OpenApiParameter("project", str, description="Project slug."),
    OpenApiParameter("owner", str, description="Owner's username."),
    OpenApiParameter("status", str),
    OpenApiParameter("verdict", str, description="Any metric of the latest measurement has it."),
    OpenApiParameter("tag", str),
    OpenApiParameter("date_from", OpenApiTypes.DATE),
    OpenApiParameter("date_to", OpenApiTypes.DATE),
    OpenApiParameter(
        "gain_metric", str, description='A metric\'s label or key, e.g. "peak RSS" or cpu.'
    ),
    OpenApiParameter("gain_min", float, description="Improved by at least this many percent."),
    OpenApiParameter("sort", str, enum=["relevance", "date", "gain"]),
    OpenApiParameter("page", int),
]


def _form(request) -> SearchForm:
    form = SearchForm(request.query_params)
    if not form.is_valid():
        raise ValidationError(form.errors.get_json_data())
    return form


class HitSerializer(serializers.Serializer):
    change = ChangeSerializer()
    snippet = serializers.CharField(help_text="HTML: escaped text with <mark> around matches.")
    gain = serializers.FloatField(allow_null=True)


class FacetSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField()
    count = serializers.IntegerField()


class SearchView(APIView):
    """Search past changes: the same parameters as the /search/ page."""

    throttle_scope = "search"

    @extend_schema(
        parameters=PARAMETERS,
        responses=inline_serializer(
            "SearchResults",
            {
                "count": serializers.IntegerField(
                    help_text="Matches counted: exact, unless `capped`."
                ),
                "capped": serializers.BooleanField(
                    help_text="More changes match than `count`; results and facets cover the "
                    "`count` most recently filed of them."
                ),
                "page": serializers.IntegerField(),
                "num_pages": serializers.IntegerField(),
                "sort": serializers.CharField(),
                "results": HitSerializer(many=True),
                "facets": serializers.DictField(child=FacetSerializer(many=True)),
            },
        ),
    )
    def get(self, request):
        form = _form(request)
        try:
            results = search(form.params())
        except PageOutOfRange as exc:
            raise NotFound(str(exc)) from exc
        context = {"request": request}
        return Response(
            {
                "count": results.count,
                "capped": results.capped,
                "page": results.page,
                "num_pages": results.num_pages,
                "sort": results.sort,
                "results": [
                    HitSerializer(
                        {"change": h.change, "snippet": str(h.snippet), "gain": h.gain},
                        context=context,
                    ).data
                    for h in results.hits
                ],
                "facets": {
                    name: [{"value": v, "label": lbl, "count": n} for v, lbl, n in rows]
                    for name, rows in results.facets.items()
                },
            }
        )


class SearchExportView(APIView):
    """Every change matching a search, newest filed first, in the import format.

    Streamed as it is read, at most EXPORT_MAX_CHANGES of them (also in the `X-Export-Limit`
    header); `truncated`, written last, says whether more matched.
    """

    throttle_scope = "export"

    @extend_schema(
        parameters=[p for p in PARAMETERS if p.name not in ("sort", "page")],
        responses=inline_serializer(
            "ChangeExport",
            {
                "results": ChangeSerializer(many=True),
                "truncated": serializers.BooleanField(
                    help_text="More changes match than `limit`; `results` holds the `limit` "
                    "most recently filed."
                ),
                "limit": serializers.IntegerField(help_text="The most one export returns."),
            },
        ),
    )
    def get(self, request):
        form = _form(request)
        limit = settings.EXPORT_MAX_CHANGES
        # One more than the limit, to learn whether the export was cut.
        changes = matching_changes(form.params(), limit=limit + 1)
        response = _ExportResponse(
            _export_json(changes, limit, request), content_type="application/json"
        ).admit()
        response["Content-Disposition"] = 'attachment; filename="changes.json"'
        response["X-Export-Limit"] = str(limit)
        return response


# Exports running in this process. A long export holds one of the process's threads; capped,
# they always leave threads free for everything else (pages, the API, health checks). Weak, so
# a response dropped without being closed frees its slot too.
_exports: "weakref.WeakSet[_ExportResponse]" = weakref.WeakSet()
_exports_lock = threading.Lock()
# What a refused export is told to wait: about what one export of the limit takes.
EXPORT_RETRY_SECONDS = 30


class _ExportResponse(StreamingHttpResponse):
    """Counts as a running export from `admit()` until the server closes it."""

    def admit(self) -> "_ExportResponse":
        """Count this export in, or answer 429 when EXPORT_CONCURRENCY already run."""
        with _exports_lock:
            full = len(_exports) >= settings.EXPORT_CONCURRENCY
            if not full:
                _exports.add(self)
        if full:
            # Dropped unsent: its generator never started, so it holds nothing. (close() would
            # also end the request's database connections.)
            raise Throttled(
                wait=EXPORT_RETRY_SECONDS, detail="Other exports are running on this server."
            )
        return self

    def close(self):
        try:
            super().close()
        finally:
            with _exports_lock:
                _exports.discard(self)


def _export_json(changes: Iterator[Change], limit: int, request) -> Iterator[bytes]:
    context = {"request": request}
    yield b'{"results": ['
    written, truncated = 0, False
    while batch := list(islice(changes, 200)):
        if written + len(batch) > limit:
            batch, truncated = batch[: limit - written], True
        data = ChangeSerializer(batch, many=True, context=context).data
        text = ",".join(json.dumps(item, cls=JSONEncoder, ensure_ascii=False) for item in data)
        yield ("," if written and text else "").encode() + text.encode()
        written += len(batch)
    yield f'], "truncated": {json.dumps(truncated)}, "limit": {limit}}}'.encode()
