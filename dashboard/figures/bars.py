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
    format_lift,
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
# How many rows either side of the window a chart drawn in part holds beyond the window itself: a
# pan of up to half a window shows bars before the page draws the next part.
DRAWN_ROWS_MARGIN = FEATURE_WINDOW // 2


def _rows_part(traces: list[dict], n: int, stop: int) -> list[dict]:
    """``traces`` holding only rows 0 to ``stop`` - 1 of ``n``: every array of ``n`` values, at any
    depth, is cut. Each trace cut keeps every row's values in its ``meta`` (``{"rows": [0, stop],
    "full": {"marker.color": [...], ...}}``, by attribute path as ``Plotly.restyle`` takes them),
    from which the page draws the rows that come into view (assets/dashboard.js ``drawRows``)."""

    def cut(value, path, full):
        if isinstance(value, dict):
            return {key: cut(v, f"{path}{key}.", full) for key, v in value.items()}
        if isinstance(value, (list, tuple, np.ndarray)) and len(value) == n:
            full[path[:-1]] = value
            return value[:stop]
        return value

    part = []
    for trace in traces:
        full = {}
        trace = {key: cut(value, f"{key}.", full) for key, value in trace.items()}
        part.append({**trace, "meta": {"rows": [0, stop], "full": full}} if full else trace)
    return part


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


def _row_axis(features: list[str], rows: int, feature_labels: bool, label_px: int | None) -> dict:
    """The y axis of the rows: categories in the frame's order, the first at the top."""
    return {
        "type": "category",
        "categoryorder": "array",
        "categoryarray": features,
        # Fixed rather than autorange: a text trace would pad the range and misalign rows
        # with the neighbouring charts. Reversed, so the frame's first row is on top.
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
    }


