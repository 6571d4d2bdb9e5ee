"""REST framework glue shared by every app's API."""

from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views.defaults import bad_request, page_not_found
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .exceptions import Conflict


class PageSize:
    """Pagination mixin: `page_size` from 1 to `max_page_size`, refused when outside."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        # Refused rather than quietly replaced by the default: the caller would think they got
        # the page size they asked for.
        raw = request.query_params.get(self.page_size_query_param)
        if not raw:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise serializers.ValidationError(
                {self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return size

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == getattr(self, "page_query_param", None):
                parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


class Pagination(PageSize, PageNumberPagination):
    """Numbered pages with an exact count: for lists that stay small."""


class CappedCursorPagination(PageSize, CursorPagination):
    """Newest first, page after page through `next` links, for lists of any length.

    A numbered page N costs an OFFSET past every row before it, and its exact count a scan of
    every matching row: at a million rows either costs more than the page. Here each page seeks
    from the id at the end of the one before (the cursor), and `count` counts up to `count_cap`
    only; `count_capped` says when there are more.
    """

    ordering = "-id"
    count_cap = 10_000

    def paginate_queryset(self, queryset, request, view=None):
        counted = queryset.order_by()[: self.count_cap + 1].count()
        self.count_capped = counted > self.count_cap
        self.count = min(counted, self.count_cap)
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.count,
                "count_capped": self.count_capped,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["required"] = ["count", "count_capped", "results"]
        response["properties"] = {
            "count": {
                "type": "integer",
                "description": f"Matching rows, counted up to {self.count_cap:,}.",
                "example": 123,
            },
            "count_capped": {
                "type": "boolean",
                "description": "True when more rows match than `count` says.",
            },
            **response["properties"],
        }
        return response


class StrictStrings:
    """Serializer mixin: text fields take JSON strings only, measured as sent.

    REST framework quietly turns 12 into "12" for a text field, and trims whitespace before it
    checks the length, so bodies the schema calls invalid would be stored; here they are
    refused like any other wrong type or length.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {}
            for name, field in self.fields.items():
                if field.read_only or name not in data:
                    continue
                value = data[name]
                if isinstance(field, serializers.ListField) and isinstance(value, list):
                    field, values = field.child, value
                else:
                    values = [value]
                if not isinstance(field, serializers.CharField):
                    continue
                if any(v is not None and not isinstance(v, str) for v in values):
                    errors[name] = ["Not a valid string."]
                elif field.max_length and any(v and len(v) > field.max_length for v in values):
                    errors[name] = [f"At most {field.max_length} characters."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


# Django's error pages for pages; for API paths the same JSON body REST framework answers with.


def not_found(request, exception):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def bad_request_view(request, exception):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return bad_request(request, exception)


class ConflictError(APIException):
    status_code = 409
    default_code = "conflict"


def exception_handler(exc, context):
    # Services raise Django's ValidationError; the API answers it as a 400 like any other.
    if isinstance(exc, Conflict):
        exc = ConflictError(str(exc))
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = serializers.ValidationError(detail)
    return drf_exception_handler(exc, context)
