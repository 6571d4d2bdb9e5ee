"""fixledger's REST API over urllib: JSON in, JSON out, errors as exceptions with a message."""

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import __version__

# Seconds for one HTTP request; waiting for a measurement is many short requests.
REQUEST_TIMEOUT = 30.0
# How often a 429 is waited out before giving up (the server says how long in Retry-After).
MAX_THROTTLE_WAITS = 5


class ApiError(Exception):
    """The server refused a request, or could not be reached. `status` is 0 for the latter."""

    def __init__(self, message: str, *, status: int = 0, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def transient(self) -> bool:
        """Worth asking again later: no answer at all, or a server or proxy that is restarting."""
        return self.status in (0, 502, 503, 504)


def _describe(body: Any) -> str:
    """The server's error body in one line: `detail`, or each field with its messages."""
    if isinstance(body, dict):
        if set(body) == {"detail"}:
            return str(body["detail"])
        parts = []
        for field, value in body.items():
            messages = value if isinstance(value, list) else [value]
            parts.append(f"{field}: {' '.join(str(m) for m in messages)}")
        return "; ".join(parts)
    if isinstance(body, list):
        return " ".join(str(item) for item in body)
    return str(body or "").strip()[:300]


class Api:
    """One fixledger server, as one user (a token from *your name → API tokens*)."""

    def __init__(self, url: str, token: str):
        self.base = url.rstrip("/")
        self.token = token

    def absolute(self, path: str) -> str:
        return path if "://" in path else f"{self.base}{path}"

    def get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        return self.request("GET", path)[1]

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        """(status, decoded JSON body); raises ApiError for anything but 2xx."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {
            "Accept": "application/json",
            "Authorization": f"Token {self.token}",
            "User-Agent": f"fixledger-client/{__version__}",
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        url = self.absolute(path)
        if not url.startswith(("http://", "https://")):
            raise ApiError(f"{url} is not an http:// or https:// URL.")
        for _attempt in range(MAX_THROTTLE_WAITS + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 -- http(s) only, checked above
            try:
                with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:  # noqa: S310
                    return response.status, _decode(response.read())
            except urllib.error.HTTPError as exc:
                status, answer = exc.code, _decode(exc.read())
                if status == 429:
                    time.sleep(_retry_after(exc.headers.get("Retry-After")))
                    continue
                raise ApiError(_http_message(status, answer), status=status, body=answer) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                raise ApiError(f"Cannot reach {self.base}: {reason}.") from None
        raise ApiError(f"{self.base} kept answering 429 Too Many Requests.", status=429)


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _retry_after(header: str | None) -> float:
    try:
        return min(max(float(header or 5), 1.0), 60.0)
    except ValueError:
        return 5.0


def _http_message(status: int, body: Any) -> str:
    detail = _describe(body)
    if status == 401:
        return (
            f"The token was refused (401): {detail or 'not authenticated'}. Check FIXLEDGER_TOKEN."
        )
    if status == 403:
        return f"Not allowed (403): {detail}"
    return f"{status}: {detail}" if detail else f"The server answered {status}."
