"""The request plan of an HTTP probe, and the rules that keep it pointed at its own target.

A plan is what an admin writes into an HTTP profile: which requests, how many, at what rate,
and where the service reports its cache status, database queries and memory. `parse_plan`
turns the JSON an admin wrote into a `Plan` or raises `PlanError` with a sentence naming the
field; nothing here imports Django, so the generator process, the worker and the profile form
share one set of rules.

Security. A plan never chooses a host. Its paths are origin-form only (``/path?query``): an
absolute URL, a scheme-relative ``//host``, userinfo (``@``), backslashes (which browsers and
some parsers read as ``/``), percent-encoded slashes, at-signs, backslashes or dots that a
decoding proxy would turn back into those, control characters and ``..`` segments are refused.
`target_url` joins a checked path to a base URL and checks the joined URL still has the base's
scheme, host and port. The base URL is either the loopback port of a service the probe started
(`loopback_base_url`) or an environment's admin-registered URL (`validate_base_url`). Header
names are tokens and values carry no CR, LF or NUL, and the probe sets ``Host`` itself.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

# The default number of measured requests per side: p99 rests on its 20 slowest.
DEFAULT_REQUESTS = 2_000
# Fewer requests than this and "p99" would be one of the ten slowest, noise rather than a tail.
MIN_REQUESTS_FOR_P99 = 1_000
DEFAULT_WARMUP = 200
DEFAULT_RATE = 100.0
DEFAULT_CONCURRENCY = 8
# Connections the probe opens at the start and never exceeds (as wrk2's -c). A service that
# starts a thread or a buffer per connection would otherwise grow whenever a stall made the
# client open more, and that growth would read as a leak.
DEFAULT_CONNECTIONS = 32
DEFAULT_TIMEOUT = 10.0
# A probe must end: 100,000 requests at the slowest allowed rate is still under four hours.
MAX_REQUESTS = 100_000
MAX_RATE = 50_000.0
MIN_RATE = 10.0
MAX_CONCURRENCY = 1_000
MAX_ENTRIES = 50
MAX_PATH_LENGTH = 2_000
MAX_BODY_BYTES = 64 * 1024
MAX_HEADERS = 20
MAX_HEADER_LENGTH = 1_000
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_CACHE_HEADERS = ("Cache-Status", "X-Cache", "Age")
DEFAULT_DB_HEADER = "X-DB-Queries"
# Headers the probe owns: a plan that set them could redirect the request (Host), smuggle a
# second one (Transfer-Encoding, Content-Length) or keep connections in odd states.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"}
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
# Unreserved and sub-delimiters plus ':' and '/' (RFC 3986 pchar), '?' and '%' for escapes;
# everything else (spaces, quotes, '\\', '#', '@', non-ASCII) must be written escaped or not at all.
_PATH_CHARS = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:/?%]*$")
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Decoded, these would change which host or which path a decoding proxy or framework sees.
_DANGEROUS_DECODED = re.compile(r"[/\\@#?]|[\x00-\x1f\x7f]")
_FIELD_PATH = re.compile(r"^[A-Za-z0-9_\-]{1,64}(\.[A-Za-z0-9_\-]{1,64}){0,7}$")


class PlanError(ValueError):
    """A plan or URL that cannot be used; the message names the field and says why."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One kind of request in the plan, drawn with probability proportional to ``weight``."""

    method: str
    path: str
    weight: float = 1.0
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    name: str = ""

    @property
    def endpoint(self) -> str:
        """The name results are reported under: the plan's name, else "METHOD /path"."""
        return self.name or f"{self.method} {self.path}"


@dataclasses.dataclass(frozen=True)
class Memory:
    """Where the service's memory comes from.

    ``process``: the RSS of the served process tree, read by the probe from /proc (only for a
    service the probe started). ``endpoint``: GET ``path`` and read the number at ``field`` (a
    dotted path into the JSON answer), e.g. ``/_fixledger/memory`` and ``rss``. ``none``: no
    memory figures.
    """

    source: str = "none"
    path: str = ""
    field: str = ""
    # Samples per side: enough points for Theil-Sen's interval without costing the loop.
    samples: int = 100


