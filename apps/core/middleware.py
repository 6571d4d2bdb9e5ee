from django.conf import settings
from django.http import HttpResponse, JsonResponse

from .context import accept_request_id, request_id_var, request_var
from .limits import PayloadTooLarge


class RequestIdMiddleware:
    """Gives every request an id (the caller's X-Request-ID if well-formed) and echoes it.

    The request is kept for log lines, which show its user once authentication set one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = accept_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        token = request_id_var.set(request_id)
        request_token = request_var.set(request)
        try:
            response = self.get_response(request)
        finally:
            request_var.reset(request_token)
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class BodyLimitMiddleware:
    """Refuses a body larger than MAX_REQUEST_BYTES with 413 before anything reads it.

    Django checks its own limit only when a form body is parsed, never for a JSON body or an
    uploaded file; this covers every request that says its length. Bodies sent without one are
    bounded where they are read (the API's JSON parser, Django's form parser).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAX_REQUEST_BYTES:
            message = str(PayloadTooLarge().detail)
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
