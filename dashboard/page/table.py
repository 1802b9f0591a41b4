"""The feature summary table: its columns, its card with the downloads, and the line above it."""

from __future__ import annotations

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.page import ids, views
from dashboard.page.compute import View


# Cell formats are functions in assets/dashboard.js (window.dashAgGridFunctions), so rows keep
# full precision and sort by number.
def number_column(field, header, formatter, *, tooltip=None, width=110, **extra) -> dict:
    column = {
        "field": field,
        "headerName": header,
        "type": "rightAligned",
        "valueFormatter": {"function": f"{formatter}(params.value)"},
        "minWidth": width,
        "filter": False,
    }
    if tooltip:
        column["headerTooltip"] = tooltip
    column.update(extra)
    return column


def interval_column(low: str, high: str, header: str, tooltip: str, *, col_id: str, width: int = 190) -> dict:
    """An interval column: 'low to high pp', sorted by its lower end."""
    return {
        "field": low,
        "colId": col_id,
        "headerName": header,
        "headerTooltip": tooltip,
        "type": "rightAligned",
        "valueFormatter": {"function": f"formatInterval(params.data, '{low}', '{high}')"},
        "minWidth": width,
        "filter": False,
    }


# The answer's columns (feature, verdict, lift, interval, q) are at least as wide as their values
# at the grid's 13 px, so that at 1280 px they show in full (the columns flex to fill wider
# screens; those after q scroll sideways when they no longer fit). Lift: "+1234.5 %" in bold;
# q and p: "8.1 x 10^-31"; verdict: "too few images" in italics; each with 2 x 16 px padding.
VERDICT_PX = 140
LIFT_PX = 110
P_PX = 120
FEATURE_PX = (160, 360)  # the feature column: from its longest name, within these bounds
FEATURE_CHAR_PX = 7.5  # about the widest average character width of a name at 13 px


def feature_width(names) -> int:
    """The feature column's width in px: its longest name in full, within FEATURE_PX."""
    longest = max((len(str(n)) for n in names), default=0)
    return int(min(FEATURE_PX[1], max(FEATURE_PX[0], 40 + FEATURE_CHAR_PX * longest)))


def sized_columns(columns: list[dict], rows: list[dict]) -> list[dict]:
    """``columns`` with the feature column as wide as the longest feature name of ``rows`` needs."""
    width = feature_width(r["feature"] for r in rows)
    return [{**c, "minWidth": width} if c.get("field") == "feature" else c for c in columns]


VERDICT_COLUMN = {
    "field": "verdict",
    "headerName": "Verdict",
    "headerTooltip": "Helps or hurts: the difference is unlikely to be chance (q < 0.05). Unclear: it could be. "
    "Too few images: not tested.",
    "minWidth": VERDICT_PX,
    "filter": False,
    "cellClass": "verdict-cell",
    "cellClassRules": {
        "verdict-helps": "params.value === 'helps'",
        "verdict-hurts": "params.value === 'hurts'",
        "verdict-low": "params.value === 'too few images'",
    },
}

TABLE_COLUMN_DEFS = [
    {
        "field": "feature",
        "headerName": "Feature",
        "filter": "agTextColumnFilter",
        "suppressHeaderMenuButton": True,
        "pinned": "left",
        "minWidth": FEATURE_PX[0],
        "flex": 2,
    },
    VERDICT_COLUMN,
    number_column(
        "lift_pct",
        "Lift",
        "formatLift",
        width=LIFT_PX,
        tooltip="The impact relative to the CTR without the feature: +10 % means a tenth more clicks per view",
        cellClassRules={"impact-pos": "params.value > 0", "impact-neg": "params.value < 0"},
    ),
    number_column(
        "impact",
        "Impact",
        "formatImpact",
        width=110,
        tooltip="CTR with minus CTR without, in percentage points",
        cellClassRules={"impact-pos": "params.value > 0", "impact-neg": "params.value < 0"},
    ),
    interval_column(
        "ci_low_fcr",
        "ci_high_fcr",
        "Interval",
        "Where the impact plausibly lies, widened for testing every feature at once (false coverage rate): "
        "clear of 0 exactly when the feature helps or hurts. Sorts by its lower end",
        col_id="interval",
    ),
    number_column(
        "q_value",
        "q",
        "formatP",
        width=P_PX,
        tooltip="The chance that a feature called helps or hurts at this q is a false find, after testing every "
        "feature in the table (Benjamini-Hochberg); below 0.05 counts as an answer",
    ),
    number_column("n_with", "Images with", "formatCount", tooltip="Images with a CTR that have the feature"),
    number_column("n_without", "Images without", "formatCount", tooltip="Images with a CTR that lack the feature"),
    number_column(
        "prevalence_pct",
        "Prevalence",
        "formatShare",
        tooltip="Share of the build's images in which the feature is present",
    ),
    number_column("avg_ctr_with", "CTR with", "formatCtr", tooltip="Average CTR of the images with the feature"),
    number_column("avg_ctr_without", "CTR without", "formatCtr", tooltip="Average CTR of the images without it"),
    interval_column(
        "ci_low",
        "ci_high",
        "95% interval (this test)",
        "95% interval of the impact for this feature alone, not widened for testing many (sorts by its lower end)",
        col_id="interval_test",
    ),
    number_column(
        "p_value",
        "p",
        "formatP",
        width=P_PX,
        tooltip="Two-sided permutation p-value of the impact (share of image shufflings as extreme), for this "
        "feature alone",
    ),
]


