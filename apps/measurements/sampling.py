"""Fewer points that keep a series' shape: the runner's RSS timeline and the charts share it."""

from collections.abc import Sequence


def downsample(points: Sequence[Sequence[float]], max_points: int) -> list:
    """At most `max_points` of (x, y) `points`, in order: evenly sized buckets, each kept as its
    lowest and highest sample. Every 20th point would miss the peak and the troughs between
    spikes; the highest alone would draw a leak where memory was in fact freed and retaken."""
    if len(points) <= max_points:
        return list(points)
    buckets = max(1, max_points // 2)
    size = len(points) / buckets
    kept = []
    for i in range(buckets):
        chunk = points[int(i * size) : int((i + 1) * size)]
        if not chunk:
            continue
        low = min(range(len(chunk)), key=lambda j: chunk[j][1])
        high = max(range(len(chunk)), key=lambda j: chunk[j][1])
        kept += [chunk[j] for j in sorted({low, high})]
    return kept