@dataclasses.dataclass(frozen=True)
class Plan:
    """Validated: build one with `parse_plan`, never by hand from user input."""

    entries: tuple[Entry, ...]
    requests: int = DEFAULT_REQUESTS
    warmup: int = DEFAULT_WARMUP
    mode: str = "rate"  # "rate": open loop at `rate` req/s; "concurrency": closed loop
    rate: float = DEFAULT_RATE
    concurrency: int = DEFAULT_CONCURRENCY
    connections: int = DEFAULT_CONNECTIONS
    timeout: float = DEFAULT_TIMEOUT
    wrong_statuses: tuple[int, ...] = ()
    cache_headers: tuple[str, ...] = DEFAULT_CACHE_HEADERS
    db_header: str = DEFAULT_DB_HEADER
    server_timing_db: str = ""  # a Server-Timing entry name, read when db_header is absent
    memory: Memory = dataclasses.field(default_factory=Memory)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; `parse_plan` reads it back to an equal plan."""
        data = dataclasses.asdict(self)
        data["entries"] = [
            {**dataclasses.asdict(e), "headers": dict(e.headers)} for e in self.entries
        ]
        for key in ("wrong_statuses", "cache_headers"):
            data[key] = list(data[key])
        return data


def parse_plan(data: Mapping[str, Any]) -> Plan:
    """A `Plan` from an admin's JSON, or `PlanError` naming the first thing wrong."""
    if not isinstance(data, Mapping):
        raise PlanError("The plan must be a JSON object.")
    known = {f.name for f in dataclasses.fields(Plan)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PlanError(f"Unknown plan field(s): {', '.join(map(str, unknown))}.")
    raw_entries = data.get("entries")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise PlanError('entries: list at least one request, e.g. [{"path": "/"}].')
    if len(raw_entries) > MAX_ENTRIES:
        raise PlanError(f"entries: at most {MAX_ENTRIES} requests.")
    entries = tuple(_entry(i, raw) for i, raw in enumerate(raw_entries))
    names = [e.endpoint for e in entries]
    if len(set(names)) != len(names):
        raise PlanError("entries: two requests share a name; give each a distinct name.")

    mode = data.get("mode", "rate")
    if mode not in ("rate", "concurrency"):
        raise PlanError('mode: "rate" (open loop, the default) or "concurrency".')
    memory = _memory(data.get("memory", {}))
    return Plan(
        entries=entries,
        requests=_int(data, "requests", DEFAULT_REQUESTS, 1, MAX_REQUESTS),
        warmup=_int(data, "warmup", DEFAULT_WARMUP, 0, MAX_REQUESTS),
        mode=mode,
        rate=_number(data, "rate", DEFAULT_RATE, MIN_RATE, MAX_RATE),
        concurrency=_int(data, "concurrency", DEFAULT_CONCURRENCY, 1, MAX_CONCURRENCY),
        connections=_int(data, "connections", DEFAULT_CONNECTIONS, 1, MAX_CONCURRENCY),
        timeout=_number(data, "timeout", DEFAULT_TIMEOUT, 0.05, 120.0),
        wrong_statuses=_statuses(data.get("wrong_statuses", [])),
        cache_headers=_header_names(data.get("cache_headers", list(DEFAULT_CACHE_HEADERS))),
        db_header=_optional_token(data, "db_header", DEFAULT_DB_HEADER),
        server_timing_db=_optional_token(data, "server_timing_db", ""),
        memory=memory,
        seed=_int(data, "seed", 0, 0, 2**31 - 1),
    )


def validate_path(path: Any) -> str:
    """An origin-form request target (``/a/b?x=1``) that cannot name another host.

    Raises `PlanError` for anything else; see the module docstring for the tricks refused.
    """
    if not isinstance(path, str) or not path:
        raise PlanError("path: write it as a string starting with /.")
    if len(path) > MAX_PATH_LENGTH:
        raise PlanError(f"path: at most {MAX_PATH_LENGTH} characters.")
    if not path.startswith("/") or path.startswith("//"):
        raise PlanError(f"path {path!r}: must start with a single / (no scheme, no host).")
    if not _PATH_CHARS.match(path):
        raise PlanError(
            f"path {path!r}: only letters, digits and -._~!$&'()*+,;=:/?% are allowed "
            "(no spaces, backslashes, @, # or control characters; percent-encode the rest)."
        )
    if _ESCAPE.search(path):
        raise PlanError(f"path {path!r}: every % must start an escape such as %20.")
    # Decode repeatedly: %252f is %2f after one proxy and / after the next.
    decoded, previous = path, None
    while decoded != previous:
        try:
            previous, decoded = decoded, unquote(decoded, errors="strict")
        except UnicodeDecodeError:
            raise PlanError(f"path {path!r}: its escapes do not decode as UTF-8.") from None
        encoded_part = previous.split("?", 1)[0]
        for escape in re.findall(r"%[0-9A-Fa-f]{2}", encoded_part):
            if _DANGEROUS_DECODED.search(unquote(escape)) or unquote(escape) == ".":
                raise PlanError(
                    f"path {path!r}: the escape {escape} decodes to a character that may "
                    "change the host or path; write the path plainly."
                )
    target = urlsplit(path)
    if target.scheme or target.netloc:
        raise PlanError(f"path {path!r}: must not name a scheme or host.")
    segments = target.path.split("/")
    # "..;" is how some servlet containers spell "..".
    if any(segment.split(";", 1)[0] in ("..", ".") for segment in segments):
        raise PlanError(f"path {path!r}: no . or .. segments.")
    return path


def validate_base_url(url: Any) -> str:
    """An admin-registered base URL: http(s), a host, no userinfo, query or fragment.

    Returned without a trailing slash, so `target_url` can append a path.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_PATH_LENGTH:
        raise PlanError("base URL: write it as http://host[:port][/prefix].")
    if re.search(r"[\x00-\x20\x7f\\]", url):
        raise PlanError("base URL: no spaces, backslashes or control characters.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise PlanError("base URL: only http:// and https:// are probed.")
    if not parts.hostname or "@" in parts.netloc:
        raise PlanError("base URL: name a host, without user:password@.")
    if parts.query or parts.fragment:
        raise PlanError("base URL: no query string or fragment.")
    try:
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError as exc:
        raise PlanError(f"base URL: {exc}.") from None
    if parts.path not in ("", "/"):
        validate_path(parts.path)
    return url.rstrip("/")


def loopback_base_url(port: int) -> str:
    """The base URL of a service the probe started on this host: loopback, nothing else."""
    if not isinstance(port, int) or not 0 < port < 65536:
        raise PlanError(f"port {port!r} is not a TCP port.")
    return f"http://127.0.0.1:{port}"


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def target_url(base_url: str, path: str) -> str:
    """``base_url`` + ``path``, refused unless the result still points at the base's origin."""
    base = validate_base_url(base_url)
    url = base + validate_path(path)
    joined, origin = urlsplit(url), urlsplit(base)
    if (joined.scheme, joined.hostname, joined.port) != (
        origin.scheme,
        origin.hostname,
        origin.port,
    ):
        raise PlanError(f"path {path!r}: would leave {base}.")
    return url


def _entry(index: int, raw: Any) -> Entry:
    where = f"entries[{index}]"
    if not isinstance(raw, Mapping):
        raise PlanError(f"{where}: write each request as an object with a path.")
    unknown = sorted(set(raw) - {"method", "path", "weight", "headers", "body", "name"})
    if unknown:
        raise PlanError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}.")
    method = raw.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise PlanError(f"{where}.method: one of {', '.join(METHODS)}.")
    try:
        path = validate_path(raw.get("path"))
    except PlanError as exc:
        raise PlanError(f"{where}.{exc}") from None
    weight = raw.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= 1e6:
        raise PlanError(f"{where}.weight: a positive number.")
    headers = _headers(where, raw.get("headers", {}))
    body = raw.get("body")
    if body is not None and (not isinstance(body, str) or len(body.encode()) > MAX_BODY_BYTES):
        raise PlanError(f"{where}.body: a string of at most {MAX_BODY_BYTES} bytes.")
    name = raw.get("name", "")
    if not isinstance(name, str) or len(name) > 100 or re.search(r"[\x00-\x1f\x7f]", name):
        raise PlanError(f"{where}.name: at most 100 printable characters.")
    return Entry(
        method=method.upper(),
        path=path,
        weight=float(weight),
        headers=headers,
        body=body,
        name=name.strip(),
    )


