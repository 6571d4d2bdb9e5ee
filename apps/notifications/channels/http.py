"""POST JSON to an admin-registered URL: a timeout on every call, no redirect followed."""

import http.client
import json
import urllib.error
import urllib.request

from django.conf import settings

from . import DeliveryError, PermanentError

# Enough of the receiver's answer to say why it refused, not a page of HTML.
REASON_CHARS = 200
# Answers that say the request itself is wrong: sending it again would not help.
PERMANENT_STATUSES = {400, 401, 403, 404, 405, 410, 413, 422}


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
    # Reasons never name the URL: a Slack URL is itself a secret, and every reader of the
    # change sees why its deliveries failed.
    try:
        with _opener.open(request, timeout=settings.NOTIFICATION_HTTP_TIMEOUT) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        answer = exc.read(REASON_CHARS).decode("utf-8", "replace").strip()
        reason = f"the receiver answered {exc.code} {exc.reason}" + (
            f": {answer}" if answer else ""
        )
        if 300 <= exc.code < 400:
            raise PermanentError(f"the receiver redirected ({exc.code}); not followed") from None
        if exc.code in PERMANENT_STATUSES:
            raise PermanentError(reason) from None
        raise DeliveryError(reason) from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"could not reach the receiver: {exc.reason}") from None
    except TimeoutError:
        timeout = settings.NOTIFICATION_HTTP_TIMEOUT
        raise DeliveryError(f"the receiver did not answer within {timeout} s") from None
    except http.client.HTTPException as exc:
        raise DeliveryError(f"the receiver's answer was not HTTP: {exc!r}") from None
    except OSError as exc:
        raise DeliveryError(f"could not reach the receiver: {exc}") from None


def dumps(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
