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
from dashboard.page.hover import from_typed_array, typed_array
from data.filters import DEFAULT_MIN_GROUP_SIZE, Filters

CURRENT_BUILD = "current"
# The page's defaults and choices come from the one spec of the query parameters.
DEFAULT_FILTERS = Filters(
    **{name: PARAMS[name].page_default for name in ("confidence", "min_pct", "max_pct", "weighting")}
)
DEFAULT_CONFIDENCE = DEFAULT_FILTERS.confidence
DEFAULT_SPARSITY = (int(DEFAULT_FILTERS.min_pct), int(DEFAULT_FILTERS.max_pct))
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
    "from",
    "to",
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
    "verdict",
    "lift_pct",
    "impact",
    "ci_low_fcr",
    "ci_high_fcr",
    "q_value",
    "n_with",
    "n_without",
    "prevalence_pct",
    "avg_ctr_with",
    "avg_ctr_without",
    "ci_low",
    "ci_high",
    "p_value",
    "result",
]
VERDICTS = ("helps", "hurts", "unclear", "too few images")
RESULT_SIGNIFICANT, RESULT_NOT_SIGNIFICANT, RESULT_LOW_N = figures.SIGNIFICANCE_CLASSES


@dataclass(frozen=True)
class ViewState:
    """What the controls select. ``business``/``source`` None: the store's default dataset.

    ``filters`` are the analysis' (``data.filters.Filters``), on the sliders' steps: confidence
    in hundredths, the prevalence range in whole percent; ``min_n`` is the MIN_GROUP_SIZE setting.
    """

    business: str | None = None
    source: str | None = None
    build: int | str = CURRENT_BUILD  # a build id, or CURRENT_BUILD to follow new builds
    filters: Filters = DEFAULT_FILTERS
    shown: int = DEFAULT_SHOWN
    compare: int | None = None  # a build id to compare the shown build with; None: off
    adjusted: bool = False  # impact adjusted for co-occurring features (data/adjusted.py)
    feature: str | None = None  # the feature selected (the table row, the verdict's button); URL feature=

    @property
    def sparsity(self) -> list[int]:
        """The prevalence range as the range slider holds it."""
        return [int(self.filters.min_pct), int(self.filters.max_pct)]


# -- the URL ---------------------------------------------------------------------------------


