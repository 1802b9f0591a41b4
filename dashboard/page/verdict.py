"""The answer at the top of the page: which features help, which hurt, and how sure.

``verdict_groups`` reads the view's summary (the same frame as the charts and the table, no
second pass over the data); ``verdict_panel`` renders it. Each feature is a button: clicking it
or pressing Enter on it selects the feature everywhere (assets/dashboard.js selects its table
row, which the charts, "Travels with" and the URL follow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from dash import html

from dashboard.figures import format_lift, format_p, format_pp
from dashboard.page import views
from data.analysis import SIGNIFICANCE_LEVEL

ROWS_SHOWN = 6  # per side, with their numbers; the rest of the side is named in one line below them
UNCLEAR_NAMED = 3  # the unclear features nearest to an answer, named
TITLES = {"helps": "Helps", "hurts": "Hurts", "unclear": "Unclear", "too few images": "Too few images"}
EXPLAIN = {
    "helps": "Images with the feature get a higher CTR, and the difference is unlikely to be chance.",
    "hurts": "Images with the feature get a lower CTR, and the difference is unlikely to be chance.",
    "unclear": f"The difference could be chance (q ≥ {SIGNIFICANCE_LEVEL:g}).",
    "too few images": "Too few images with or without the feature to test it.",
}


@dataclass(frozen=True)
class VerdictGroups:
    """The summary's features by verdict, each group ranked by evidence (q, then |impact|)."""

    helps: pd.DataFrame
    hurts: pd.DataFrame
    unclear: pd.DataFrame
    too_few: pd.DataFrame
    low_col: str = "ci_low_fcr"  # the interval drawn: FCR-adjusted when the summary has it
    high_col: str = "ci_high_fcr"

    @property
    def significant(self) -> list[str]:
        """Every feature that helps or hurts."""
        return [*self.helps["feature"].astype(str), *self.hurts["feature"].astype(str)]


def _ranked(frame: pd.DataFrame) -> pd.DataFrame:
    """Lowest q first, then largest |impact|, then name."""
    if frame.empty:
        return frame
    q = frame["q_value"].to_numpy(dtype=np.float64)
    size = np.abs(np.nan_to_num(frame["impact"].to_numpy(dtype=np.float64)))
    order = np.lexsort((frame["feature"].astype(str).to_numpy(), -size, np.nan_to_num(q, nan=2.0)))
    return frame.iloc[order]


def verdict_groups(summary: pd.DataFrame) -> VerdictGroups:
    """The features of ``summary`` (with its answer columns) grouped as the panel shows them."""
    views.require_answer_columns(summary)
    verdict = summary["verdict"].astype(str)
    low, high = views.interval_columns(summary)
    return VerdictGroups(
        *(_ranked(summary[verdict == v]) for v in views.VERDICTS),
        low_col=low,
        high_col=high,
    )


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float, np.floating)) and math.isfinite(value)


def interval_bar(low, high, impact, scale: float, verdict: str) -> html.Span:
    """A small bar of the interval ``low``..``high`` (fractions) on a shared ``scale`` around 0, a dot at the impact."""

    def at(v):
        return 50.0 + 50.0 * max(-1.0, min(1.0, v / scale))

    parts = [html.Span(className="ci-zero")]
    if _finite(low) and _finite(high) and scale > 0:
        parts.append(
            html.Span(
                className=f"ci-range {verdict}",
                style={"left": f"{at(low):.1f}%", "width": f"{at(high) - at(low):.1f}%"},
            )
        )
    if _finite(impact) and scale > 0:
        parts.append(html.Span(className=f"ci-dot {verdict}", style={"left": f"{at(impact):.1f}%"}))
    return html.Span(parts, className="ci-bar", **{"aria-hidden": "true"})


def _compact(n) -> str:
    """12,345 -> '12k', 1,234,567 -> '1.2M' (the exact count is in the table)."""
    n = int(n)
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e4 else f"{n:,}"


def _images_text(row, impressions: dict | None) -> str:
    text = f"{int(row.n_with):,} images" if _finite(row.n_with) else ""
    shown = (impressions or {}).get(str(row.feature))
    if shown is not None:
        text += f", {_compact(shown)} impressions"
    return text


def _row(row, groups: VerdictGroups, scale: float, impressions: dict | None) -> html.Button:
    low, high = getattr(row, groups.low_col), getattr(row, groups.high_col)
    interval = f"{format_pp(low, 2)} to {format_pp(high, 2)}" if _finite(low) and _finite(high) else "no interval"
    return html.Button(
        [
            html.Span(str(row.feature), className="vd-name"),
            html.Span(format_lift(row.lift_pct), className="vd-lift"),
            html.Span(format_pp(row.impact, 2), className="vd-pp"),
            interval_bar(low, high, row.impact, scale, row.verdict),
            html.Span(_images_text(row, impressions), className="vd-n"),
        ],
        className="vd-row",
        type="button",
        title=f"{row.feature}: lift {format_lift(row.lift_pct)}, impact {format_pp(row.impact, 3)} "
        f"(interval {interval}), q {format_p(row.q_value)}. Select to show it in the charts and table.",
        **{"data-feature": str(row.feature)},
    )


