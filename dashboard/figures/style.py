"""The look shared by every figure: colours, fonts, layouts, number formats and label escaping.

Pure: imports numpy, pandas and plotly only, like every figure module.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

COLORS = {
    "with": "#2f6bcf",
    "without": "#8a94a6",
    "positive": "#1b9e77",
    "negative": "#d45f13",
    "point": "#2f6bcf",
    "link": "#e0162b",
    "text": "#1f2937",
    "muted": "#6b7280",
    "grid": "#e5e7eb",
    "low_n": "rgba(156,163,175,0.6)",
}


# A chart of more features than this shows this many at a time, with a control to page along the
# rest: laying out 1,000 category labels takes seconds, while labels outside the range cost nothing.
# The scatter and the bar charts share it, so that their windows hold the same features.
FEATURE_WINDOW = 50


FONT_FAMILY = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'


# The analysis decides significance (the summary's ``significant`` and ``low_n`` columns); these
# only name its three outcomes.
SIGNIFICANCE_CLASSES = ("significant", "not significant", "too few images")


TITLES = {
    "scatter": "Feature CTR per image",
    "avg_ctr_with": "Average CTR of images with the feature",
    "avg_ctr_without": "Average CTR of images without the feature",
    "impact": "Impact: CTR with minus without",
}


def unvalidated_figure(data: list[dict], layout: dict) -> go.Figure:
    """A Figure from plain dicts without plotly.py's per-element validation.

    Validation took ~90% of the time of a slider move at 480 features (every colour and text of
    every bar is checked one by one); the tests validate each builder's output instead.
    """
    traces = [{k: v for k, v in trace.items() if v is not None} for trace in data]
    return go.Figure(data=traces, layout=layout, _validate=False)


def base_layout(title: str | None, *, height: int | None = None, width: int | None = None, **extra) -> dict:
    # Styled here rather than with a named template: "plotly_white" alone adds ~7 kB per figure.
    layout = {
        "template": {"data": {}, "layout": {}},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": {"family": FONT_FAMILY, "size": 12, "color": COLORS["text"]},
        "title": {
            "text": title or "",
            "x": 0,
            "xanchor": "left",
            # Pinned to the top: bar charts put their x axis in the top margin too.
            "y": 1,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 12, "l": 4},
            "font": {"size": 15},
        },
        "margin": {"l": 64, "r": 24, "t": 56 if title else 24, "b": 56},
        "hoverlabel": {
            "bgcolor": "white",
            "bordercolor": "#9ca3af",
            "font": {"family": FONT_FAMILY, "size": 12, "color": COLORS["text"]},
        },
        "showlegend": False,
        "autosize": True,
    }
    if height:
        layout["height"] = height
    if width:
        layout["width"] = width
    layout.update(extra)
    return layout


def empty_figure(message: str, *, title: str | None = None, height: int | None = 360) -> go.Figure:
    """A figure with no data that says why: axes hidden, ``message`` in the middle."""
    layout = base_layout(
        title,
        height=height,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": escape_label(message).replace("\n", "<br>"),
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "align": "center",
                "font": {"size": 14, "color": COLORS["muted"]},
            }
        ],
        meta={"empty": True},
    )
    return unvalidated_figure([], layout)


def is_empty_figure(figure) -> bool:
    """Whether ``figure`` (a Figure or its dict) is one of ``empty_figure``'s."""
    layout = figure["layout"] if isinstance(figure, dict) else figure.layout
    meta = layout.get("meta") if isinstance(layout, dict) else layout.meta
    return isinstance(meta, dict) and bool(meta.get("empty"))


