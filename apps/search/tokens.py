"""Filter tokens: everything a search can filter on, as terms beside the words in the text index.

Words and filters then meet inside one inverted index (PostgreSQL's GIN, SQLite's FTS5), which
intersects them by skipping through its lists instead of fetching every row of a common word.

- `p:<project id>`, `o:<owner id>`, `s:<status>`, `t:<tag>`, `v:<verdict>`
- `m:<metric>` for each metric of the latest finished measurement, `g:<metric>:<step>` for each
  step in GAIN_STEPS its gain reaches, and `b:<step>` for the best gain over all metrics;
  a threshold between two steps takes the step below and checks the exact gain on the row.
- `f:<path>` for each file touched and every tail of it that starts a folder or file name
  (`apps/billing/cache.py`, `billing/cache.py`, `cache.py`), lower-cased; a path fragment is
  looked up as a prefix of these, so `cache.py`, `apps/billing/` and `billing/cac` all find
  `apps/billing/cache.py`, while `ache.py` (not the start of a name) does not.
"""

from collections.abc import Iterable

GAIN_STEPS = (1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 100)
# Longer path tails are cut: a fragment is matched on its first characters only.
MAX_PATH_TOKEN = 200
# Path tokens of one change stop at this many characters (PostgreSQL holds at most 1 MB of
# lexemes per row): a diff of thousands of deep paths is searchable by its first files.
MAX_PATH_CHARS = 400_000


def project(pk: int) -> str:
    return f"p:{pk}"


def owner(pk: int) -> str:
    return f"o:{pk}"


def status(value: str) -> str:
    return f"s:{value}"


def tag(value: str) -> str:
    return f"t:{value}"


def verdict(value: str) -> str:
    return f"v:{value}"


def metric(name: str) -> str:
    return f"m:{name}"


def path(fragment: str) -> str:
    """The token prefix a path fragment is looked up by (control characters dropped)."""
    printable = "".join(ch for ch in fragment.lower().lstrip("/") if ch >= " ")
    return f"f:{printable}"[: MAX_PATH_TOKEN + 2]


def gain(minimum: float, metric_name: str = "") -> tuple[str | None, bool]:
    """(token, exact): the token of the highest step at or below `minimum` (None below the first
    step), and whether having it already means the gain is at least `minimum`."""
    steps = [s for s in GAIN_STEPS if s <= minimum]
    if not steps:
        return None, False
    step = steps[-1]
    token = f"g:{metric_name}:{step}" if metric_name else f"b:{step}"
    return token, step == minimum


def path_tails(paths: Iterable[str]) -> list[str]:
    tails: dict[str, None] = {}
    size = 0
    for p in paths:
        parts = p.strip("/").split("/")
        for i in range(len(parts)):
            token = path("/".join(parts[i:]))
            size += len(token)
            if size > MAX_PATH_CHARS:
                return list(tails)
            tails[token] = None
    return list(tails)


def for_change(
    *,
    project_id: int,
    owner_id: int,
    status_value: str,
    tags: Iterable[str],
    verdicts: Iterable[str],
    gains: dict[str, float | None],
    paths: Iterable[str],
) -> list[str]:
    found = [project(project_id), owner(owner_id), status(status_value)]
    found += [tag(t) for t in tags]
    found += [verdict(v) for v in verdicts]
    best = None
    for name, value in gains.items():
        found.append(metric(name))
        if value is not None:
            found += [f"g:{name}:{s}" for s in GAIN_STEPS if value >= s]
            best = value if best is None else max(best, value)
    if best is not None:
        found += [f"b:{s}" for s in GAIN_STEPS if best >= s]
    found += path_tails(paths)
    return list(dict.fromkeys(found))
