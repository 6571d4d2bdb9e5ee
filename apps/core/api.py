"""REST framework glue shared by every app's API."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.pagination import PageNumberPagination
from rest_framework.views import exception_handler as drf_exception_handler

from .exceptions import Conflict


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


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
