"""Inline SVG charts written by hand: stacked bars with an optional line, and a heatmap.

No plotting library and no script: plain shapes with ``<title>`` tooltips, a ``viewBox`` so the
chart scales to any width, and integer-rounded coordinates so the same data gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

Series = tuple[str, Sequence[float], str]
"""(name, one value per category, CSS colour)."""

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 40


def _nice_max(value: float) -> float:
    """A round axis top at or above ``value`` (1, 2, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if factor * step >= value:
            return factor * step
    return 10 * step  # pragma: no cover


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def bar_chart(
    title: str,
    categories: Sequence[str],
    stacked: Sequence[Series],
    line: Series | None = None,
    label_every: int = 1,
) -> str:
    """Stacked bars per category, bottom to top in ``stacked`` order, plus a line on top."""
    n = max(len(categories), 1)
    totals = [sum(s[1][i] for s in stacked) for i in range(len(categories))]
    peak = max([*totals, *(line[1] if line else [])], default=0)
    top = _nice_max(peak)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    bar = min(max(slot * 0.7, 1.0), 56.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(5):
        value = top * k / 4
        y = TOP + plot_h - plot_h * k / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{_f(y)}" x2="{WIDTH - RIGHT}" y2="{_f(y)}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{_f(y + 4)}" class="axis" text-anchor="end">'
            f"{_f(value)}</text>"
        )
    for i, category in enumerate(categories):
        x = LEFT + slot * i + (slot - bar) / 2
        base = float(TOP + plot_h)
        for name, values, colour in stacked:
            h = plot_h * values[i] / top
            if h > 0:
                base -= h
                parts.append(
                    f'<rect x="{_f(x)}" y="{_f(base)}" width="{_f(bar)}" height="{_f(h)}" '
                    f'fill="{colour}"><title>{escape(category)}: {escape(name)} '
                    f"{_f(values[i])}</title></rect>"
                )
        if i % label_every == 0:
            parts.append(
                f'<text x="{_f(x + bar / 2)}" y="{HEIGHT - BOTTOM + 14}" class="axis" '
                f'text-anchor="middle">{escape(category)}</text>'
            )
    if line and categories:
        name, values, colour = line
        points = " ".join(
            f"{_f(LEFT + slot * i + slot / 2)},{_f(TOP + plot_h - plot_h * v / top)}"
            for i, v in enumerate(values)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{escape(name)}</title></polyline>"
        )
        for i, v in enumerate(values):
            cx, cy = _f(LEFT + slot * i + slot / 2), _f(TOP + plot_h - plot_h * v / top)
            parts.append(
                f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}">'
                f"<title>{escape(categories[i])}: {escape(name)} {_f(v)}</title></circle>"
            )
    legend = [*stacked, *([line] if line else [])]
    x = LEFT
    for name, _, colour in legend:
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 5}" class="axis">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def heatmap(
    title: str,
    rows: Sequence[str],
    values: Sequence[Sequence[int]],
    missed: Sequence[Sequence[int]],
    grey_below: int = 5,
    missed_rate: bool = False,
) -> str:
    """Weekday × hour, shaded by calls offered (blue) or, with ``missed_rate``, by the share
    of them unanswered (red); cells with fewer than ``grey_below`` calls are grey either way."""
    cell_w, cell_h, left, top = 27, 22, 40, 18
    width, height = left + 24 * cell_w + 4, top + len(rows) * cell_h + 4
    peak = 100 if missed_rate else max((v for row in values for v in row), default=0) or 1
    hue = "0,75%" if missed_rate else "212,70%"
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for hour in range(24):
        parts.append(
            f'<text x="{left + hour * cell_w + cell_w // 2}" y="12" class="axis" '
            f'text-anchor="middle">{hour}</text>'
        )
    for r, name in enumerate(rows):
        y = top + r * cell_h
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" class="axis" text-anchor="end">{name}</text>'
        )
        for hour in range(24):
            v, m = values[r][hour], missed[r][hour]
            share = round(100 * m / v) if v else 0
            shown = share if missed_rate else v
            if v < grey_below:
                fill = "#e5e7eb" if v else "#f3f4f6"
            else:
                light = 92 - round(55 * shown / peak)
                fill = f"hsl({hue},{light}%)"
            tip = f", missed {share}%" if v else ""
            parts.append(
                f'<rect x="{left + hour * cell_w}" y="{y}" width="{cell_w - 2}" '
                f'height="{cell_h - 2}" fill="{fill}"><title>{name} {hour:02d}:00: '
                f"{v} offered{tip}</title></rect>"
            )
            if v:
                colour = "#fff" if v >= grey_below and shown > peak / 2 else "#111"
                parts.append(
                    f'<text x="{left + hour * cell_w + (cell_w - 2) // 2}" y="{y + 14}" '
                    f'class="cell" text-anchor="middle" fill="{colour}">{shown}</text>'
                )
    parts.append("</svg>")
    return "".join(parts)
