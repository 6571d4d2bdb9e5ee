"""Charts as inline SVG drawn on the server: no script, no CDN, nothing the CSP must allow.

Each chart scales with the page (a viewBox, CSS width 100 %), has axes with ticks, gridlines and
units, and says in words what it shows (its accessible name). Colours come from classes that
static/css/app.css fills per colour scheme (light and dark, both WCAG AA; tested), and the two
sides differ in shape too (before dashed or hollow, after solid), not in colour alone.
"""

import math
from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from apps.core.units import format_bytes

from .metrics import signed_pct
from .sampling import downsample

# The CSS classes of the two sides; app.css gives them their colours.
SIDES = ("before", "after")
# Points drawn per line at most: more than a chart's width in pixels shows nothing more.
MAX_LINE_POINTS = 400


def format_value(value: float | None, unit: str) -> str:
    """A number in its unit for people: sizes with binary prefixes (KiB, MiB, GiB)."""
    if value is None:
        return "—"
    if unit in ("bytes", "B"):
        return format_bytes(value)
    if unit == "s":
        return f"{value * 1000:,.1f} ms" if abs(value) < 1 else f"{value:,.3f} s"
    return f"{value:,.4g} {unit}".strip()


def change_text(result: dict) -> str:
    """ "+7.2 % (95 % CI +5.0 … +9.1 %)", or "—" without a relative change."""
    if result.get("change_pct") is None:
        return "—"
    low, high = result.get("ci_low_pct"), result.get("ci_high_pct")
    interval = ""
    if low is not None and high is not None:
        interval = f" (95 % CI {signed_pct(low, unit=False)} … {signed_pct(high)})"
    return signed_pct(result["change_pct"]) + interval


# --- axes ----------------------------------------------------------------------------------


def axis_unit(unit: str, largest: float) -> tuple[float, str]:
    """(divisor, unit shown) for an axis whose values reach `largest`: bytes in KiB/MiB/GiB,
    seconds below one in ms."""
    if unit in ("bytes", "B"):
        for divisor, name in ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
            if abs(largest) >= divisor:
                return float(divisor), name
        return 1.0, "B"
    if unit == "s" and abs(largest) < 1:
        return 0.001, "ms"
    return 1.0, unit


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) from at or below `low` to at or
    above `high`, about `count` of them."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:  # one value: centred on it
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(i * step, 10) for i in range(first, last + 1)]


def tick_text(value: float) -> str:
    return f"{value:,.10g}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"


def _scale(lo: float, hi: float, start: float, end: float):
    span = (hi - lo) or 1.0
    return lambda v: start + (v - lo) / span * (end - start)


def _x_axis(ticks, x, top: float, bottom: float, title: str) -> SafeString:
    return format_html(
        '<g class="axis">{}<line class="axis-line" x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<text class="axis-title" x="{}" y="{}" text-anchor="middle">{}</text></g>',
        format_html_join(
            "",
            '<line class="grid" x1="{x}" y1="{t}" x2="{x}" y2="{b}"/>'
            '<line class="axis-line" x1="{x}" y1="{b}" x2="{x}" y2="{b6}"/>'
            '<text x="{x}" y="{b20}" text-anchor="middle">{label}</text>',
            (
                {
                    "x": f"{x(v):.1f}",
                    "t": top,
                    "b": bottom,
                    "b6": bottom + 6,
                    "b20": bottom + 20,
                    "label": tick_text(v),
                }
                for v in ticks
            ),
        ),
        f"{x(ticks[0]):.1f}",
        bottom,
        f"{x(ticks[-1]):.1f}",
        bottom,
        f"{(x(ticks[0]) + x(ticks[-1])) / 2:.1f}",
        bottom + 40,
        title,
    )


def _y_axis(ticks, y, left: float, right: float, title: str) -> SafeString:
    return format_html(
        '<g class="axis">{}<line class="axis-line" x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<text class="axis-title" x="16" y="{}" text-anchor="middle"'
        ' transform="rotate(-90 16 {})">{}</text></g>',
        format_html_join(
            "",
            '<line class="grid" x1="{l}" y1="{y}" x2="{r}" y2="{y}"/>'
            '<line class="axis-line" x1="{l6}" y1="{y}" x2="{l}" y2="{y}"/>'
            '<text x="{l10}" y="{y4}" text-anchor="end">{label}</text>',
            (
                {
                    "l": left,
                    "r": right,
                    "l6": left - 6,
                    "l10": left - 10,
                    "y": f"{y(v):.1f}",
                    "y4": f"{y(v) + 4:.1f}",
                    "label": tick_text(v),
                }
                for v in ticks
            ),
        ),
        left,
        f"{y(ticks[0]):.1f}",
        left,
        f"{y(ticks[-1]):.1f}",
        f"{(y(ticks[0]) + y(ticks[-1])) / 2:.1f}",
        f"{(y(ticks[0]) + y(ticks[-1])) / 2:.1f}",
        title,
    )