def page_slider(
    k: int, window: int, *, page_range, hint: str, y: float = 1.0, step_labels: bool = True, compact: bool = False
) -> dict:
    """A slider above the plot whose steps relayout to each page of ``window`` of ``k`` features.

    ``page_range(first)`` gives the relayout arguments that show features ``first`` to
    ``first + window - 1``; the last page ends at the last feature and is filled from before it.
    Without ``step_labels`` only the current page is named (for a chart too narrow for them all);
    ``compact`` tightens its padding to fit a fixed band.
    """
    steps = []
    for start in range(0, k, window):
        stop = min(start + window, k)
        steps.append(
            {"label": f"{start + 1}–{stop}", "method": "relayout", "args": [page_range(max(0, stop - window))]}
        )
    font = {"size": 10} if step_labels else {"size": 1, "color": "rgba(0,0,0,0)"}
    return {
        "active": 0,
        "steps": steps,
        "x": 0,
        "y": y,
        "xanchor": "left",
        "yanchor": "bottom",
        "len": 1.0,
        "pad": {"t": 0, "b": 0 if compact else 8},
        "currentvalue": {
            "offset": 4 if compact else 10,
            "prefix": "Features ",
            "suffix": f" of {k:,} ({hint})",
            "font": {"size": 12, "color": COLORS["text"]},
        },
        "font": font,
        "ticklen": 3 if step_labels else 0,
        "minorticklen": 0,
    }


def label_width(features, *, font_px: float = 12) -> int:
    """Pixels that the longest feature name needs as a y-axis label (a fixed margin aligns charts)."""
    longest = max((len(str(f)) for f in features), default=0)
    return int(min(260, 24 + longest * font_px * 0.6))


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def format_p(value: float) -> str:
    """A p- or q-value with two significant digits: 0.034, 0.0012, 5.4 × 10⁻⁵ ('–' when undefined)."""
    if value is None or not math.isfinite(value):
        return "–"
    if value == 0:
        return "< 10⁻³⁰⁰"  # the tail probability underflowed
    if value >= 0.001:
        return f"{value:.2g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


def format_ctr(fraction: float, digits: int = 3) -> str:
    """A CTR fraction in percent: 0.01172 -> '1.172%' ('–' when undefined)."""
    return "–" if fraction is None or not math.isfinite(fraction) else f"{fraction * 100:.{digits}f}%"


MINUS = "\u2212"  # the typographic minus of every signed number the page shows (CSV files keep "-")


def signed(value: float, digits: int) -> str:
    """``value`` with its sign, the minus as MINUS: '+0.24', '\u22120.24'."""
    return f"{value:+.{digits}f}".replace("-", MINUS)


def format_pp(fraction: float, digits: int = 3) -> str:
    """A CTR difference in signed percentage points: 0.00242 -> '+0.242 pp' ('–' when undefined)."""
    return "–" if fraction is None or not math.isfinite(fraction) else f"{signed(fraction * 100, digits)} pp"


def format_lift(percent: float) -> str:
    """A relative lift in signed percent: 12.34 -> '+12.3 %', -5 -> '\u22125.0 %' ('–' when undefined)."""
    return "–" if percent is None or not math.isfinite(percent) else f"{signed(percent, 1)} %"


def significance_classes(summary: pd.DataFrame) -> np.ndarray:
    """Per row 'significant', 'not significant' or 'too few images', from the summary's own columns.

    ``significant`` and ``low_n`` are decided by the analysis (``data.analysis.feature_summary``);
    a missing column counts as False.
    """
    n = len(summary)
    flags = {
        c: summary[c].fillna(False).to_numpy(dtype=bool) if c in summary else np.zeros(n, dtype=bool)
        for c in ("significant", "low_n")
    }
    significant, not_significant, too_few = SIGNIFICANCE_CLASSES
    return np.where(flags["low_n"], too_few, np.where(flags["significant"], significant, not_significant))


def escape_label(text: str) -> str:
    """``text`` shown as itself in a Plotly label, tick or hover, which render a subset of HTML."""
    # A feature named '<a href="...">' must not become a live link, nor "<b>" restyle the label.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def rgba_color(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:g})"
