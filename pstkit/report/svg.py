"""A small horizontal bar chart as inline SVG (no library, no script)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

ROW, LABEL, WIDTH = 18, 200, 360


def bar_chart(
    title: str, bars: Sequence[tuple[str, float]], fmt: Callable[[float], str] = "{:.2f}".format
) -> str:
    """One bar per (label, value); the longest bar fills the width."""
    if not bars:
        return f"<p>{escape(title)}: no data.</p>"
    top = max(v for _, v in bars) or 1.0
    height = ROW * len(bars) + 24
    out = [f'<figure><svg xmlns="http://www.w3.org/2000/svg" role="img"'
           f' width="{LABEL + WIDTH + 80}" height="{height}" aria-label="{escape(title)}">'
           f"<title>{escape(title)}</title>"]
    for n, (label, value) in enumerate(bars):
        y = 4 + n * ROW
        w = max(1.0, WIDTH * value / top)
        name, shown = escape(label[-32:]), escape(fmt(value))
        out.append(f'<text x="{LABEL - 6}" y="{y + 12}" text-anchor="end">{name}</text>'
                   f'<rect x="{LABEL}" y="{y}" width="{w:.1f}" height="{ROW - 4}" fill="#3b6ea8"/>'
                   f'<text x="{LABEL + w + 4:.1f}" y="{y + 12}">{shown}</text>')  # fmt: skip
    out.append(f"</svg><figcaption>{escape(title)}</figcaption></figure>")
    return "\n".join(out)