def _downloads() -> html.Div:
    """The two CSV download buttons, with what each file holds on hover."""
    download = "Every feature passing the filters, not only the ones charted"
    return html.Div(
        [
            dbc.Button(
                "Download summary CSV",
                id=ids.DOWNLOAD_SUMMARY_BUTTON,
                color="primary",
                outline=True,
                size="sm",
            ),
            dbc.Tooltip(
                f"{download}, all columns at full precision.",
                target=ids.DOWNLOAD_SUMMARY_BUTTON,
                placement="bottom",
            ),
            dbc.Button(
                "Download points CSV",
                id=ids.DOWNLOAD_POINTS_BUTTON,
                color="primary",
                outline=True,
                size="sm",
            ),
            dbc.Tooltip(
                f"Image, feature, confidence and CTR of each point of the scatter, for "
                f"{download[0].lower()}{download[1:]}.",
                target=ids.DOWNLOAD_POINTS_BUTTON,
                placement="bottom",
            ),
            dcc.Download(id=ids.DOWNLOAD_SUMMARY),
            dcc.Download(id=ids.DOWNLOAD_POINTS),
        ],
        className="card-actions",
    )


def table_card() -> dbc.Card:
    """The summary table with its hint, the search box, the row-selection note and the two CSV downloads."""
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("Feature summary", className="card-title-text"),
                    html.Span(id=ids.TABLE_HINT, className="card-hint"),
                    _downloads(),
                ]
            ),
            dbc.CardBody(
                [
                    html.Div(
                        [
                            dbc.Label("Find a feature", html_for=ids.TABLE_SEARCH, className="control-label me-2 mb-0"),
                            dcc.Input(
                                id=ids.TABLE_SEARCH,
                                type="text",
                                placeholder="name contains…",
                                debounce=False,
                                className="form-control form-control-sm table-search",
                            ),
                        ],
                        className="table-tools",
                    ),
                    html.Div(id=ids.TABLE_SELECTION, className="table-selection"),
                    dcc.Store(id=ids.TABLE_ROWS),
                    dag.AgGrid(
                        id=ids.TABLE,
                        columnDefs=TABLE_COLUMN_DEFS,
                        rowData=[],
                        defaultColDef={
                            "sortable": True,
                            "resizable": True,
                            "flex": 1,
                            "wrapHeaderText": True,
                            "autoHeaderHeight": True,
                        },
                        getRowId="params.data.feature",
                        columnSize="responsiveSizeToFit",
                        dashGridOptions={
                            "rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
                            "tooltipShowDelay": 300,
                            "animateRows": False,
                            # Laid out even while below the fold: with AG Grid's content-visibility: auto,
                            # an unseen grid's header and cells read as hidden to assistive technology checks.
                            "suppressContentVisibilityAuto": True,
                            "localeText": {"noRowsToShow": "No feature to list."},
                        },
                        className="summary-grid",
                        style=views.table_style(0),
                    ),
                ]
            ),
        ],
        id=ids.TABLE_CARD,
        className="shadow-sm mb-4",
    )


def table_hint(view: View) -> str:
    """The line above the table: how many features it lists, and how to link a row to the charts."""
    summary = view.table_summary
    if summary is None:
        return ""  # no data yet: the notice above the charts says what to do
    if summary.empty:
        return "No feature passes the filters."
    n, charted = len(summary), len(view.summary) if view.summary is not None else 0
    scope = f"All {n:,} features passing the filters" + ("" if charted == n else f" ({charted:,} of them charted)")
    return f"{scope}, ranked by evidence. Click a row (or press Space on it) to select its feature everywhere."
