"""A view of the page as plain data: its URL query, its table rows and the controls' choices.

Everything here is pure (no Dash, no Flask, no store), so the tests check URL round trips
and table rows directly (the CSV downloads are in dashboard.api.downloads). A view is what the controls select: dataset, build,
confidence threshold, prevalence range, weighting and how many features the charts show.
The query uses /api/summary's parameter names, so a page URL reads like the API call behind it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import numpy as np
import pandas as pd

from dashboard import figures
from dashboard.api.params import PARAMS, parse_lenient
from dashboard.page import ids

CURRENT_BUILD = "current"
# The page's defaults and choices come from the one spec of the query parameters.
DEFAULT_CONFIDENCE = PARAMS["confidence"].page_default
DEFAULT_SPARSITY = (int(PARAMS["min_pct"].page_default), int(PARAMS["max_pct"].page_default))
DEFAULT_WEIGHTING = PARAMS["weighting"].page_default
ALL_SHOWN = "all"
DEFAULT_SHOWN = int(PARAMS["shown"].page_default)
SHOWN_CHOICES = tuple(0 if c == ALL_SHOWN else int(c) for c in PARAMS["shown"].choices)  # 0: all features
CONFIDENCE_STEP = 0.01
VIEW_PARAMS = (
    "business",
    "source",
    "build_id",
    "confidence",
    "min_pct",
    "max_pct",
    "weighting",
    "shown",
    "compare_build",
    "adjusted",
)

WEIGHTING_LABELS = {"mean": "Mean of images", "impressions": "Impression-weighted"}
WEIGHTING_HELP = "Mean: each image counts once. Weighted: clicks ÷ impressions."
NO_COUNTS_HELP = "Off: this dataset's CTRs came without clicks and impressions."
NO_DATASET_HELP = "Impression weighting needs CTRs uploaded as clicks and impressions."
NO_COUNTS_TIP = (
    "This dataset's CTRs came without clicks and impressions, so only the mean of the images' CTRs "
    'can be shown. Upload CTRs as {"clicks": ..., "impressions": ...} to weight by impressions.'
)
COUNTS_TIP = (
    "Impression-weighted: each group's CTR is its total clicks divided by its total impressions, "
    "with a permutation-calibrated 95% interval."
)

TABLE_COLUMNS = [
    "feature",
    "n_with",
    "n_without",
    "prevalence_pct",
    "avg_ctr_with",
    "avg_ctr_without",
    "impact",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "result",
]
RESULT_SIGNIFICANT, RESULT_NOT_SIGNIFICANT, RESULT_LOW_N = figures.SIGNIFICANCE_CLASSES


@dataclass(frozen=True)
class ViewState:
    """What the controls select. ``business``/``source`` None: the store's default dataset."""

    business: str | None = None
    source: str | None = None
    build: int | str = CURRENT_BUILD  # a build id, or CURRENT_BUILD to follow new builds
    confidence: float = DEFAULT_CONFIDENCE
    min_pct: int = DEFAULT_SPARSITY[0]
    max_pct: int = DEFAULT_SPARSITY[1]
    weighting: str = DEFAULT_WEIGHTING
    shown: int = DEFAULT_SHOWN
    compare: int | None = None  # a build id to compare the shown build with; None: off
    adjusted: bool = False  # impact adjusted for co-occurring features (data/adjusted.py)
    feature: str | None = None  # the feature selected (the table row, the verdict's button); URL feature=

    @property
    def sparsity(self) -> list[int]:
        """The prevalence range as the range slider holds it."""
        return [self.min_pct, self.max_pct]


# -- the URL ---------------------------------------------------------------------------------


def parse_view(args: Mapping) -> ViewState:
    """The view a URL query asks for; each missing, malformed or out-of-range value takes its default.

    ``args`` maps names to strings (Flask's ``request.args``, a dict, or ``parse_qs`` lists),
    read by the same rules as /api/summary's (``dashboard.api.params``). Whether the dataset, build
    and weighting exist is checked later, against the store (``selection.resolve_view``).
    """
    values = parse_lenient(args, VIEW_PARAMS)
    # The slider moves in steps of 0.01; a value between steps would sit between its marks.
    confidence = round(round(values["confidence"] / CONFIDENCE_STEP) * CONFIDENCE_STEP, 2)
    return ViewState(
        business=values["business"],
        source=values["source"],
        build=CURRENT_BUILD if values["build_id"] is None else values["build_id"],
        confidence=confidence,
        min_pct=int(round(values["min_pct"])),
        max_pct=int(round(values["max_pct"])),
        weighting=values["weighting"],
        shown=0 if values["shown"] == ALL_SHOWN else int(values["shown"]),
        compare=values["compare_build"],
        adjusted=values["adjusted"] == "1",
        feature=_feature_param(args),
    )


def _feature_param(args: Mapping) -> str | None:
    """The URL's ``feature`` (the selected one), None when absent or empty; any name is accepted."""
    raw = args.get("feature") if hasattr(args, "get") else None
    if isinstance(raw, (list, tuple)):
        raw = raw[0] if raw else None
    return str(raw) if raw else None


def query_from_url(url: str | None) -> dict[str, str]:
    """The query parameters of a URL (first value of each), {} for None or a URL without a query."""
    if not url:
        return {}
    params: dict[str, str] = {}
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        params.setdefault(key, value)
    return params


def history_entry(query: str, changed) -> dict:
    """How the browser writes ``query`` (from a change of the ``changed`` prop ids) into its history.

    A slider drag or a selected feature replaces the current entry, so that Back leaves the view
    the user came from rather than replaying each step; any other change pushes a new entry.
    """
    moved = {str(prop).split(".")[0] for prop in changed}
    return {"search": query, "replace": bool(moved) and moved <= {*ids.SLIDERS, ids.TABLE}}