def _headers(where: str, raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping) or len(raw) > MAX_HEADERS:
        raise PlanError(f"{where}.headers: an object of at most {MAX_HEADERS} name: value pairs.")
    headers = []
    for name, value in raw.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise PlanError(f"{where}.headers: {name!r} is not a header name.")
        if name.lower() in _RESERVED_HEADERS:
            raise PlanError(f"{where}.headers: {name} is set by the probe itself.")
        if (
            not isinstance(value, str)
            or len(value) > MAX_HEADER_LENGTH
            or re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value)
        ):
            raise PlanError(
                f"{where}.headers.{name}: a string of at most {MAX_HEADER_LENGTH} characters "
                "without CR, LF or other control characters."
            )
        headers.append((name, value))
    return tuple(headers)


def _memory(raw: Any) -> Memory:
    if not isinstance(raw, Mapping):
        raise PlanError('memory: an object such as {"source": "process"}.')
    unknown = sorted(set(raw) - {"source", "path", "field", "samples"})
    if unknown:
        raise PlanError(f"memory: unknown field(s) {', '.join(map(str, unknown))}.")
    source = raw.get("source", "none")
    if source not in ("none", "process", "endpoint"):
        raise PlanError('memory.source: "process", "endpoint" or "none".')
    samples = _int(raw, "samples", Memory.samples, 10, 10_000, prefix="memory.")
    if source != "endpoint":
        if raw.get("path") or raw.get("field"):
            raise PlanError('memory: path and field belong to source "endpoint".')
        return Memory(source=source, samples=samples)
    try:
        path = validate_path(raw.get("path"))
    except PlanError as exc:
        raise PlanError(f"memory.{exc}") from None
    field = raw.get("field", "")
    if not isinstance(field, str) or not _FIELD_PATH.match(field):
        raise PlanError("memory.field: a dotted name such as rss or memory.rss_bytes.")
    return Memory(source=source, path=path, field=field, samples=samples)


def _int(data: Mapping, key: str, default: int, low: int, high: int, *, prefix: str = "") -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PlanError(f"{prefix}{key}: a whole number from {low:,} to {high:,}.")
    return value


def _number(data: Mapping, key: str, default: float, low: float, high: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise PlanError(f"{key}: a number from {low:g} to {high:g}.")
    return float(value)


def _statuses(raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in raw
    ):
        raise PlanError("wrong_statuses: a list of HTTP statuses such as [404, 429].")
    return tuple(sorted(set(raw)))


def _header_names(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_HEADERS:
        raise PlanError("cache_headers: a list of header names.")
    for name in raw:
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise PlanError(f"cache_headers: {name!r} is not a header name.")
    return tuple(raw)


def _optional_token(data: Mapping, key: str, default: str) -> str:
    value = data.get(key, default)
    if value in ("", None):
        return ""
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise PlanError(f"{key}: a header or entry name (letters, digits, -).")
    return value
