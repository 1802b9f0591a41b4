"""Figure builders: pure functions from analysis frames to Plotly figures.

Each takes a frame from ``data.analysis`` (``feature_summary`` or ``scatter_points``) first and
everything else by keyword, imports nothing of Dash, Flask or the store, and returns an
explanatory empty figure rather than raising when there is nothing to draw::

    from data.analysis import feature_summary
    from dashboard import figures
    figures.impact_figure(feature_summary(dataset, 0.3)).show()

CTRs are drawn in percent (the frame's fraction x 100) and impact in percentage points.
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
FONT_FAMILY = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'

# Above this many points the scatter uses WebGL: SVG hover takes seconds at 100k points.
WEBGL_THRESHOLD = 3000
# A scatter of more features shows this many at a time, with a control to page along the rest:
# laying out 1,000 category tick labels takes seconds, while labels outside the range cost nothing.
SCATTER_WINDOW = 50
# Bar charts grow with the feature count so that every label stays readable.
BAR_ROW_PX = 22
BAR_MARGIN = {"t": 64, "b": 28, "r": 64, "pad": 4}
BAR_MIN_PLOT_PX = 150
# The analysis decides significance (the summary's ``significant`` and ``low_n`` columns); these
# only name its three outcomes.
SIGNIFICANCE_CLASSES = ("significant", "not significant", "too few images")

LINK_TRACE_NAME = "hovered image"
TITLES = {
    "scatter": "Feature CTR per image",
    "avg_ctr_with": "Average CTR of images with the feature",
    "avg_ctr_without": "Average CTR of images without the feature",
    "impact": "Impact: CTR with minus without",
}


def _figure(data: list[dict], layout: dict) -> go.Figure:
    """A Figure from plain dicts without plotly.py's per-element validation.

    Validation took ~90% of the time of a slider move at 480 features (every colour and text of
    every bar is checked one by one); the tests validate each builder's output instead.
    """
    traces = [{k: v for k, v in trace.items() if v is not None} for trace in data]
    return go.Figure(data=traces, layout=layout, _validate=False)


def _layout(title: str | None, *, height: int | None = None, width: int | None = None, **extra) -> dict:
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
    layout = _layout(
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
    return _figure([], layout)


def is_empty_figure(figure) -> bool:
    """Whether ``figure`` (a Figure or its dict) is one of ``empty_figure``'s."""
    layout = figure["layout"] if isinstance(figure, dict) else figure.layout
    meta = layout.get("meta") if isinstance(layout, dict) else layout.meta
    return isinstance(meta, dict) and bool(meta.get("empty"))


def _feature_codes(points: pd.DataFrame, feature_order) -> tuple[np.ndarray, list]:
    """Integer code per point and the category list, keeping only features that have points."""
    feature = points["feature"]
    if feature_order is None:
        order = (
            list(feature.cat.categories) if isinstance(feature.dtype, pd.CategoricalDtype) else list(pd.unique(feature))
        )
    else:
        order = list(feature_order)
    if isinstance(feature.dtype, pd.CategoricalDtype) and list(feature.cat.categories) == order:
        codes = feature.cat.codes.to_numpy()
    else:
        codes = pd.Index(order, dtype=object).get_indexer(feature.astype(object))
    used = np.zeros(len(order), dtype=bool)
    used[codes[codes >= 0]] = True
    if not used.all():
        remap = np.cumsum(used) - 1
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
        order = [f for f, keep in zip(order, used) if keep]
    return codes.astype(np.int32), order