def view_query(state: ViewState) -> str:
    """The URL query (with its ``?``) that ``parse_view`` reads back as ``state``.

    Every value is written, so that a shared link keeps meaning the same view when the
    defaults change; the build only when one is pinned (else the link follows new builds).
    """
    params = []
    if state.business is not None:
        params.append(("business", state.business))
    if state.source is not None:
        params.append(("source", state.source))
    if state.build != CURRENT_BUILD:
        params.append(("build_id", str(state.build)))
    params += [
        ("confidence", f"{state.confidence:.2f}"),
        ("min_pct", str(state.min_pct)),
        ("max_pct", str(state.max_pct)),
        ("weighting", state.weighting),
        ("shown", ALL_SHOWN if state.shown == 0 else str(state.shown)),
        ("adjusted", "1" if state.adjusted else "0"),
    ]
    if state.compare is not None:
        params.append(("compare_build", str(state.compare)))
    if state.feature:
        params.append(("feature", state.feature))
    # quote, not quote_plus: a space stays %20 and a literal '+' survives as %2B.
    return "?" + urlencode(params, quote_via=quote, safe="")


def state_from_controls(
    business, source, build, confidence, sparsity, weighting, shown, compare=None, impact_mode=None, feature=None
) -> ViewState:
    """The ViewState the controls' current values stand for (values as the browser sends them)."""
    return parse_view(
        {
            "business": business or "",
            "source": source or "",
            "build_id": "" if build in (None, CURRENT_BUILD) else str(build),
            "confidence": "" if confidence is None else str(confidence),
            "min_pct": str((sparsity or DEFAULT_SPARSITY)[0]),
            "max_pct": str((sparsity or DEFAULT_SPARSITY)[1]),
            "weighting": weighting or "",
            "shown": "" if shown is None else (ALL_SHOWN if str(shown) == "0" else str(shown)),
            "compare_build": "" if compare is None else str(compare),
            "adjusted": "1" if impact_mode == "adjusted" else "0",
            "feature": feature or "",
        }
    )


def selected_feature(selected_rows) -> str | None:
    """The feature of the table's selection: its rows (a list of row dicts) or, as a script sets it, ``{"ids": [...]}``."""
    if isinstance(selected_rows, dict):
        chosen = selected_rows.get("ids") or []
        return str(chosen[0]) if chosen else None
    if selected_rows:
        first = selected_rows[0]
        return first.get("feature") if isinstance(first, dict) else None
    return None


def available_weighting(weighting: str, has_counts: bool | None) -> str:
    """``weighting``, or the mean when it is impression weighting and the dataset has no counts."""
    return "mean" if weighting == "impressions" and not has_counts else weighting


def with_weighting_available(state: ViewState, has_counts: bool | None) -> ViewState:
    """``state``, with impression weighting dropped to the mean when the dataset has no counts."""
    return replace(state, weighting=available_weighting(state.weighting, has_counts))


def weighting_options(has_counts: bool) -> list[dict]:
    """The weighting toggle's options; impression weighting is disabled without clicks and impressions."""
    return [
        {"label": WEIGHTING_LABELS["mean"], "value": "mean"},
        {
            "label": WEIGHTING_LABELS["impressions"],
            "value": "impressions",
            "disabled": not has_counts,
            "label_id": ids.WEIGHTING_IMPRESSIONS_LABEL,  # the target of the option's tooltip
        },
    ]


def weighting_help(has_counts: bool | None) -> str:
    """The line under the weighting toggle: why impression weighting is off, or what the choices mean.

    ``has_counts`` is None when no dataset is selected: nothing to blame on "this dataset" then.
    """
    if has_counts is None:
        return NO_DATASET_HELP
    return WEIGHTING_HELP if has_counts else NO_COUNTS_HELP


def weighting_tip(has_counts: bool | None) -> str:
    """The tooltip of the impression-weighted option: what it does, or why it is disabled."""
    if has_counts is None:
        return NO_DATASET_HELP
    return COUNTS_TIP if has_counts else NO_COUNTS_TIP


# -- the table -------------------------------------------------------------------------------


def result_labels(summary: pd.DataFrame) -> np.ndarray:
    """Per row: significant, not significant, or too few images for a test, as the analysis marked it.

    The same classes as the impact chart's colours (``figures.significance_classes``).
    """
    return figures.significance_classes(summary)


def table_rows(summary: pd.DataFrame) -> list[dict]:
    """The summary as the table's rows: numbers at full precision (formatted in the browser), None for NaN."""
    if summary is None or summary.empty:
        return []
    columns = {c: summary[c].tolist() for c in TABLE_COLUMNS if c != "result"}
    columns["result"] = result_labels(summary).tolist()
    rows = []
    for values in zip(*(columns[c] for c in TABLE_COLUMNS)):
        rows.append({c: (None if isinstance(v, float) and math.isnan(v) else v) for c, v in zip(TABLE_COLUMNS, values)})
    return rows


TABLE_MAX_PX = 560
TABLE_ROW_PX = 42  # AG Grid's row height in its default (Quartz) theme
TABLE_CHROME_PX = 112  # the two-line header, the filter row and the borders


def table_style(n_rows: int) -> dict:
    """The table's size: as tall as its rows up to TABLE_MAX_PX, then it scrolls."""
    height = min(TABLE_MAX_PX, TABLE_CHROME_PX + TABLE_ROW_PX * max(n_rows, 3))
    return {"height": f"{height}px", "width": "100%"}
