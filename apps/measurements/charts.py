"""Charts as inline SVG drawn on the server: no script, no CDN, nothing the CSP must allow."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from apps.core.units import format_bytes

from .metrics import signed_pct

BEFORE_COLOUR = "#8a94a6"
AFTER_COLOUR = "#1f6feb"


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


def _scale(lo: float, hi: float, start: float, end: float):
    span = (hi - lo) or 1.0
    return lambda v: start + (v - lo) / span * (end - start)


def strip_chart(before: list[float], after: list[float], unit: str) -> SafeString:
    """Every run's value, before above after, on one axis: spread and shift at a glance."""
    values = before + after
    if not values:
        return mark_safe("")
    width, height, left, right = 420, 90, 60, 20
    x = _scale(min(values), max(values), left, width - right)
    rows = ((BEFORE_COLOUR, "before", before, 28), (AFTER_COLOUR, "after", after, 58))
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="4" fill="{}" fill-opacity="0.7"><title>{}</title></circle>',
        (
            # format_html escapes its arguments to text first: numbers are formatted here.
            (f"{x(v):.1f}", y, colour, format_value(v, unit))
            for colour, _label, series, y in rows
            for v in series
        ),
    )
    labels = format_html_join(
        "",
        '<text x="4" y="{}" font-size="11" fill="{}">{}</text>',
        ((y + 4, colour, label) for colour, label, _series, y in rows),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="runs before and after">'
        '{labels}{dots}<text x="{l}" y="{h2}" font-size="10" fill="#666">{lo}</text>'
        '<text x="{r}" y="{h2}" font-size="10" fill="#666" text-anchor="end">{hi}</text></svg>',
        w=width,
        h=height,
        labels=labels,
        dots=dots,
        l=left,
        r=width - right,
        h2=height - 6,
        lo=format_value(min(values), unit),
        hi=format_value(max(values), unit),
    )


def timeline_chart(
    before: list[list[float]],
    after: list[list[float]],
    *,
    x_unit: str = "s",
    label: str = "RSS over time",
) -> SafeString:
    """RSS over time (or over requests, ``x_unit="requests"``) of a typical run of each side."""
    points = before + after
    if not points:
        return mark_safe("")
    width, height, left, bottom = 600, 220, 64, 24
    x = _scale(0, max(p[0] for p in points) or 1, left, width - 10)
    y = _scale(0, max(p[1] for p in points) or 1, height - bottom, 10)

    def line(series, colour):
        path = " ".join(f"{x(t):.1f},{y(rss):.1f}" for t, rss in series)
        return format_html(
            '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>', path, colour
        )

    top = max(p[1] for p in points)
    end = max(p[0] for p in points)
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{label}">'
        '<line x1="{l}" y1="{b}" x2="{w}" y2="{b}" stroke="#ccc"/>{before}{after}'
        '<text x="4" y="16" font-size="10" fill="#666">{top}</text>'
        '<text x="4" y="{b}" font-size="10" fill="#666">0</text>'
        '<text x="{w}" y="{h}" font-size="10" fill="#666" text-anchor="end">{end} {x_unit}</text>'
        '<text x="{l}" y="{h}" font-size="11" fill="{cb}">— before</text>'
        '<text x="{l2}" y="{h}" font-size="11" fill="{ca}">— after</text></svg>',
        w=width,
        h=height,
        l=left,
        l2=left + 80,
        b=height - bottom,
        before=line(before, BEFORE_COLOUR),
        after=line(after, AFTER_COLOUR),
        top=format_value(top, "bytes"),
        end=f"{end:.2f}" if x_unit == "s" else f"{end:,.0f}",
        x_unit=x_unit,
        label=label,
        cb=BEFORE_COLOUR,
        ca=AFTER_COLOUR,
    )


def percentile_chart(before: dict[str, float | None], after: dict[str, float | None]) -> SafeString:
    """Latency percentiles of all requests, a bar per side for each: where the tails moved."""
    names = [n for n in before if before.get(n) is not None and after.get(n) is not None]
    if not names:
        return mark_safe("")
    width, left, right, row = 600, 60, 90, 34
    height = row * len(names) + 24
    x = _scale(0, max(max(before[n], after[n]) for n in names) or 1, left, width - right)
    bars = format_html_join(
        "",
        '<text x="4" y="{}" font-size="11" fill="#333">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="11" fill="{}"><title>before {}</title></rect>'
        '<text x="{}" y="{}" font-size="10" fill="#666">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="11" fill="{}"><title>after {}</title></rect>'
        '<text x="{}" y="{}" font-size="10" fill="#666">{}</text>',
        (
            (
                i * row + 20,
                name,
                left,
                i * row + 6,
                f"{x(before[name]) - left:.1f}",
                BEFORE_COLOUR,
                format_value(before[name], "ms"),
                f"{x(before[name]) + 4:.1f}",
                i * row + 16,
                format_value(before[name], "ms"),
                left,
                i * row + 19,
                f"{x(after[name]) - left:.1f}",
                AFTER_COLOUR,
                format_value(after[name], "ms"),
                f"{x(after[name]) + 4:.1f}",
                i * row + 29,
                format_value(after[name], "ms"),
            )
            for i, name in enumerate(names)
        ),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="latency percentiles">'
        '{bars}<text x="{l}" y="{h2}" font-size="11" fill="{cb}">■ before</text>'
        '<text x="{l2}" y="{h2}" font-size="11" fill="{ca}">■ after</text></svg>',
        w=width,
        h=height,
        h2=height - 4,
        l=left,
        l2=left + 80,
        bars=bars,
        cb=BEFORE_COLOUR,
        ca=AFTER_COLOUR,
    )
