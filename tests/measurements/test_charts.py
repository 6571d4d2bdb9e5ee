"""Charts: axes, ticks, units, peak markers, enough points, words for screen readers, and
colours that pass WCAG AA on both colour schemes (computed from the stylesheets)."""

import re
from pathlib import Path

import pytest

from apps.measurements.charts import nice_ticks, percentile_chart, strip_chart, timeline_chart
from apps.measurements.sampling import downsample

MiB = 1024 * 1024
STATIC = Path(__file__).resolve().parents[2] / "static"


def leaky_run(seconds: float, start_mib: float, slope_mib: float, samples: int = 200):
    """(t, bytes) samples of a sawtooth that grows: allocations freed every second."""
    points = []
    for i in range(samples):
        t = seconds * i / (samples - 1)
        sawtooth = 8 * (t % 1.0)
        points.append([round(t, 4), int((start_mib + slope_mib * t + sawtooth) * MiB)])
    return points


def test_the_timeline_has_axes_units_gridlines_and_a_marked_peak_per_side():
    before = leaky_run(4.0, 100, 20)
    after = leaky_run(3.0, 100, 2)
    svg = str(timeline_chart(before, after))
    assert 'viewBox="0 0 960 400"' in svg and 'role="img"' in svg
    assert ">RSS (MiB)</text>" in svg and ">time (seconds)</text>" in svg
    assert svg.count('class="grid"') >= 8
    # Ticks at round values: seconds 0…4 and MiB from 0 past the highest sample.
    x_ticks = re.findall(r'text-anchor="middle">([\d.,]+)</text>', svg)
    assert {"0", "1", "2", "3", "4"} <= set(x_ticks)
    assert re.search(r'text-anchor="end">200</text>', svg)
    # One marker and one label at each side's peak.
    assert svg.count('class="peak before"') == 1 and svg.count('class="peak after"') == 1
    t, rss = max(before, key=lambda p: p[1])
    assert f"before peak {rss / MiB:.1f} MiB at {t:.2f} s" in svg
    assert re.search(r"after peak [\d.]+ MiB at [\d.]+ s", svg)
    # Every stored sample is drawn: the sawtooth shows.
    lines = re.findall(r'<polyline class="line (\w+)" points="([^"]+)"', svg)
    assert [(side, len(points.split())) for side, points in lines] == [
        ("before", 200),
        ("after", 200),
    ]
    # In words too, for people who do not see it.
    assert re.search(r'aria-label="RSS over time: before peak [^"]+, 200 samples; after', svg)


def test_a_long_timeline_keeps_its_peak_and_troughs_when_thinned():
    spiky = [[i / 100, (200 if i == 4321 else 50 + (i % 10)) * MiB] for i in range(10_000)]
    drawn = downsample(spiky, 400)
    assert len(drawn) <= 400
    assert max(p[1] for p in drawn) == 200 * MiB  # the one-sample spike
    assert min(p[1] for p in drawn) == 50 * MiB  # the troughs between
    assert [p[0] for p in drawn] == sorted(p[0] for p in drawn)
    svg = str(timeline_chart(spiky, spiky[:5000]))
    drawn_points = re.findall(r'class="line before" points="([^"]+)"', svg)[0].split()
    assert 300 <= len(drawn_points) <= 400
    assert "before peak 200.0 MiB at 43.21 s" in svg


def test_every_run_on_a_labelled_axis_with_its_unit():
    before = [1.50, 1.52, 1.49, 1.55, 1.51]
    after = [1.20, 1.22, 1.19, 1.21]
    svg = str(strip_chart(before, after, "s", "wall time"))
    assert svg.count('class="dot before"') == 5 and svg.count('class="dot after"') == 4
    assert ">wall time (s)</text>" in svg
    assert svg.count('class="median') == 2
    assert ">before</text>" in svg and ">after</text>" in svg
    assert "wall time of every run. before: 5 runs, median 1.510 s" in svg
    memory = str(strip_chart([90 * MiB, 91 * MiB], [60 * MiB], "bytes", "peak RSS"))
    assert ">peak RSS (MiB)</text>" in memory
    fast = str(strip_chart([0.012, 0.013], [0.010], "s", "wall time"))
    assert ">wall time (ms)</text>" in fast


def test_latency_percentiles_have_an_axis_in_ms():
    svg = str(percentile_chart({"p50": 12.0, "p99": 80.0}, {"p50": 10.0, "p99": 41.0}))
    assert ">latency (ms)</text>" in svg
    assert svg.count('class="bar before"') == 2 and "p99 before 80 ms" in svg


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 4, [0, 1, 2, 3, 4]),
        (0, 173, [0, 50, 100, 150, 200]),
        (0.2, 0.93, [0.2, 0.4, 0.6, 0.8, 1.0]),
        (100, 100, [90, 95, 100, 105, 110]),
    ],
)
def test_ticks_are_round_and_cover_the_values(low, high, expected):
    assert nice_ticks(low, high) == expected


# --- contrast --------------------------------------------------------------------------------


def luminance(colour: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def parse_colour(text: str) -> tuple[float, float, float]:
    text = text.strip()
    if text.startswith("#"):
        digits = text[1:]
        if len(digits) == 3:
            digits = "".join(d * 2 for d in digits)
        return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))
    found = re.fullmatch(r"rgb\(\s*([\d.]+),\s*([\d.]+),\s*([\d.]+)\s*\)", text)
    assert found, text
    return tuple(float(v) for v in found.groups())


def chart_colours() -> dict[str, dict[str, tuple]]:
    css = (STATIC / "css" / "app.css").read_text()
    light = re.search(r":root \{ --chart-before: ([^;]+); --chart-after: ([^;]+); \}", css)
    dark = re.search(
        r"prefers-color-scheme: dark\) \{\s*:root:not\(\[data-theme\]\) "
        r"\{ --chart-before: ([^;]+); --chart-after: ([^;]+); \}",
        css,
    )
    forced = re.search(
        r'\[data-theme="dark"\] \{ --chart-before: ([^;]+); --chart-after: ([^;]+); \}', css
    )
    assert light and dark and forced, "the chart colours of both schemes"
    assert dark.groups() == forced.groups()
    return {
        scheme: {"before": parse_colour(m.group(1)), "after": parse_colour(m.group(2))}
        for scheme, m in (("light", light), ("dark", dark))
    }


def page_backgrounds() -> dict[str, tuple]:
    """Pico's page background per scheme, read from the vendored stylesheet."""
    pico = (STATIC / "vendor" / "pico" / "pico.min.css").read_text()
    values = re.findall(r"--pico-background-color:(#[0-9a-f]{3,6}|rgb\([^)]*\))", pico)
    light = [v for v in values if v.startswith("#")]
    dark = [v for v in values if v.startswith("rgb")]
    assert light and dark
    return {"light": parse_colour(light[0]), "dark": parse_colour(dark[0])}


def test_chart_colours_pass_wcag_aa_on_both_schemes():
    backgrounds = page_backgrounds()
    for scheme, colours in chart_colours().items():
        for side, colour in colours.items():
            ratio = contrast(colour, backgrounds[scheme])
            # 3:1 is AA for graphics; the series colours also colour text, which needs 4.5:1.
            assert ratio >= 4.5, f"{side} on {scheme}: {ratio:.2f}:1"
        # The two sides must not be one colour either.
        assert colours["before"] != colours["after"]


def test_the_contrast_formula():
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast(parse_colour("#767676"), parse_colour("#fff")) == pytest.approx(4.54, abs=0.01)
