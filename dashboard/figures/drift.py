"""The drift chart: per feature, the change of impact between two builds with its 95 % interval.

Pure like ``dashboard.figures``: takes a ``data.drift.feature_drift`` frame, returns a Figure.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.bars import bar_layout
from dashboard.figures.style import COLORS, empty_figure, escape_label, format_p, format_pp, unvalidated_figure
from data.analysis import SIGNIFICANCE_LEVEL

# Colour by q: the stronger the evidence of a change, the darker the point.
Q_CLASSES = (
    ("q < 0.01", "#3b0764"),
    (f"q < {SIGNIFICANCE_LEVEL:g}", "#7e22ce"),
    (f"q ≥ {SIGNIFICANCE_LEVEL:g}", "#c4b5fd"),
    ("too few images", "#9ca3af"),
)


def q_classes(drift: pd.DataFrame) -> np.ndarray:
    """Per row the label of its colour class in ``Q_CLASSES`` (NaN q without ``low_n``: not significant)."""
    q = drift["q_value"].to_numpy(dtype=np.float64)
    # Whether a change is significant is the analysis's call (its significant column).
    significant = drift["significant"].fillna(False).to_numpy(dtype=bool)
    low_n = drift["low_n"].to_numpy(dtype=bool) if "low_n" in drift else np.zeros(len(drift), dtype=bool)
    labels = [label for label, _ in Q_CLASSES]
    return np.where(
        low_n, labels[3], np.where(significant & (q < 0.01), labels[0], np.where(significant, labels[1], labels[2]))
    )


def select_by_change(drift: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """The ``n`` largest rises and ``n`` largest falls (all rows when n is 0 or they are few)."""
    finite = drift[drift["change"].notna()]
    if not n or len(finite) <= 2 * n:
        return finite
    return pd.concat([finite.iloc[:n], finite.iloc[-n:]])


def _hover(drift: pd.DataFrame, classes, from_label: str, to_label: str) -> list[str]:
    cols = {
        c: drift[c].to_numpy(dtype=np.float64)
        for c in ("change", "ci_low", "ci_high", "impact_from", "impact_to", "p_value", "q_value", "n_flipped")
    }
    texts = []
    for i, feature in enumerate(drift["feature"].astype(str)):
        c = {k: v[i] for k, v in cols.items()}
        interval = (
            f"<br>95% interval: {format_pp(c['ci_low'])} to {format_pp(c['ci_high'])}"
            if math.isfinite(c["ci_low"])
            else ""
        )
        texts.append(
            f"<b>{escape_label(feature)}</b> · {classes[i]}"
            f"<br>Change of impact: {format_pp(c['change'])}{interval}"
            f"<br>Impact in {escape_label(from_label)}: {format_pp(c['impact_from'])}"
            f"<br>Impact in {escape_label(to_label)}: {format_pp(c['impact_to'])}"
            f"<br>Images flipped: {int(c['n_flipped']):,}"
            f"<br>p = {format_p(c['p_value'])} · q = {format_p(c['q_value'])}"
        )
    return texts


def drift_figure(
    drift: pd.DataFrame,
    *,
    from_label: str = "from",
    to_label: str = "to",
    title: str | None = None,
    label_px: int | None = None,
    empty_message: str = "No feature has an impact in both builds at these settings.",
) -> go.Figure:
    """Points at each feature's change of impact (percentage points) with 95 % whiskers, in the frame's order.

    Colours follow q (``Q_CLASSES``); hovering a point shows the change with its interval, the
    impact in each build, how many images flipped presence, p and q.
    """
    if title is None:
        title = f"Change of impact: {to_label} minus {from_label}"
    drift = drift[drift["change"].notna()] if drift is not None and len(drift) else drift
    if drift is None or len(drift) == 0:
        return empty_figure(empty_message, title=title, height=200)
    features = drift["feature"].astype(str).tolist()
    x = drift["change"].to_numpy(dtype=np.float64) * 100.0
    low = drift["ci_low"].to_numpy(dtype=np.float64) * 100.0
    high = drift["ci_high"].to_numpy(dtype=np.float64) * 100.0
    classes = q_classes(drift)
    hover = np.array(_hover(drift, classes, from_label, to_label), dtype=object)
    data = []
    # One trace per colour class, on a shared category axis, so the legend explains the colours.
    for label, color in Q_CLASSES:
        rows = np.flatnonzero(classes == label)
        if not len(rows):
            continue
        data.append(
            dict(
                type="scatter",
                mode="markers",
                x=x[rows],
                y=[features[i] for i in rows],
                marker={"color": color, "size": 9, "line": {"width": 1, "color": "white"}},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": np.nan_to_num(high[rows] - x[rows]),
                    "arrayminus": np.nan_to_num(x[rows] - low[rows]),
                    "color": color,
                    "thickness": 1.6,
                    "width": 3,
                },
                hovertext=hover[rows].tolist(),
                hovertemplate="%{hovertext}<extra></extra>",
                name=label,
            )
        )
    extent = np.concatenate([x, low, high])
    extent = extent[np.isfinite(extent)]
    lo, hi = min(extent.min(), 0.0), max(extent.max(), 0.0)
    pad = (hi - lo) * 0.05 or 0.1
    layout = bar_layout(
        title,
        features,
        height=None,
        x_title=f"Change of impact, {to_label} minus {from_label} (percentage points)",
        x_range=[lo - pad, hi + pad],
        feature_labels=True,
        x_suffix=" pp",
        subtitle="whiskers: 95% interval, clustered by image; colour: q over the features compared",
        label_px=label_px,
    )
    layout["xaxis"]["zerolinewidth"] = 1.5
    layout["yaxis"]["gridcolor"] = COLORS["grid"]
    layout["yaxis"]["showgrid"] = True
    layout["showlegend"] = True
    layout["legend"] = {"orientation": "h", "x": 1, "xanchor": "right", "y": 1, "yanchor": "top", "yref": "container"}
    return unvalidated_figure(data, layout)