def _bar_pager(layout: dict, n: int, window: int, top: int) -> None:
    """Adds the page slider of a windowed chart, above its x axis."""
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
    """The layout of a horizontal bar chart whose rows line up with its neighbours' (see ``bar_figure``)."""
    n = len(features)
    windowed = bool(window) and n > window
    rows = window if windowed else n
    xaxis = {
        "title": {"text": x_title, "standoff": 6},
        "side": "top",
        "ticksuffix": x_suffix,
        "gridcolor": COLORS["grid"],
        "zeroline": True,
        "zerolinecolor": "#4b5563",
        "zerolinewidth": 1.5,
        # A fixed top margin, so that charts side by side keep their rows level.
        "automargin": False,
    }
    layout = base_layout(
        title,
        bargap=0.25,
        xaxis=xaxis,
        yaxis=_row_axis(features, rows, feature_labels, label_px),
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
            _bar_pager(layout, n, window, top)
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
    baseline: str | None = None,
    draw_limit: int | None = None,
) -> go.Figure:
    """Horizontal bars of one CTR column (``avg_ctr_with`` or ``avg_ctr_without``), in the frame's order.

    ``baseline`` (e.g. ``"avg_ctr_without"``) adds a dark mark on each row at that column's value,
    so that one chart shows the CTR with the feature against the CTR without it.

    Rows keep the summary's order (highest impact at the top), so bar *i* is row *i*. With more
    than ``window`` rows the chart shows ``window`` at a time (every bar is in the figure): drag
    to pan, or page with the slider above the plot (``pager=False`` leaves the slider out, for a
    chart paged together with its neighbours). ``window=None`` shows every row. A windowed chart of
    more rows than ``draw_limit`` holds in its traces only the rows of its first window and
    ``DRAWN_ROWS_MARGIN`` more, and every row's values in each trace's ``meta``; the page draws the
    rest as the reader pages (assets/dashboard.js ``drawRows``), as 1,000 bars take ~0.2 s to draw.
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
    data = [trace, _VALUE_AXIS_TRACE]
    if baseline is not None and baseline in summary:
        base = summary[baseline].to_numpy(dtype=np.float64) * 100.0
        data.append(_baseline_trace(base, features, baseline))
        x = np.concatenate([x, base])
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
        value_labels=_value_labels(x[: len(features)]),
    )
    return unvalidated_figure(_drawn_rows(data, layout, draw_limit), layout)


def _drawn_rows(data: list[dict], layout: dict, draw_limit: int | None) -> list[dict]:
    """``data`` as a chart of this ``layout`` draws it: in part when windowed beyond ``draw_limit`` rows."""
    n, window = layout["meta"]["features"], layout["meta"]["window"]
    if window is None or draw_limit is None or n <= draw_limit:
        return data
    return _rows_part(data, n, min(n, window + DRAWN_ROWS_MARGIN))


def _baseline_trace(base: np.ndarray, features: list[str], column: str) -> dict:
    """A dark tick per row at ``base`` (percent): the CTR the bars are compared with."""
    what = "without the feature" if column == "avg_ctr_without" else TITLES.get(column, column)
    return dict(
        type="scatter",
        x=base,
        y=features,
        mode="markers",
        marker={"symbol": "line-ns", "size": 14, "line": {"width": 2.5, "color": COLORS["text"]}},
        hovertext=list(map(escape_label, features)),
        hovertemplate=f"<b>%{{hovertext}}</b><br>Average CTR {what}: %{{x:.3f}}%<extra></extra>",
        name="baseline",
    )


# An empty trace on the value axis, so that Plotly draws it.
_VALUE_AXIS_TRACE = {"type": "scatter", "x": [], "y": [], "yaxis": "y2", "hoverinfo": "skip", "name": "values"}


def _interval_columns(summary: pd.DataFrame) -> tuple[str, str] | None:
    """The interval to draw: the FCR-adjusted one when the summary has it, else the per-test 95 % one."""
    for low, high in (("ci_low_fcr", "ci_high_fcr"), ("ci_low", "ci_high")):
        if low in summary and high in summary and summary[low].notna().any():
            return low, high
    return None


def _impact_hover(summary: pd.DataFrame, feature_col: str, classes, interval) -> list[str]:
    """One hover text per bar: impact and lift with the interval, both CTRs with their image counts, p and q."""
    wanted = ["impact", "lift_pct", "avg_ctr_with", "avg_ctr_without", "n_with", "n_without", "p_value", "q_value"]
    columns = {
        c: summary[c].to_numpy(dtype=np.float64) if c in summary else np.full(len(summary), np.nan)
        for c in wanted + list(interval or ())
    }
    low, high = interval or ("", "")
    name = "interval (widened for testing every feature)" if low == "ci_low_fcr" else "95% interval"
    texts = []
    for i, feature in enumerate(summary[feature_col].astype(str)):
        c = {k: v[i] for k, v in columns.items()}
        span = (
            f"<br>{name}: {format_pp(c[low])} to {format_pp(c[high])}"
            if interval and math.isfinite(c[low]) and math.isfinite(c[high])
            else ""
        )
        lift = f" (lift {format_lift(c['lift_pct'])})" if math.isfinite(c["lift_pct"]) else ""
        counts = [f"{int(n):,} images" if math.isfinite(n) else "" for n in (c["n_with"], c["n_without"])]
        texts.append(
            f"<b>{escape_label(feature)}</b>{' · ' + classes[i] if classes is not None else ''}"
            f"<br>Impact: {format_pp(c['impact'])}{lift}{span}"
            f"<br>CTR with: {format_ctr(c['avg_ctr_with'])} ({counts[0]})"
            f"<br>CTR without: {format_ctr(c['avg_ctr_without'])} ({counts[1]})"
            f"<br>p = {format_p(c['p_value'])} · q = {format_p(c['q_value'])}"
        )
    return texts


def verdict_classes(summary: pd.DataFrame) -> np.ndarray | None:
    """Per row its verdict ("helps", "hurts", "unclear", "too few images"), from the summary's
    ``verdict`` column or, without it, from ``significant``, ``low_n`` and the sign; None without either."""
    if "verdict" in summary:
        return summary["verdict"].astype(str).to_numpy()
    if "significant" not in summary:
        return None
    classes = significance_classes(summary)
    positive = summary["impact"].to_numpy(dtype=np.float64) > 0
    helps_or_hurts = np.where(positive, "helps", "hurts")
    return np.where(
        classes == SIGNIFICANCE_CLASSES[2],
        "too few images",
        np.where(classes == SIGNIFICANCE_CLASSES[0], helps_or_hurts, "unclear"),
    )


def _impact_marker(x: np.ndarray, verdicts) -> dict:
    """Bar colours by verdict: solid green helps, solid orange hurts, pale unclear, grey hatched too few images."""
    colors = [COLORS["positive"] if v >= 0 else COLORS["negative"] for v in x]
    if verdicts is None:
        return {"color": colors, "line": {"width": 0, "color": COLORS["text"]}}
    colors = [
        COLORS["low_n"] if v == "too few images" else rgba_color(c, 1.0 if v in ("helps", "hurts") else 0.38)
        for c, v in zip(colors, verdicts)
    ]
    marker = {"color": colors, "line": {"width": 0, "color": COLORS["text"]}}
    if (verdicts == "too few images").any():
        marker["pattern"] = {
            "shape": ["/" if v == "too few images" else "" for v in verdicts],
            "fgcolor": "white",
            "size": 6,
            "solidity": 0.3,
        }
    return marker


def _whiskers(summary: pd.DataFrame, x: np.ndarray, interval) -> dict | None:
    if interval is None:
        return None
    low, high = (summary[c].to_numpy(dtype=np.float64) * 100.0 for c in interval)
    return {
        "type": "data",
        "symmetric": False,
        "array": high - x,
        "arrayminus": x - low,
        "color": "#374151",
        "thickness": 1.4,
        "width": 3,
    }


def _impact_range(x: np.ndarray, error_x: dict | None) -> list[float] | None:
    extent = np.concatenate([x, x + error_x["array"], x - error_x["arrayminus"]]) if error_x else x
    extent = extent[np.isfinite(extent)]
    if not len(extent):
        return None
    lo, hi = min(extent.min(), 0.0), max(extent.max(), 0.0)
    pad = (hi - lo) * 0.04 or 1.0
    return [lo - (pad if lo < 0 else 0), hi + (pad if hi > 0 else 0)]


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
    draw_limit: int | None = None,
) -> go.Figure:
    """Diverging bars of impact (CTR with minus without) in percentage points, in the frame's order.

    Coloured by verdict (the summary's ``verdict``, or ``significant``/``low_n`` and the sign):
    solid green helps, solid orange hurts, pale unclear, grey and hatched too few images for a
    test. Whiskers show the summary's false-coverage-rate adjusted interval (``ci_low_fcr``,
    ``ci_high_fcr``), which clears 0 exactly where the colour is solid; without it, the per-test
    95 % interval (``ci_low``, ``ci_high``). Hovering a bar shows the impact, lift and interval,
    both CTRs with their image counts, p and q. ``window``, ``pager`` and ``draw_limit`` as in
    ``bar_figure``.
    """
    title = TITLES["impact"] if title is None else title
    if summary is None or len(summary) == 0:
        return empty_figure("No feature to show at these settings.", title=title)
    features = summary[feature_col].astype(str).tolist()
    x = summary["impact"].to_numpy(dtype=np.float64) * 100.0
    verdicts = verdict_classes(summary)
    interval = _interval_columns(summary)
    error_x = _whiskers(summary, x, interval)
    notes = ["solid: helps or hurts, pale: unclear, grey: too few images"] if verdicts is not None else []
    if error_x:
        notes.append(
            "whiskers: interval widened for testing every feature"
            if interval[0] == "ci_low_fcr"
            else "whiskers: 95% interval"
        )
    trace = dict(
        type="bar",
        x=x,
        y=features,
        orientation="h",
        marker=_impact_marker(x, verdicts),
        error_x=error_x,
        hovertext=_impact_hover(summary, feature_col, verdicts, interval),
        hovertemplate="%{hovertext}<extra></extra>",
        name="impact",
    )
    layout = bar_layout(
        title,
        features,
        height=height,
        x_title="Impact (percentage points)",
        x_range=x_range if x_range is not None else _impact_range(x, error_x),
        feature_labels=feature_labels,
        x_suffix=" pp",
        subtitle="; ".join(notes) or None,
        label_px=label_px,
        window=window,
        pager=pager,
        # In a column of their own at the right, where no whisker crosses them.
        value_labels=_value_labels(x, signed=True, suffix=" pp", colors=[_impact_text_color(v) for v in x]),
    )
    return unvalidated_figure(_drawn_rows([trace, _VALUE_AXIS_TRACE], layout, draw_limit), layout)


def _impact_text_color(value: float) -> str:
    if not math.isfinite(value):
        return COLORS["muted"]
    return COLORS["positive"] if value >= 0 else COLORS["negative"]
