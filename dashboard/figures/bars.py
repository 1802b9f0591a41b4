"""Figure builders: pure functions from analysis frames to Plotly figures.

Each takes a frame from ``data.analysis`` (``feature_summary`` or ``scatter_points``) first and
everything else by keyword, imports nothing of Dash, Flask or the store, and returns an
explanatory empty figure rather than raising when there is nothing to draw::

    from data.analysis import feature_summary
    from dashboard import figures
    figures.impact_figure(feature_summary(dataset, confidence=0.3)).show()

CTRs are drawn in percent (the frame's fraction x 100) and impact in percentage points.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.style import (
    COLORS,
    FEATURE_WINDOW,
    SIGNIFICANCE_CLASSES,
    TITLES,
    base_layout,
    empty_figure,
    escape_label,
    format_ctr,
    format_p,
    format_pp,
    page_slider,
    rgba_color,
    significance_classes,
    unvalidated_figure,
)

# Bar charts grow with the feature count up to a window of FEATURE_WINDOW rows; beyond it they
# keep that window's height and show the rest by panning or paging.
BAR_ROW_PX = 22
BAR_WINDOW_ROW_PX = 18  # a window's rows, a little tighter: 50 of them in 900 px
BAR_MARGIN = {"t": 64, "b": 28, "r": 64, "pad": 4}
BAR_MIN_PLOT_PX = 150
BAR_PAGER_PX = 60  # the band above the x axis that holds the page slider of a windowed chart


def _value_axis(features: list[str], labels: list[str]) -> dict:
    """A second y axis, on the right, whose tick labels are the bars' values, row by row.

    Tick labels are laid out only for the rows in range, where bar texts would be laid out for
    every bar, in or out of the window (most of a 1,000-bar chart's draw time).
    """
    return {
        "overlaying": "y",
        "matches": "y",
        "side": "right",
        "type": "category",
        "categoryorder": "array",
        "categoryarray": features,
        "tickmode": "array",
        "tickvals": features,
        "ticktext": labels,
        "tickfont": {"size": 11, "color": COLORS["muted"]},
        "showgrid": False,
        "zeroline": False,
        "ticks": "",
        "automargin": False,
    }


def _value_labels(values: np.ndarray, *, signed: bool = False, suffix: str = "%", colors=None) -> list[str]:
    """Each value as its label ('' when undefined), in its colour when ``colors`` gives one per value."""
    spec = "{:+.2f}" if signed else "{:.2f}"
    labels = ["" if not math.isfinite(v) else spec.format(v).replace("-", "−") + suffix for v in values]
    if colors is None:
        return labels
    return [f'<span style="color:{c}">{t}</span>' if t else t for t, c in zip(labels, colors)]


def bar_layout(
    title,
    features,
    *,
    height,
    x_title,
    x_range,
    feature_labels,
    x_suffix,
    subtitle=None,
    label_px=None,
    window=None,
    pager=True,
    value_labels=None,
):
    n = len(features)
    windowed = bool(window) and n > window
    rows = window if windowed else n
    layout = base_layout(
        title,
        bargap=0.25,
        xaxis={
            "title": {"text": x_title, "standoff": 6},
            "side": "top",
            "ticksuffix": x_suffix,
            "gridcolor": COLORS["grid"],
            "zeroline": True,
            "zerolinecolor": "#9ca3af",
            # A fixed top margin, so that charts side by side keep their rows level.
            "automargin": False,
        },
        yaxis={
            "type": "category",
            "categoryorder": "array",
            "categoryarray": features,
            # Fixed rather than autorange: a text trace would pad the range and misalign rows
            # with the neighbouring charts. Reversed, so the highest impact is on top.
            "range": [rows - 0.5, -0.5],
            "autorange": False,
            "showticklabels": feature_labels,
            # Category names are drawn as Plotly's pseudo-HTML: label the rows with escaped text.
            **(
                {"tickmode": "array", "tickvals": features, "ticktext": list(map(escape_label, features))}
                if feature_labels
                else {}
            ),
            "automargin": feature_labels and not label_px,
            "ticks": "",
        },
        meta={"features": n, "window": window if windowed else None},
    )
    left = (label_px or 64) if feature_labels else 12
    top = BAR_MARGIN["t"] + (30 if title else 0)
    if subtitle and title:
        layout["title"]["subtitle"] = {"text": subtitle, "font": {"size": 11, "color": COLORS["muted"]}}
        top += 16
    # Every windowed chart keeps the pager's band, drawn or not, so that charts side by side keep
    # their rows level.
    top += BAR_PAGER_PX if windowed else 0
    layout["margin"] = dict(BAR_MARGIN, l=left, t=top)
    plot_px = rows * BAR_WINDOW_ROW_PX if windowed else max(n * BAR_ROW_PX, BAR_MIN_PLOT_PX)
    layout["height"] = height or top + BAR_MARGIN["b"] + plot_px
    if x_range is not None:
        layout["xaxis"]["range"] = list(x_range)
    if value_labels is not None:
        layout["yaxis2"] = _value_axis(features, value_labels)
    if windowed:
        layout["dragmode"] = "pan"
        layout["xaxis"]["fixedrange"] = True  # dragging then only pans along the features
        if pager:
            plot_px = max(layout["height"] - top - BAR_MARGIN["b"], 1)
            layout["sliders"] = [
                page_slider(
                    n,
                    window,
                    page_range=lambda first: {"yaxis.range": [first + window - 0.5, first - 0.5]},
                    hint="drag the bars up or down to pan",
                    # Above the x axis and its title, which sit in the top margin.
                    y=1 + BAR_MARGIN["t"] / plot_px,
                    step_labels=False,
                    compact=True,
                )
            ]
    return layout


def bar_figure(
    summary: pd.DataFrame,
    *,
    value: str = "avg_ctr_with",
    feature_col: str = "feature",
    title: str | None = None,
    color: str | None = None,
    x_range=None,
    feature_labels: bool = True,
    label_px: int | None = None,
    height: int | None = None,
    window: int | None = FEATURE_WINDOW,
    pager: bool = True,
) -> go.Figure:
    """Horizontal bars of one CTR column (``avg_ctr_with`` or ``avg_ctr_without``), in the frame's order.

    Rows keep the summary's order (highest impact at the top), so bar *i* is row *i*. With more
    than ``window`` rows the chart shows ``window`` at a time (every bar is in the figure): drag
    to pan, or page with the slider above the plot (``pager=False`` leaves the slider out, for a
    chart paged together with its neighbours). ``window=None`` shows every row.
    """
    title = TITLES.get(value, value) if title is None else title
    if summary is None or len(summary) == 0:
        return empty_figure("No feature to show at these settings.", title=title)
    features = summary[feature_col].astype(str).tolist()
    x = summary[value].to_numpy(dtype=np.float64) * 100.0
    color = color or (COLORS["without"] if value == "avg_ctr_without" else COLORS["with"])
    counts = (
        summary["n_without" if value == "avg_ctr_without" else "n_with"]
        if ("n_with" in summary and "n_without" in summary)
        else pd.Series(np.full(len(summary), np.nan))
    )
    group = "without" if value == "avg_ctr_without" else "with"
    trace = dict(
        type="bar",
        x=x,
        y=features,
        orientation="h",
        marker={"color": color, "line": {"width": 0, "color": COLORS["text"]}},
        customdata=counts.to_numpy(dtype=np.float64),
        hovertext=list(map(escape_label, features)),
        hovertemplate=(
            f"<b>%{{hovertext}}</b><br>Average CTR {group} the feature: %{{x:.3f}}%"
            f"<br>Images {group} it: %{{customdata:,.0f}}<extra></extra>"
        ),
        name=value,
    )
    finite = x[np.isfinite(x)]
    if x_range is None and len(finite):
        x_range = [0, max(finite.max(), 0) * 1.06 or 1]
    layout = bar_layout(
        title,
        features,
        height=height,
        x_title="Average CTR (%)",
        x_range=x_range,
        feature_labels=feature_labels,
        x_suffix="%",
        label_px=label_px,
        window=window,
        pager=pager,
        value_labels=_value_labels(x),
    )
    return unvalidated_figure([trace, _VALUE_AXIS_TRACE], layout)


# An empty trace on the value axis, so that Plotly draws it.
_VALUE_AXIS_TRACE = {"type": "scatter", "x": [], "y": [], "yaxis": "y2", "hoverinfo": "skip", "name": "values"}


def _impact_hover(summary: pd.DataFrame, feature_col: str, classes) -> list[str]:
    """One hover text per bar: impact with its interval, both CTRs with their image counts, p and q."""
    columns = {
        c: summary[c].to_numpy(dtype=np.float64) if c in summary else np.full(len(summary), np.nan)
        for c in (
            "impact",
            "ci_low",
            "ci_high",
            "avg_ctr_with",
            "avg_ctr_without",
            "n_with",
            "n_without",
            "p_value",
            "q_value",
        )
    }
    texts = []
    for i, feature in enumerate(summary[feature_col].astype(str)):
        c = {k: v[i] for k, v in columns.items()}
        interval = (
            f"<br>95% interval: {format_pp(c['ci_low'])} to {format_pp(c['ci_high'])}"
            if math.isfinite(c["ci_low"]) and math.isfinite(c["ci_high"])
            else ""
        )
        counts = [f"{int(n):,} images" if math.isfinite(n) else "" for n in (c["n_with"], c["n_without"])]
        texts.append(
            f"<b>{escape_label(feature)}</b>{' · ' + classes[i] if classes is not None else ''}"
            f"<br>Impact: {format_pp(c['impact'])}{interval}"
            f"<br>CTR with: {format_ctr(c['avg_ctr_with'])} ({counts[0]})"
            f"<br>CTR without: {format_ctr(c['avg_ctr_without'])} ({counts[1]})"
            f"<br>p = {format_p(c['p_value'])} · q = {format_p(c['q_value'])}"
        )
    return texts


def impact_figure(
    summary: pd.DataFrame,
    *,
    feature_col: str = "feature",
    title: str | None = None,
    x_range=None,
    feature_labels: bool = True,
    label_px: int | None = None,
    height: int | None = None,
    window: int | None = FEATURE_WINDOW,
    pager: bool = True,
) -> go.Figure:
    """Diverging bars of impact (CTR with minus without) in percentage points, in the frame's order.

    Positive and negative bars get their own colours. When the summary has ``ci_low`` and
    ``ci_high`` the bars get error bars (the 95% interval); with the analysis's ``significant``
    column the features it did not mark are drawn pale, and those with too few images for a
    test (``low_n``) grey and hatched. Hovering a bar shows the impact with its interval,
    both CTRs with their image counts, p and q. ``window`` and ``pager`` as in ``bar_figure``.
    """
    title = TITLES["impact"] if title is None else title
    if summary is None or len(summary) == 0:
        return empty_figure("No feature to show at these settings.", title=title)
    features = summary[feature_col].astype(str).tolist()
    impact = summary["impact"].to_numpy(dtype=np.float64)
    x = impact * 100.0
    positive = x >= 0
    notes = []
    classes = None
    colors = [COLORS["positive"] if pos else COLORS["negative"] for pos in positive]
    pattern = None
    if "significant" in summary:
        classes = significance_classes(summary)
        alpha = np.where(classes == SIGNIFICANCE_CLASSES[0], 1.0, 0.38)
        colors = [
            COLORS["low_n"] if cls == SIGNIFICANCE_CLASSES[2] else rgba_color(color, a)
            for color, a, cls in zip(colors, alpha, classes)
        ]
        if (classes == SIGNIFICANCE_CLASSES[2]).any():
            pattern = {
                "shape": ["/" if cls == SIGNIFICANCE_CLASSES[2] else "" for cls in classes],
                "fgcolor": "white",
                "size": 6,
                "solidity": 0.3,
            }
        notes.append("solid: significant (BH-corrected), pale: not, grey: too few images")
    error_x = None
    if "ci_low" in summary and "ci_high" in summary:
        low = summary["ci_low"].to_numpy(dtype=np.float64) * 100.0
        high = summary["ci_high"].to_numpy(dtype=np.float64) * 100.0
        if np.isfinite(low).any() or np.isfinite(high).any():
            error_x = {
                "type": "data",
                "symmetric": False,
                "array": high - x,
                "arrayminus": x - low,
                "color": "#4b5563",
                "thickness": 1.2,
                "width": 3,
            }
            notes.append("whiskers: 95% interval")
    trace = dict(
        type="bar",
        x=x,
        y=features,
        orientation="h",
        marker={"color": colors, "line": {"width": 0, "color": COLORS["text"]}, "pattern": pattern},
        error_x=error_x,
        hovertext=_impact_hover(summary, feature_col, classes),
        hovertemplate="%{hovertext}<extra></extra>",
        name="impact",
    )
    trace["marker"] = {k: v for k, v in trace["marker"].items() if v is not None}
    data = [trace]
    if x_range is None:
        extent = np.concatenate([x, x + error_x["array"], x - error_x["arrayminus"]]) if error_x else x
        extent = extent[np.isfinite(extent)]
        if len(extent):
            lo, hi = min(extent.min(), 0.0), max(extent.max(), 0.0)
            pad = (hi - lo) * 0.04 or 1.0
            x_range = [lo - (pad if lo < 0 else 0), hi + (pad if hi > 0 else 0)]
    layout = bar_layout(
        title,
        features,
        height=height,
        x_title="Impact (percentage points)",
        x_range=x_range,
        feature_labels=feature_labels,
        x_suffix=" pp",
        subtitle="; ".join(notes) or None,
        label_px=label_px,
        window=window,
        pager=pager,
        # In a column of their own at the right, where no whisker crosses them.
        value_labels=_value_labels(x, signed=True, suffix=" pp", colors=[_impact_text_color(v) for v in x]),
    )
    data.append(_VALUE_AXIS_TRACE)
    return unvalidated_figure(data, layout)


def _impact_text_color(value: float) -> str:
    if not math.isfinite(value):
        return COLORS["muted"]
    return COLORS["positive"] if value >= 0 else COLORS["negative"]