def scatter_figure(
    points: pd.DataFrame,
    *,
    feature_order=None,
    image_col: str = "image",
    feature_col: str = "feature",
    confidence_col: str = "confidence",
    ctr_col: str = "ctr",
    means=None,
    webgl: bool | None = None,
    title: str | None = TITLES["scatter"],
    height: int = 460,
    width: int | None = None,
    window: int = SCATTER_WINDOW,
) -> go.Figure:
    """One point per (image, feature present) at the image's CTR; x lists features with points.

    ``feature_order`` (e.g. a summary's ``feature`` column) orders the x axis; points of other
    features are dropped, and so are features without points. Points keep the frame's row
    order, so point *i* of trace 0 is row *i* of the (filtered) frame. Trace 1 is an empty
    dotted red line, the look of the link that a hover handler draws between one image's
    points. ``means`` (a Series of CTR fractions by feature, e.g. a summary's ``avg_ctr_with``)
    adds trace 2: a dash at each feature's average.

    Per-point arrays are compact numpy types (int16 codes, float32 CTR), which Plotly sends as
    base64 typed arrays, about 10 bytes a point; the image and the confidence are not repeated
    per point (a hover handler can show them from the point index). With more than ``window`` features the x axis shows
    ``window`` of them at a time: drag to pan, or page with the slider above the plot. Every
    point is drawn.
    """
    if points is None or len(points) == 0:
        return empty_figure("No image has a feature present at these settings.", title=title, height=height)
    frame = points.rename(
        columns={image_col: "image", feature_col: "feature", confidence_col: "confidence", ctr_col: "ctr"}
    )
    codes, order = _feature_codes(frame, feature_order)
    keep = codes >= 0
    if not keep.any():
        return empty_figure("None of the chosen features has a point.", title=title, height=height)
    if not keep.all():
        frame, codes = frame[keep], codes[keep]
    n = len(frame)
    use_gl = n > WEBGL_THRESHOLD if webgl is None else webgl
    k = len(order)
    points_trace = dict(
        type="scattergl" if use_gl else "scatter",
        x=codes.astype(np.int16 if k <= np.iinfo(np.int16).max else np.int32),
        y=(frame["ctr"].to_numpy(dtype=np.float64) * 100.0).astype(np.float32),
        mode="markers",
        marker={
            "color": COLORS["point"],
            "size": 7 if n < 20000 else 5,
            "opacity": 0.55 if n < 5000 else 0.35,
            "line": {"width": 0},
        },
        # %{x} shows the tick text of the feature code under the pointer. The image and its
        # confidences are in the side panel: per-point copies here would double what is sent.
        hovertemplate="CTR: %{y:.2f}%<br>Feature: %{x}<extra></extra>",
        name="images",
    )
    link_trace = dict(
        type="scatter",
        x=[],
        y=[],
        mode="lines+markers",
        line={"color": COLORS["link"], "width": 2, "dash": "dot"},
        marker={"size": 10, "color": "rgba(0,0,0,0)", "line": {"color": COLORS["link"], "width": 2}},
        hoverinfo="skip",
        name=LINK_TRACE_NAME,
    )
    data = [points_trace, link_trace]
    if means is not None:
        mean_y = pd.Series(means).reindex(pd.Index(order, dtype=object)).to_numpy(dtype=np.float64) * 100.0
        data.append(
            dict(
                type="scatter",
                x=np.arange(len(order), dtype=np.int32),
                y=mean_y,
                mode="markers",
                marker={"symbol": "line-ew", "size": 12, "line": {"width": 2.5, "color": COLORS["text"]}},
                hovertemplate="Average CTR with %{x}: %{y:.2f}%<extra></extra>",
                name="average",
            )
        )
    longest = max((len(str(f)) for f in order), default=0)
    windowed = k > window
    layout = _layout(
        title,
        height=height,
        width=width,
        xaxis={
            "title": {"text": "Feature (highest impact first)", "standoff": 8},
            "tickmode": "array",
            "tickvals": list(range(k)),
            "ticktext": [escape_label(str(f)) for f in order],
            "tickangle": 0 if k <= 8 else (-45 if k <= 40 else -90),
            "range": [-0.6, (window if windowed else k) - 0.4],
            "showgrid": False,
            "zeroline": False,
            "automargin": True,
        },
        yaxis={
            "title": {"text": "CTR of the image (%)"},
            "ticksuffix": "%",
            "rangemode": "tozero",
            "gridcolor": COLORS["grid"],
            "zeroline": False,
            "fixedrange": windowed,  # dragging then only pans along the features
        },
        hovermode="closest",
        meta={"features": k, "points": n, "webgl": use_gl, "window": window if windowed else None},
    )
    if windowed:
        layout["dragmode"] = "pan"
        layout["sliders"] = [_page_slider(k, window)]
    layout["margin"]["b"] = 40 + min(longest, 28) * 5 if k > 8 else 56
    return _figure(data, layout)


def _page_slider(k: int, window: int) -> dict:
    """A slider above the plot whose steps set the x range to each page of ``window`` features."""
    steps = []
    for start in range(0, k, window):
        stop = min(start + window, k)
        # The last page ends at the last feature and is filled from before it.
        first = max(0, stop - window)
        steps.append(
            {
                "label": f"{start + 1}–{stop}",
                "method": "relayout",
                "args": [{"xaxis.range": [first - 0.6, first + window - 0.4]}],
            }
        )
    return {
        "active": 0,
        "steps": steps,
        "x": 0,
        "y": 1.0,
        "xanchor": "left",
        "yanchor": "bottom",
        "len": 1.0,
        "pad": {"t": 0, "b": 8},
        "currentvalue": {"prefix": "Features ", "suffix": f" of {k:,} (drag the chart to pan)", "font": {"size": 12}},
        "font": {"size": 10},
        "ticklen": 3,
        "minorticklen": 0,
    }


def _format_pct(values: np.ndarray, *, signed: bool = False, suffix: str = "%") -> list[str]:
    spec = "{:+.2f}" if signed else "{:.2f}"
    return ["–" if not math.isfinite(v) else spec.format(v) + suffix for v in values]


