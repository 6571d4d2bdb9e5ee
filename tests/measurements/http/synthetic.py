"""Generator results built from chosen numbers, for judging the analysis without a network."""

from __future__ import annotations

from collections import Counter

import numpy as np

from apps.measurements.http.generator import new_histogram


def endpoint(
    latencies_ms,
    *,
    errors: dict[str, int] | None = None,
    cache: dict[str, int] | None = None,
    queries: dict[int, int] | None = None,
) -> dict:
    histogram = new_histogram()
    for value in np.asarray(latencies_ms, dtype=float):
        histogram.record_value(max(1, int(value * 1000)))
    count = len(latencies_ms)
    return {
        "count": count,
        "histogram": histogram.encode().decode("ascii"),
        "statuses": {"200": count},
        "errors": dict(errors or {}),
        "cache": dict(cache or {"unknown": count}),
        "db_queries": {str(k): v for k, v in (queries or {}).items()} or {"unknown": count},
    }


def result(
    endpoints: dict[str, dict],
    *,
    late: int = 0,
    memory: list[list[int]] | None = None,
    peak: int | None = None,
    inconclusive: str = "",
) -> dict:
    total_hist = new_histogram()
    total = {"count": 0, "errors": Counter(), "cache": Counter(), "db_queries": Counter()}
    from apps.measurements.http.generator import decode_histogram

    for data in endpoints.values():
        total_hist.add(decode_histogram(data["histogram"]))
        total["count"] += data["count"]
        for key in ("errors", "cache", "db_queries"):
            total[key].update(data[key])
    count = total["count"]
    lag = new_histogram()
    lag.record_value(30, count - late)
    if late:
        lag.record_value(5_000, late)
    return {
        "version": 1,
        "mode": "rate",
        "rate": 100.0,
        "requests_done": count,
        "duration_s": count / 100.0,
        "lag": {"histogram": lag.encode().decode("ascii"), "late": late},
        "inconclusive": inconclusive,
        "failure": "",
        "endpoints": endpoints,
        "total": {
            "count": count,
            "histogram": total_hist.encode().decode("ascii"),
            "errors": dict(total["errors"]),
            "cache": dict(total["cache"]),
            "db_queries": dict(total["db_queries"]),
        },
        "memory": {"source": "process", "samples": memory or [], "peak_rss": peak},
    }