def _svg(width: int, height: int, name: str, body) -> SafeString:
    """The chart element: its accessible name says in words what the picture shows."""
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        "<title>{}</title>{}</svg>",
        width,
        height,
        name,
        name,
        body,
    )


# --- every run of one metric -----------------------------------------------------------------


def strip_chart(
    before: list[float], after: list[float], unit: str, label: str = "value"
) -> SafeString:
    """Every run's value, before above after, on one labelled axis: spread and shift at a
    glance. Each side's median is a tall tick."""
    values = before + after
    if not values:
        return mark_safe("")
    width, height, left, right, top = 960, 170, 84, 24, 12
    divisor, shown_unit = axis_unit(unit, max(abs(v) for v in values))
    ticks = nice_ticks(min(values) / divisor, max(values) / divisor)
    x = _scale(ticks[0], ticks[-1], left, width - right)
    rows = (("before", before, 40), ("after", after, 84))
    axis_y = 112
    dots = format_html_join(
        "",
        '<circle class="dot {}" cx="{}" cy="{}" r="5"><title>{} {}</title></circle>',
        (
            (side, f"{x(v / divisor):.1f}", cy, side, format_value(v, unit))
            for side, series, cy in rows
            for v in series
        ),
    )
    medians = format_html_join(
        "",
        '<line class="median {side}" x1="{x}" y1="{y1}" x2="{x}" y2="{y2}"/>',
        (
            {"side": side, "x": f"{x(_median(series) / divisor):.1f}", "y1": cy - 14, "y2": cy + 14}
            for side, series, cy in rows
            if series
        ),
    )
    names = format_html_join(
        "",
        '<text class="row-label" x="{}" y="{}" text-anchor="end">{}</text>',
        ((left - 10, cy + 4, side) for side, _series, cy in rows),
    )
    body = format_html(
        "{}{}{}{}",
        _x_axis(ticks, x, top, axis_y, f"{label} ({shown_unit})" if shown_unit else label),
        names,
        medians,
        dots,
    )
    summary = "; ".join(
        f"{side}: {len(series)} run{'s' if len(series) != 1 else ''}, median "
        f"{format_value(_median(series), unit)}, from {format_value(min(series), unit)} "
        f"to {format_value(max(series), unit)}"
        for side, series, _cy in rows
        if series
    )
    return _svg(width, height, f"{label} of every run. {summary}.", body)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# --- RSS over time ------------------------------------------------------------------------


