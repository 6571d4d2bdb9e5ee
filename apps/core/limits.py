"""What a request may cost: bounded JSON bodies and per-user rates of the expensive endpoints.

Kept apart from `api` because REST framework imports these classes while it builds its views.
"""

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser
from rest_framework.parsers import get_encoding
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.utils import json as drf_json

from . import safejson


class PayloadTooLarge(APIException):
    status_code = 413
    default_code = "payload_too_large"

    def __init__(self):
        super().__init__(f"The request body is larger than {body_limit_text()}.")


def body_limit_text() -> str:
    size = settings.MAX_REQUEST_BYTES
    return f"{size // 2**20} MiB" if size % 2**20 == 0 else f"{size:,} bytes"


class JSONParser(DRFJSONParser):
    """DRF's JSON parser, bounded: a body nested too deep is a 400 like any other malformed
    body, and one larger than MAX_REQUEST_BYTES a 413, even when it came without a length."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        parse_constant = drf_json.strict_constant if self.strict else None
        body = stream.read(settings.MAX_REQUEST_BYTES + 1)
        if len(body) > settings.MAX_REQUEST_BYTES:
            raise PayloadTooLarge()
        try:
            return safejson.loads(body.decode(encoding), parse_constant=parse_constant)
        except ValueError as exc:  # JSONDecodeError, JSONTooDeep, UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}") from exc


class ScopedThrottle(ScopedRateThrottle):
    """Per-user rates for expensive endpoints, named by the view's `throttle_scope`: one scope
    for the whole view, or a dict from action to scope for a viewset whose reads are cheap."""

    def allow_request(self, request, view):
        scope = getattr(view, self.scope_attr, None)
        if isinstance(scope, dict):
            scope = scope.get(getattr(view, "action", None))
        if not scope:
            return True
        self.scope = scope
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super(ScopedRateThrottle, self).allow_request(request, view)

    def get_rate(self):
        # Read on each request (not frozen at import like DRF's), so the settings decide.
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