def _also(frame: pd.DataFrame, label: str) -> html.Div | None:
    """The side's remaining features, each named (and selectable)."""
    if frame.empty:
        return None
    names = [
        html.Button(str(f), className="vd-chip", type="button", **{"data-feature": str(f)})
        for f in frame["feature"].astype(str)
    ]
    return html.Div([html.Span(label, className="vd-also-label"), *names], className="vd-also")


def _side(kind: str, frame: pd.DataFrame, groups: VerdictGroups, scale: float, impressions) -> html.Section:
    head = html.H3([TITLES[kind], html.Span(f" {len(frame):,}", className="vd-count")], className=f"vd-title {kind}")
    if frame.empty:
        body = [html.P(f"No feature {'helps' if kind == 'helps' else 'hurts'} at these settings.", className="vd-none")]
    else:
        rows = [_row(r, groups, scale, impressions) for r in frame.head(ROWS_SHOWN).itertuples(index=False)]
        body = [html.Div(rows, className="vd-rows"), _also(frame.iloc[ROWS_SHOWN:], "Also:")]
    return html.Section([head, html.P(EXPLAIN[kind], className="vd-explain"), *body], className=f"vd-side {kind}")


def _rest(groups: VerdictGroups) -> html.Div:
    """The unclear and too-few-images counts, with the unclear features nearest to an answer named."""
    near = groups.unclear.head(UNCLEAR_NAMED)
    parts = [
        html.Span(
            [html.Strong(f"Unclear {len(groups.unclear):,}"), f": {EXPLAIN['unclear']}"], className="vd-rest-item"
        )
    ]
    if len(near):
        parts.append(
            html.Span(
                [
                    "Nearest to an answer: ",
                    *(
                        html.Button(
                            f"{name} (q {format_p(q)})", className="vd-chip", type="button", **{"data-feature": name}
                        )
                        for name, q in zip(near["feature"].astype(str), near["q_value"])
                    ),
                ],
                className="vd-rest-item",
            )
        )
    parts.append(
        html.Span(
            [html.Strong(f"Too few images {len(groups.too_few):,}"), f": {EXPLAIN['too few images']}"],
            className="vd-rest-item",
        )
    )
    return html.Div(parts, className="vd-rest")


def verdict_panel(
    summary: pd.DataFrame | None, *, impressions: dict | None = None, adjusted: bool = False, fcr: float | None = None
):
    """The verdict: "Helps" and "Hurts" side by side, each feature with lift, impact, interval and images.

    ``impressions`` maps a feature to the impressions of its images (when the CTRs came with
    counts); ``fcr`` is the level of the FCR-adjusted intervals drawn, None when unknown.
    """
    if summary is None or summary.empty:
        return None
    groups = verdict_groups(summary)
    bounds = pd.concat([g[[groups.low_col, groups.high_col, "impact"]] for g in (groups.helps, groups.hurts)])
    values = np.abs(bounds.to_numpy(dtype=np.float64))
    scale = float(np.nanmax(values)) if np.isfinite(values).any() else 0.0
    impact = "adjusted impact" if adjusted else "impact"
    level = f"{fcr * 100:.1f} %" if fcr else None
    how = (
        f"Lift: the {impact} relative to the CTR without the feature. pp: percentage points of CTR. "
        + (
            f"Bar: the interval of the {impact} ({level}, widened for testing {int(summary['q_value'].notna().sum()):,} features at once), "
            "clear of 0 exactly when the feature helps or hurts."
            if level
            else f"Bar: the 95 % interval of the {impact}."
        )
        + f" q: the chance-of-a-false-find after testing every feature; below {SIGNIFICANCE_LEVEL:g} counts as an answer."
    )
    return html.Div(
        [
            html.Div(
                [_side(k, getattr(groups, k), groups, scale, impressions) for k in ("helps", "hurts")],
                className="vd-sides",
            ),
            _rest(groups),
            html.P(how, className="vd-how"),
        ]
    )


def _names(frame: pd.DataFrame, limit: int = 12) -> str:
    names = frame["feature"].astype(str).tolist()
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more:,} more" if more > 0 else "") if names else "none"


def chart_texts(summary: pd.DataFrame | None, charted: pd.DataFrame | None, overall_ctr: float | None) -> dict:
    """Each chart's verdict in words, its text alternative for screen readers (keys: scatter, impact, avg_with)."""
    if summary is None or summary.empty or charted is None:
        empty = "No chart: no feature to show."
        return {"scatter": empty, "impact": empty, "avg_with": empty}
    groups = verdict_groups(charted)
    k = len(charted)
    impact = (
        f"Impact of {k:,} features, ranked by evidence. Helps: {_names(groups.helps)}. "
        f"Hurts: {_names(groups.hurts)}. Unclear: {len(groups.unclear):,}. Too few images: {len(groups.too_few):,}."
    )
    overall = f" The dashed line is the CTR of all images, {overall_ctr * 100:.2f}%." if overall_ctr else ""
    return {
        "impact": impact,
        "avg_with": f"Average CTR of the images with each of the {k:,} features, with a mark at the CTR of "
        "those without it; the same rows as the impact chart.",
        "scatter": f"Each image's CTR for each of the {k:,} features it has, in the impact chart's order.{overall}",
    }