def timeline_chart(
    before: list[list[float]],
    after: list[list[float]],
    *,
    x_unit: str = "s",
    label: str = "RSS over time",
) -> SafeString:
    """RSS over time (or over requests, ``x_unit="requests"``) of a typical run of each side,
    with each side's peak marked and labelled."""
    sides = [
        (side, [tuple(p) for p in series])
        for side, series in zip(SIDES, (before, after), strict=True)
    ]
    sides = [(side, series) for side, series in sides if series]
    if not sides:
        return mark_safe("")
    points = [p for _side, series in sides for p in series]
    width, height = 960, 400
    left, right, top, bottom = 84, 24, 24, 320
    divisor, memory_unit = axis_unit("bytes", max(p[1] for p in points))
    y_ticks = nice_ticks(0, max(p[1] for p in points) / divisor)
    x_ticks = nice_ticks(0, max(p[0] for p in points))
    x = _scale(x_ticks[0], x_ticks[-1], left, width - right)
    y = _scale(y_ticks[0], y_ticks[-1], bottom, top)
    x_title = "time (seconds)" if x_unit == "s" else x_unit

    def where(point) -> str:
        return f"{point[0]:.2f} s" if x_unit == "s" else f"{point[0]:,.0f} {x_unit}"

    lines, peaks, summary = [], [], []
    taken: list[tuple[float, float]] = []
    for side, series in sides:
        drawn = downsample(series, MAX_LINE_POINTS)
        lines.append(
            format_html(
                '<polyline class="line {}" points="{}"/>',
                side,
                " ".join(f"{x(t):.1f},{y(rss / divisor):.1f}" for t, rss in drawn),
            )
        )
        peak = max(series, key=lambda p: p[1])
        px, py = x(peak[0]), y(peak[1] / divisor)
        # Labels sit above their marker, or below it when the other side's label is there.
        ly = py - 12
        if any(abs(px - ox) < 260 and abs(ly - oy) < 18 for ox, oy in taken) or ly < top + 12:
            ly = py + 24
        taken.append((px, ly))
        anchor = "end" if px > width - 260 else "start"
        text = f"{side} peak {format_bytes(peak[1])} at {where(peak)}"
        peaks.append(
            format_html(
                '<circle class="peak {}" cx="{}" cy="{}" r="6"/>'
                '<text class="peak-label" x="{}" y="{}" text-anchor="{}">{}</text>',
                side,
                f"{px:.1f}",
                f"{py:.1f}",
                f"{px + (-8 if anchor == 'end' else 8):.1f}",
                f"{ly:.1f}",
                anchor,
                text,
            )
        )
        summary.append(f"{text}, {len(series)} samples")
    legend = format_html_join(
        "",
        '<line class="line {side}" x1="{x1}" y1="{y}" x2="{x2}" y2="{y}"/>'
        '<text x="{tx}" y="{ty}">{side} (median run)</text>',
        (
            {
                "side": side,
                "x1": left + i * 200,
                "x2": left + i * 200 + 36,
                "tx": left + i * 200 + 44,
                "y": height - 14,
                "ty": height - 10,
            }
            for i, (side, _series) in enumerate(sides)
        ),
    )
    body = format_html(
        "{}{}{}{}{}",
        _y_axis(y_ticks, y, left, width - right, f"RSS ({memory_unit})"),
        _x_axis(x_ticks, x, top, bottom, x_title),
        format_html_join("", "{}", ((line,) for line in lines)),
        format_html_join("", "{}", ((peak,) for peak in peaks)),
        legend,
    )
    return _svg(width, height, f"{label}: {'; '.join(summary)}.", body)


# --- latency percentiles -------------------------------------------------------------------


def percentile_chart(before: dict[str, float | None], after: dict[str, float | None]) -> SafeString:
    """Latency percentiles of all requests, a bar per side for each: where the tails moved."""
    names = [n for n in before if before.get(n) is not None and after.get(n) is not None]
    if not names:
        return mark_safe("")
    width, left, right, row, top = 960, 84, 120, 44, 8
    bottom = top + row * len(names)
    height = bottom + 64
    ticks = nice_ticks(0, max(max(before[n], after[n]) for n in names))
    x = _scale(ticks[0], ticks[-1], left, width - right)
    bars = format_html_join(
        "",
        '<text class="row-label" x="{l10}" y="{ty}" text-anchor="end">{name}</text>'
        '<rect class="bar before" x="{l}" y="{y1}" width="{w1}" height="14"/>'
        '<text x="{t1}" y="{y1t}">before {v1}</text>'
        '<rect class="bar after" x="{l}" y="{y2}" width="{w2}" height="14"/>'
        '<text x="{t2}" y="{y2t}">after {v2}</text>',
        (
            {
                "name": name,
                "l": left,
                "l10": left - 10,
                "ty": top + i * row + 22,
                "y1": top + i * row + 4,
                "y1t": top + i * row + 16,
                "w1": f"{x(before[name]) - left:.1f}",
                "t1": f"{x(before[name]) + 6:.1f}",
                "v1": format_value(before[name], "ms"),
                "y2": top + i * row + 22,
                "y2t": top + i * row + 34,
                "w2": f"{x(after[name]) - left:.1f}",
                "t2": f"{x(after[name]) + 6:.1f}",
                "v2": format_value(after[name], "ms"),
            }
            for i, name in enumerate(names)
        ),
    )
    summary = "; ".join(
        f"{name} before {format_value(before[name], 'ms')}, after {format_value(after[name], 'ms')}"
        for name in names
    )
    body = format_html("{}{}", _x_axis(ticks, x, top, bottom, "latency (ms)"), bars)
    return _svg(width, height, f"Latency percentiles of all requests: {summary}.", body)
