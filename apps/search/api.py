from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.changes.api import ChangeSerializer
from apps.changes.models import parse_change_number
from apps.changes.selectors import change_list

from .exports import change_to_markdown
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
    """Every change matching a search, as a JSON list in the import format."""

    @extend_schema(parameters=PARAMETERS, responses=ChangeSerializer(many=True))
    def get(self, request):
        form = _form(request)
        changes = matching_changes(form.params())
        data = ChangeSerializer(changes, many=True, context={"request": request}).data
        response = Response(data)
        response["Content-Disposition"] = 'attachment; filename="changes.json"'
        return response


class ChangeExportView(APIView):
    """One change as Markdown (`export.md`) or JSON (`export.json`)."""

    @extend_schema(
        responses={
            (200, "text/markdown"): OpenApiTypes.STR,
            (200, "application/json"): ChangeSerializer,
        }
    )
    def get(self, request, ref: str, fmt: str):
        pk = parse_change_number(ref)
        if pk is None or fmt not in ("md", "json"):
            raise Http404
        change = get_object_or_404(change_list(), pk=pk)
        filename = f"{change.number}.{fmt}"
        if fmt == "md":
            response = HttpResponse(
                change_to_markdown(change), content_type="text/markdown; charset=utf-8"
            )
        else:
            response = Response(ChangeSerializer(change, context={"request": request}).data)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
