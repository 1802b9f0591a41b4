"""The scatter of one point per (image, feature present) at the image's CTR, paged when wide.

Pure: imports numpy, pandas, plotly and the shared figure style only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.style import (
    COLORS,
    FEATURE_WINDOW,
    TITLES,
    base_layout,
    empty_figure,
    escape_label,
    page_slider,
    unvalidated_figure,
)

# Above this many points the scatter uses WebGL: SVG hover takes seconds at 100k points.
WEBGL_THRESHOLD = 3000


# The window of the scatter's x axis: the one the bar charts use (figure_style.FEATURE_WINDOW).
SCATTER_WINDOW = FEATURE_WINDOW


LINK_TRACE_NAME = "hovered image"

# How many features either side of the window a scatter drawn in part holds beyond the window
# itself: a pan of up to half a window shows points before the page draws the next part.
DRAWN_MARGIN = SCATTER_WINDOW // 2


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


def _points_trace(codes: np.ndarray, ctr: np.ndarray, k: int, use_gl: bool) -> dict:
    n = len(codes)
    return dict(
        type="scattergl" if use_gl else "scatter",
        # The smallest type that holds the codes: a byte a point up to 256 features.
        x=codes.astype(np.uint8 if k <= 256 else np.int16 if k <= np.iinfo(np.int16).max else np.int32),
        y=(ctr * 100.0).astype(np.float32),
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


LINK_TRACE = dict(
    type="scatter",
    x=[],
    y=[],
    mode="lines+markers",
    line={"color": COLORS["link"], "width": 2, "dash": "dot"},
    marker={"size": 10, "color": "rgba(0,0,0,0)", "line": {"color": COLORS["link"], "width": 2}},
    hoverinfo="skip",
    name=LINK_TRACE_NAME,
)


# Half the width of a feature's average mark drawn as a line, in features: at a window of 50
# features about the 12 px of the marker it replaces.
MEAN_HALF_WIDTH = 0.3


def _means_trace(means, order: list, *, as_line: bool = False) -> dict:
    """A dash at each feature's average: markers, or (``as_line``, for a paged axis of many
    features) one line broken between features, which Plotly draws as one path where it styles
    each marker on its own (about 0.1 s at 664 features)."""
    mean_y = pd.Series(means).reindex(pd.Index(order, dtype=object)).to_numpy(dtype=np.float64) * 100.0
    style = {"width": 2.5, "color": COLORS["text"]}
    if not as_line:
        return dict(
            type="scatter",
            x=np.arange(len(order), dtype=np.int32),
            y=mean_y,
            mode="markers",
            marker={"symbol": "line-ew", "size": 12, "line": style},
            hovertemplate="Average CTR with %{x}: %{y:.2f}%<extra></extra>",
            name="average",
        )
    codes = np.arange(len(order), dtype=np.float64)
    # Each feature's dash from code - 0.3 to code + 0.3, then a gap (NaN) before the next.
    x = np.column_stack([codes - MEAN_HALF_WIDTH, codes + MEAN_HALF_WIDTH, np.full(len(order), np.nan)]).ravel()
    y = np.column_stack([mean_y, mean_y, np.full(len(order), np.nan)]).ravel()
    labels = [escape_label(str(f)) for f in order]
    return dict(
        type="scatter",
        x=x,
        y=y,
        mode="lines",
        line=style,
        text=[label for label in labels for _ in range(3)],
        hovertemplate="Average CTR with %{text}: %{y:.2f}%<extra></extra>",
        name="average",
    )


def _overall_line(overall_ctr: float, k: int) -> tuple[dict, dict]:
    """A dashed line across every feature at the CTR of all images, and its label at the right.

    A trace rather than a layout shape: the page's highlight of a selected feature owns the shapes.
    """
    y = overall_ctr * 100.0
    line = dict(
        type="scatter",
        x=[-0.6, k - 0.4],
        y=[y, y],
        mode="lines",
        line={"color": COLORS["muted"], "width": 1.5, "dash": "dash"},
        hovertemplate=f"CTR of all images: {y:.2f}%<extra></extra>",
        name="all images",
    )
    label = {
        "xref": "paper",
        "x": 1,
        "xanchor": "right",
        "yref": "y",
        "y": y,
        "yanchor": "bottom",
        "text": f"all images: {y:.2f}%",
        "showarrow": False,
        "font": {"size": 11, "color": COLORS["muted"]},
    }
    return line, label


def _scatter_layout(order: list, window: int, *, title, height, width, windowed: bool, meta: dict) -> dict:
    k = len(order)
    longest = max((len(str(f)) for f in order), default=0)
    layout = base_layout(
        title,
        height=height,
        width=width,
        xaxis={
            "title": {"text": "Feature (same order as the impact chart)", "standoff": 8},
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
        meta=meta,
    )
    if windowed:
        layout["dragmode"] = "pan"
        layout["sliders"] = [_page_slider(k, window)]
    layout["margin"]["b"] = 40 + min(longest, 28) * 5 if k > 8 else 56
    return layout


def scatter_figure(
    points: pd.DataFrame,
    *,
    feature_order=None,
    image_col: str = "image",
    feature_col: str = "feature",
    confidence_col: str = "confidence",
    ctr_col: str = "ctr",
    means=None,
    overall_ctr: float | None = None,
    webgl: bool | None = None,
    title: str | None = TITLES["scatter"],
    height: int = 460,
    width: int | None = None,
    window: int = SCATTER_WINDOW,
    draw_limit: int | None = None,
) -> go.Figure:
    """One point per (image, feature present) at the image's CTR; x lists features with points.

    ``feature_order`` (e.g. a summary's ``feature`` column) orders the x axis; points of other
    features are dropped, and so are features without points. Points keep the frame's row
    order, so point *i* of trace 0 is row *i* of the (filtered) frame. Trace 1 is an empty
    dotted red line, the look of the link that a hover handler draws between one image's
    points. ``means`` (a Series of CTR fractions by feature, e.g. a summary's ``avg_ctr_with``)
    adds trace 2: a dash at each feature's average. ``overall_ctr`` (a fraction) adds a last
    trace: a dashed line at the CTR of all images, the level each feature's points are compared with.

    Per-point arrays are compact numpy types (uint8 codes up to 256 features, else int16; float32
    CTR), which Plotly sends as base64 typed arrays, about 7 to 8 bytes a point; the image and the confidence are not repeated
    per point (a hover handler can show them from the point index). With more than ``window`` features the x axis shows
    ``window`` of them at a time: drag to pan, or page with the slider above the plot. Every
    point is drawn, unless ``draw_limit`` is given: then a windowed scatter of more points than
    that holds in trace 0 only the points of its first window and ``DRAWN_MARGIN`` features more
    (when its points are feature-major), and says so in the trace's ``meta``
    (``{"points": [0, end], "features": [0, stop]}``); the page draws the rest as the reader
    pages (assets/dashboard.js ``drawWindow``).
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
    n, k = len(frame), len(order)
    use_gl = n > WEBGL_THRESHOLD if webgl is None else webgl
    windowed = k > window
    points = _points_trace(codes, frame["ctr"].to_numpy(dtype=np.float64), k, use_gl)
    if windowed and draw_limit is not None and n > draw_limit:
        points = _drawn_part(points, codes, min(k, window + DRAWN_MARGIN))
    data = [points, dict(LINK_TRACE)]
    if means is not None:
        data.append(_means_trace(means, order, as_line=windowed))
    meta = {"features": k, "points": n, "webgl": use_gl, "window": window if windowed else None}
    layout = _scatter_layout(order, window, title=title, height=height, width=width, windowed=windowed, meta=meta)
    if overall_ctr is not None and np.isfinite(overall_ctr):
        line, label = _overall_line(float(overall_ctr), k)
        data.append(line)
        layout["annotations"] = [label]
        layout["meta"]["overall_ctr"] = float(overall_ctr)
    return unvalidated_figure(data, layout)


def _drawn_part(trace: dict, codes: np.ndarray, stop: int) -> dict:
    """``trace`` holding only the points of features 0 to ``stop`` - 1; the whole trace unless the
    points are feature-major (each feature's points together, in axis order, as ``scatter_points``
    gives them), since only then is a window's part one run of points."""
    if len(codes) > 1 and (np.diff(codes) < 0).any():
        return trace
    end = int(np.searchsorted(codes, stop, side="left"))
    return {**trace, "x": trace["x"][:end], "y": trace["y"][:end], "meta": {"points": [0, end], "features": [0, stop]}}


def _page_slider(k: int, window: int) -> dict:
    """A slider above the plot whose steps set the x range to each page of ``window`` features."""
    return page_slider(
        k,
        window,
        page_range=lambda first: {"xaxis.range": [first - 0.6, first + window - 0.4]},
        hint="drag the chart to pan",
    )