def label_width(features, *, font_px: float = 12) -> int:
    """Pixels that the longest feature name needs as a y-axis label (a fixed margin aligns charts)."""
    longest = max((len(str(f)) for f in features), default=0)
    return int(min(260, 24 + longest * font_px * 0.6))


def _bar_layout(title, features, *, height, x_title, x_range, feature_labels, x_suffix, subtitle=None, label_px=None):
    n = len(features)
    layout = _layout(
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
            "range": [n - 0.5, -0.5],
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
        meta={"features": n},
    )
    left = (label_px or 64) if feature_labels else 12
    top = BAR_MARGIN["t"] + (30 if title else 0)
    if subtitle and title:
        layout["title"]["subtitle"] = {"text": subtitle, "font": {"size": 11, "color": COLORS["muted"]}}
        top += 16
    layout["margin"] = dict(BAR_MARGIN, l=left, t=top)
    layout["height"] = height or top + BAR_MARGIN["b"] + max(n * BAR_ROW_PX, BAR_MIN_PLOT_PX)
    if x_range is not None:
        layout["xaxis"]["range"] = list(x_range)
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
) -> go.Figure:
    """Horizontal bars of one CTR column (``avg_ctr_with`` or ``avg_ctr_without``), in the frame's order.

    Rows keep the summary's order (highest impact at the top), so bar *i* is row *i*.
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
        text=_format_pct(x),
        textposition="outside",
        cliponaxis=False,
        textfont={"size": 11, "color": COLORS["muted"]},
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
        x_range = [0, max(finite.max(), 0) * 1.18 or 1]
    layout = _bar_layout(
        title,
        features,
        height=height,
        x_title="Average CTR (%)",
        x_range=x_range,
        feature_labels=feature_labels,
        x_suffix="%",
        label_px=label_px,
    )
    return _figure([trace], layout)


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


def format_pp(fraction: float, digits: int = 3) -> str:
    """A CTR difference in signed percentage points: 0.00242 -> '+0.242 pp' ('–' when undefined)."""
    return "–" if fraction is None or not math.isfinite(fraction) else f"{fraction * 100:+.{digits}f} pp"


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


def escape_label(text: str) -> str:
    """``text`` shown as itself in a Plotly label, tick or hover, which render a subset of HTML."""
    # A feature named '<a href="...">' must not become a live link, nor "<b>" restyle the label.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def impact_figure(
    summary: pd.DataFrame,
    *,
    feature_col: str = "feature",
    title: str | None = None,
    x_range=None,
    feature_labels: bool = True,
    label_px: int | None = None,
    height: int | None = None,
) -> go.Figure:
    """Diverging bars of impact (CTR with minus without) in percentage points, in the frame's order.

    Positive and negative bars get their own colours. When the summary has ``ci_low`` and
    ``ci_high`` the bars get error bars (the 95% interval); with the analysis's ``significant``
    column the features it did not mark are drawn pale, and those with too few images for a
    test (``low_n``) grey and hatched. Hovering a bar shows the impact with its interval,
    both CTRs with their image counts, p and q.
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
            COLORS["low_n"] if cls == SIGNIFICANCE_CLASSES[2] else _rgba(color, a)
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
    labels = _format_pct(x, signed=True, suffix=" pp")
    trace = dict(
        type="bar",
        x=x,
        y=features,
        orientation="h",
        marker={"color": colors, "line": {"width": 0, "color": COLORS["text"]}, "pattern": pattern},
        error_x=error_x,
        # With whiskers, values go in a column of their own (trace 1) where no whisker crosses them.
        text=None if error_x else labels,
        textposition="outside",
        cliponaxis=False,
        textfont={"size": 11, "color": COLORS["muted"]},
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
            pad = (hi - lo) * (0.04 if error_x else 0.22) or 1.0
            x_range = [lo - (pad if lo < 0 else 0), hi + (pad if hi > 0 else 0)]
    layout = _bar_layout(
        title,
        features,
        height=height,
        x_title="Impact (percentage points)",
        x_range=x_range,
        feature_labels=feature_labels,
        x_suffix=" pp",
        subtitle="; ".join(notes) or None,
        label_px=label_px,
    )
    if error_x:
        data.append(
            dict(
                type="scatter",
                x=np.ones(len(x)),
                y=features,
                xaxis="x2",
                mode="text",
                text=labels,
                textposition="middle left",
                textfont={"size": 11, "color": [_impact_text_color(v) for v in x]},
                hoverinfo="skip",
                name="impact values",
            )
        )
        layout["xaxis"]["domain"] = [0, 0.8]
        layout["xaxis2"] = {"domain": [0.82, 1], "range": [0, 1], "visible": False, "fixedrange": True}
    return _figure(data, layout)


def _impact_text_color(value: float) -> str:
    if not math.isfinite(value):
        return COLORS["muted"]
    return COLORS["positive"] if value >= 0 else COLORS["negative"]


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:g})"
