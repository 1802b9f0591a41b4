"""A feature's impact period by period (``data.trend.feature_trend``), with the images behind each point.

Two rows sharing the time axis: above, the impact (CTR with minus without, in percentage points)
of each period with its 95 % interval, coloured where p < 0.05 by its sign; below, how many
images with a CTR in the period have the feature. A period whose feature could not be tested
(too few images on a side) has a bar but no point. Pure: no Dash, no store.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.figures.style import COLORS, base_layout, empty_figure, format_pp, unvalidated_figure

TREND_HEIGHT = 340
SIGNIFICANCE = 0.05


def _point_colours(frame: pd.DataFrame) -> list[str]:
    colours = []
    for impact, p in zip(frame["impact"], frame["p_value"], strict=True):
        if pd.isna(p) or p >= SIGNIFICANCE:
            colours.append(COLORS["muted"])
        else:
            colours.append(COLORS["positive"] if impact > 0 else COLORS["negative"])
    return colours


def _hover_texts(frame: pd.DataFrame, period: str) -> list[str]:
    texts = []
    for row in frame.itertuples(index=False):
        span = row[0] if row[0] == row[1] else f"{row[0]} to {row[1]}"
        if pd.isna(row.impact):
            texts.append(f"{span}<br>{row.n_with} images with it, {row.n_without} without: too few to test")
            continue
        texts.append(
            f"{span}<br>impact {format_pp(row.impact)} (95 % interval {format_pp(row.ci_low)} to "
            f"{format_pp(row.ci_high)})<br>p = {row.p_value:.2g} · {row.n_with} images with it, {row.n_without} without"
        )
    return texts


def trend_figure(trend: pd.DataFrame, feature: str, *, period: str = "week", height: int = TREND_HEIGHT):
    """The figure of ``feature_trend``'s frame (columns from, to, n_with, n_without, impact, ci_low, ci_high, p_value)."""
    if trend is None or not len(trend):
        return empty_figure("No days in this window.", height=height)
    x = pd.to_datetime(trend["from"]).dt.strftime("%Y-%m-%d").tolist()
    impact = trend["impact"].astype(float) * 100
    low = trend["ci_low"].astype(float) * 100
    high = trend["ci_high"].astype(float) * 100
    tested = impact.notna()
    texts = _hover_texts(trend, period)
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "impact",
            "x": [x[i] for i in np.flatnonzero(tested)],
            "y": impact[tested].round(6).tolist(),
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": (high - impact)[tested].round(6).tolist(),
                "arrayminus": (impact - low)[tested].round(6).tolist(),
                "color": COLORS["muted"],
                "thickness": 1.2,
                "width": 4,
            },
            "marker": {"size": 9, "color": [c for c, t in zip(_point_colours(trend), tested, strict=True) if t]},
            "line": {"color": COLORS["grid"], "width": 1.5},
            "text": [t for t, keep in zip(texts, tested, strict=True) if keep],
            "hovertemplate": "%{text}<extra></extra>",
            "xaxis": "x",
            "yaxis": "y",
        },
        {
            "type": "bar",
            "name": "images with the feature",
            "x": x,
            "y": trend["n_with"].astype(int).tolist(),
            "marker": {"color": COLORS["with"], "opacity": 0.55},
            "hovertext": texts,
            "hoverinfo": "text",
            "xaxis": "x2",
            "yaxis": "y2",
        },
    ]
    tick_format = "%b %Y" if period == "month" else "%-d %b"
    layout = base_layout(
        None,
        height=height,
        margin={"l": 64, "r": 24, "t": 16, "b": 40},
        xaxis={"type": "date", "anchor": "y", "matches": "x2", "showticklabels": False, "gridcolor": COLORS["grid"]},
        yaxis={
            "domain": [0.34, 1.0],
            "title": {"text": "Impact (pp)"},
            "zeroline": True,
            "zerolinecolor": COLORS["text"],
            "zerolinewidth": 1,
            "gridcolor": COLORS["grid"],
            "ticksuffix": " pp",
        },
        xaxis2={"type": "date", "anchor": "y2", "tickformat": tick_format, "gridcolor": COLORS["grid"]},
        yaxis2={"domain": [0.0, 0.24], "title": {"text": "Images"}, "rangemode": "tozero", "gridcolor": COLORS["grid"]},
        bargap=0.35,
        meta={"feature": feature, "period": period},
    )
    return unvalidated_figure(data, layout)


def trend_text(trend: pd.DataFrame, feature: str, period: str = "week") -> str:
    """The trend in words (the chart's text alternative): first and last tested period, and how many were clear."""
    if trend is None or not len(trend):
        return f"No days to show a trend of {feature}."
    tested = trend[trend["impact"].notna()]
    name = feature
    if not len(tested):
        return f"{name}: too few images in every {period} to test its impact."
    first, last = tested.iloc[0], tested.iloc[-1]
    clear = int((tested["p_value"] < SIGNIFICANCE).sum())
    return (
        f"Impact of {name} per {period}, {len(trend)} {period}s from {trend['from'].iloc[0]} to {trend['to'].iloc[-1]}: "
        f"{format_pp(first['impact'])} in the {period} of {first['from']}, {format_pp(last['impact'])} in the "
        f"{period} of {last['from']}; {clear} of {len(tested)} tested {period}s differ from zero at p < 0.05."
    )