def parse_view(args: Mapping, *, min_n: int = DEFAULT_MIN_GROUP_SIZE) -> ViewState:
    """The view a URL query (or the controls) asks for; each missing, malformed or out-of-range value takes its default.

    ``args`` maps names to strings (Flask's ``request.args``, a dict, or ``parse_qs`` lists) or
    to the controls' values, read by the same rules as /api/summary's (``dashboard.api.params``);
    ``min_n`` is the MIN_GROUP_SIZE setting. Whether the dataset, build and weighting exist is
    checked later, against the store (``selection.resolve_view``).
    """
    values = parse_lenient(args, VIEW_PARAMS, defaults={"min_n": min_n})
    filters = values["filters"]
    # The sliders move in steps of 0.01 and 1 %; a value between steps would sit between their marks.
    filters = filters.replace(
        confidence=round(round(filters.confidence / CONFIDENCE_STEP) * CONFIDENCE_STEP, 2),
        min_pct=round(filters.min_pct),
        max_pct=round(filters.max_pct),
    )
    return ViewState(
        business=values["business"],
        source=values["source"],
        build=CURRENT_BUILD if values["build_id"] is None else values["build_id"],
        filters=filters,
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
    filters = state.filters
    params += [
        ("confidence", f"{filters.confidence:.2f}"),
        ("min_pct", f"{filters.min_pct:g}"),
        ("max_pct", f"{filters.max_pct:g}"),
        ("weighting", filters.weighting),
        ("shown", ALL_SHOWN if state.shown == 0 else str(state.shown)),
        ("adjusted", "1" if state.adjusted else "0"),
    ]
    if filters.date_from:
        params.append(("from", filters.date_from))
    if filters.date_to:
        params.append(("to", filters.date_to))
    if state.compare is not None:
        params.append(("compare_build", str(state.compare)))
    if state.feature:
        params.append(("feature", state.feature))
    # quote, not quote_plus: a space stays %20 and a literal '+' survives as %2B.
    return "?" + urlencode(params, quote_via=quote, safe="")


def state_from_controls(
    business,
    source,
    build,
    confidence,
    sparsity,
    weighting,
    shown,
    compare=None,
    impact_mode=None,
    feature=None,
    date_from=None,
    date_to=None,
    *,
    min_n: int = DEFAULT_MIN_GROUP_SIZE,
) -> ViewState:
    """The ViewState the controls' current values stand for (values as the browser sends them).

    Read by ``parse_view``'s rules, each value as it came: the sliders' numbers stay numbers.
    """
    low, high = sparsity if isinstance(sparsity, (list, tuple)) and len(sparsity) == 2 else (None, None)
    return parse_view(
        {
            "business": business,
            "source": source,
            "build_id": None if build == CURRENT_BUILD else build,
            "confidence": confidence,
            "min_pct": low,
            "max_pct": high,
            "weighting": weighting,
            "shown": None if shown is None else (ALL_SHOWN if str(shown) == "0" else str(shown)),
            "compare_build": compare,
            "adjusted": "1" if impact_mode == "adjusted" else "0",
            "feature": feature or "",
            # A picker may send a day with a time ("2026-11-01T00:00:00"): the day is what counts.
            "from": date_from[:10] if isinstance(date_from, str) else date_from,
            "to": date_to[:10] if isinstance(date_to, str) else date_to,
        },
        min_n=min_n,
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
    return replace(state, filters=state.filters.available_for(has_counts))


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


# -- the answer: verdict, lift and the interval that agrees with them -------------------------


ANSWER_COLUMNS = ("verdict", "lift_pct", "ci_low_fcr", "ci_high_fcr")


def require_answer_columns(summary: pd.DataFrame, *, what: str = "summary") -> pd.DataFrame:
    """``summary`` itself when it has the answer's columns (``ANSWER_COLUMNS``), which
    ``data.analysis.feature_summary`` computes; else a ValueError naming the missing ones."""
    missing = [c for c in ANSWER_COLUMNS if c not in summary]
    if missing:
        raise ValueError(
            f"the {what} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
            "pass a frame from data.analysis.feature_summary, which computes the verdict, the lift and the FCR interval"
        )
    return summary


def interval_columns(summary: pd.DataFrame) -> tuple[str, str]:
    """The interval the page draws: the FCR-adjusted one where the summary has it, else the per-test one."""
    if "ci_low_fcr" in summary and summary["ci_low_fcr"].notna().any():
        return "ci_low_fcr", "ci_high_fcr"
    return "ci_low", "ci_high"


def fcr_level(summary: pd.DataFrame) -> float | None:
    """The level of the summary's FCR intervals (its ``fcr_level`` column or attribute), None when unknown."""
    if summary is None:
        return None
    if "fcr_level" in summary and len(summary):
        value = summary["fcr_level"].iloc[0]
    else:
        value = summary.attrs.get("fcr_level")
    return float(value) if value is not None and np.isfinite(value) else None


def evidence_order(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` ranked by evidence, as the charts and the verdict show it.

    Features whose impact is above 0 come first, strongest evidence first (lowest q, then
    largest |impact|); then those without a test (too few images, or no impact); then those
    below 0, weakest evidence first, so that the strongest negatives sit at the bottom. A chart
    of the top and bottom n then always holds the clearest answers on both sides.
    """
    if summary is None or summary.empty:
        return summary
    impact = summary["impact"].to_numpy(dtype=np.float64)
    q = summary["q_value"].to_numpy(dtype=np.float64)
    tested = np.isfinite(q) & np.isfinite(impact)
    side = np.where(~tested, 1, np.where(impact > 0, 0, 2))
    # Within a side: q ascending above 0, descending below; |impact| breaks ties the same way.
    q_key = np.where(side == 2, -np.nan_to_num(q, nan=1.0), np.nan_to_num(q, nan=1.0))
    size = np.abs(np.nan_to_num(impact, nan=0.0))
    size_key = np.where(side == 2, size, -size)
    names = summary["feature"].astype(str).to_numpy()
    order = np.lexsort((names, size_key, q_key, side))
    return summary.iloc[order].reset_index(drop=True)


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
    require_answer_columns(summary)
    columns = {c: summary[c].tolist() for c in TABLE_COLUMNS if c != "result"}
    columns["result"] = result_labels(summary).tolist()
    rows = []
    for values in zip(*(columns[c] for c in TABLE_COLUMNS)):
        rows.append({c: (None if isinstance(v, float) and math.isnan(v) else v) for c, v in zip(TABLE_COLUMNS, values)})
    return rows


def packed_rows(rows: list[dict]) -> dict:
    """``rows`` (dicts with the same keys) by column, ``{"n", "columns"}``: a column of floats (None
    for NaN) as a base64 float64 typed array, the exact doubles in 10.7 characters each where JSON
    spells 18 to 24, and without repeating each key in every row; any other column as a list. The
    browser unpacks them into the table's rowData (assets/dashboard.js unpackRows)."""
    columns = {}
    for key in rows[0] if rows else ():
        values = [r[key] for r in rows]
        numbers = [v for v in values if v is not None]
        if numbers and all(type(v) is float for v in numbers):
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            columns[key] = typed_array(array, np.float64)
        else:
            columns[key] = values
    return {"n": len(rows), "columns": columns}


def unpacked_rows(packed: dict) -> list[dict]:
    """The rows of a ``packed_rows`` value, as the browser unpacks them (NaN back to None)."""
    columns = {
        key: [None if v != v else float(v) for v in from_typed_array(values).tolist()]
        if isinstance(values, dict)
        else values
        for key, values in packed["columns"].items()
    }
    return [{key: values[i] for key, values in columns.items()} for i in range(packed["n"])]


TABLE_MAX_PX = 560
TABLE_ROW_PX = 42  # AG Grid's row height in its default (Quartz) theme
TABLE_CHROME_PX = 112  # the two-line header, the filter row and the borders


def table_style(n_rows: int) -> dict:
    """The table's size: as tall as its rows up to TABLE_MAX_PX, then it scrolls."""
    height = min(TABLE_MAX_PX, TABLE_CHROME_PX + TABLE_ROW_PX * max(n_rows, 3))
    return {"height": f"{height}px", "width": "100%"}
