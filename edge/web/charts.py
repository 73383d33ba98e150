"""Inline SVG line charts, rendered on the server (no script or CDN needed to see them)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")
MAX_POINTS = 150


def downsample(points: Sequence[Sequence[float]], max_points: int = MAX_POINTS) -> list[tuple[float, float]]:
    """Average consecutive points into at most ``max_points`` buckets; drops non-numbers."""
    clean = [(float(t), float(v)) for t, v in points
             if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]
    if len(clean) <= max_points:
        return clean
    size = len(clean) / max_points
    out = []
    for i in range(max_points):
        bucket = clean[int(i * size):int((i + 1) * size)] or [clean[-1]]
        out.append((sum(p[0] for p in bucket) / len(bucket), sum(p[1] for p in bucket) / len(bucket)))
    return out


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def svg_chart(chart: dict[str, Any], width: int = 320, height: int = 110) -> str:
    """One chart: a polyline per series, the y range and each series' latest value."""
    series = {label: downsample(points) for label, points in chart.get("series", {}).items()}
    series = {label: pts for label, pts in series.items() if pts}
    title = escape(str(chart.get("title", "")))
    unit = escape(str(chart.get("unit", "")))
    chart_id = escape(str(chart.get("id", "")))
    top, left, right, bottom = 16, 34, 4, 14
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg class="chart" data-chart="{chart_id}" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{title}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="2" y="11" class="chart-title">{title}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="chart-bg"/>',
    ]
    if not series:
        parts.append(f'<text x="{left + 8}" y="{top + plot_h / 2 + 4:.0f}" class="chart-empty">no data yet</text>')
        parts.append("</svg>")
        return "".join(parts)
    all_pts = [p for pts in series.values() for p in pts]
    t0, t1 = min(p[0] for p in all_pts), max(p[0] for p in all_pts)
    v0, v1 = min(0.0, min(p[1] for p in all_pts)), max(p[1] for p in all_pts)
    if v1 <= v0:
        v1 = v0 + 1.0
    span_t = (t1 - t0) or 1.0
    parts.append(f'<text x="{left - 3}" y="{top + 8}" class="chart-axis" text-anchor="end">{_fmt(v1)}</text>')
    parts.append(f'<text x="{left - 3}" y="{top + plot_h}" class="chart-axis" text-anchor="end">{_fmt(v0)}</text>')
    legend_x = width - right
    for i, (label, pts) in enumerate(sorted(series.items())):
        color = COLORS[i % len(COLORS)]
        coords = " ".join(
            f"{left + (t - t0) / span_t * plot_w:.1f},{top + plot_h - (v - v0) / (v1 - v0) * plot_h:.1f}"
            for t, v in pts)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"/>')
        legend = f"{escape(str(label))} {_fmt(pts[-1][1])} {unit}"
        legend_y = 11 if i == 0 else top + 10 + 11 * (i - 1)  # first beside the title, others inside
        parts.append(f'<text x="{legend_x}" y="{legend_y}" class="chart-legend" text-anchor="end" '
                     f'fill="{color}">{legend}</text>')
    span = t1 - t0
    label = f"last {span:.0f} s" if span < 120 else f"last {span / 60:.0f} min"
    parts.append(f'<text x="{left}" y="{height - 2}" class="chart-axis">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)
