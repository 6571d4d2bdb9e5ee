"""POST JSON to an admin-registered URL: a timeout on every call, no redirect followed."""

import json
import urllib.error
import urllib.request

from django.conf import settings

from . import DeliveryError, PermanentError

# Enough of the receiver's answer to say why it refused, not a page of HTML.
REASON_CHARS = 200


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could send the body (and its signature) somewhere nobody registered."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No proxy from the environment either: the request goes where the admin said, directly.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def post_json(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    """POST `body` (JSON) to `url`; the status on a 2xx answer, else a DeliveryError."""
    if not url.startswith(("http://", "https://")):
        raise PermanentError(f"{url} is not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 (http and https only, checked above)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "fixledger-notifications",
            **(headers or {}),
        },
    )
    try:
        with _opener.open(request, timeout=settings.NOTIFICATION_HTTP_TIMEOUT) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        answer = exc.read(REASON_CHARS).decode("utf-8", "replace").strip()
        reason = f"{url} answered {exc.code} {exc.reason}" + (f": {answer}" if answer else "")
        if 300 <= exc.code < 400:
            where = exc.headers.get("Location", "?")
            raise PermanentError(
                f"{url} redirected ({exc.code}) to {where}; not followed"
            ) from None
        if exc.code in (400, 401, 403, 404, 405, 410, 413, 422):
            raise PermanentError(reason) from None
        raise DeliveryError(reason) from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"could not reach {url}: {exc.reason}") from None
    except TimeoutError:
        timeout = settings.NOTIFICATION_HTTP_TIMEOUT
        raise DeliveryError(f"{url} did not answer within {timeout} s") from None
    except OSError as exc:
        raise DeliveryError(f"could not reach {url}: {exc}") from None


def dumps(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
