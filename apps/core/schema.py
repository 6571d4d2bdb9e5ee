"""The published API schema documents every error an operation can answer, not only success.

drf-spectacular describes the success response of each operation; the errors come from the
machinery around the view (authentication, permissions, parsers, the body limit, throttles,
lookups, validation), so they are derived here from that machinery, for every operation
including ones added later, rather than listed by hand on each view.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ErrorSerializer(serializers.Serializer):
    """Every error but a validation error: one sentence saying what went wrong."""

    detail = serializers.CharField()

    class Meta:
        ref_name = "Error"


# A validation error names each bad field (`{"title": ["..."]}`, list items by index) or, for a
# body that cannot be read at all, says why in `detail`.
VALIDATION_ERROR = {
    "type": "object",
    "additionalProperties": {},
    "description": "Field name (or `detail`, `non_field_errors`) to what is wrong with it.",
}


class AutoSchema(SpectacularAutoSchema):
    def _get_parameters(self):
        parameters = super()._get_parameters()
        for parameter in parameters:
            # Filters, search fields and pages are read by Django forms and django-filter, which
            # take an empty value as no value: `?date_to=` is every date, `?page=` the first.
            if parameter["in"] == "query":
                parameter["allowEmptyValue"] = True
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, (description, body) in self._error_responses().items():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    OpenApiResponse(body, description), str(code), direction=direction
                )
        return responses

    def _get_response_headers_for_code(self, status_code, direction="response"):
        headers = super()._get_response_headers_for_code(status_code, direction)
        if str(status_code) == "429":
            headers = {
                **(headers or {}),
                "Retry-After": {
                    "schema": {"type": "integer"},
                    "description": "Seconds until the next request is allowed.",
                },
            }
        return headers

    def _error_responses(self) -> dict[int, tuple[str, object]]:
        writes = self.method not in SAFE_METHODS
        errors: dict[int, tuple[str, object]] = {}
        if writes or self._reads_query():
            errors[400] = ("The request is invalid; nothing was changed.", VALIDATION_ERROR)
        if not all(issubclass(p, AllowAny) for p in self.view.permission_classes):
            errors[401] = ("No valid token or session.", ErrorSerializer)
            if writes:
                errors[403] = ("Your role does not allow this.", ErrorSerializer)
        if "{" in self.path or self._pages():
            errors[404] = ("No such object, or a page past the last.", ErrorSerializer)
        if writes and self._carries_version():
            errors[409] = (
                "Changed since you read it (stale `version`); not applied.",
                ErrorSerializer,
            )
        if writes and self.get_request_serializer() is not None:
            errors[413] = ("The body is larger than the server accepts.", ErrorSerializer)
            errors[415] = ("The body is not in a media type listed here.", ErrorSerializer)
        if self._throttled():
            errors[429] = (
                "Too many requests of this kind; retry after `Retry-After`.",
                ErrorSerializer,
            )
        return errors

    def _reads_query(self) -> bool:
        """Whether the operation validates query parameters (filters, search words)."""
        if any(p.location == "query" for p in self.get_override_parameters()):
            return True
        return self._is_list_view() and bool(self.get_filter_backends())

    def _pages(self) -> bool:
        paginated = self._is_list_view() and self._get_paginator() is not None
        return paginated or any(p.name == "page" for p in self.get_override_parameters())

    def _carries_version(self) -> bool:
        """Writes that carry the `version` the caller last saw answer 409 when it is stale."""
        body = self.get_request_serializer()
        if isinstance(body, type) and issubclass(body, serializers.Serializer):
            body = body()
        return isinstance(body, serializers.Serializer) and "version" in body.fields

    def _throttled(self) -> bool:
        scope = getattr(self.view, "throttle_scope", None)
        if isinstance(scope, dict):
            scope = scope.get(getattr(self.view, "action", None))
        return bool(scope)
