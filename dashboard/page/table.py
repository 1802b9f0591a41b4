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


TABLE_COLUMN_DEFS = [
    {
        "field": "feature",
        "headerName": "Feature",
        "filter": "agTextColumnFilter",
        "floatingFilter": True,
        "filterParams": {"buttons": ["reset"], "debounceMs": 150},
        "suppressHeaderMenuButton": True,
        "pinned": "left",
        "minWidth": 170,
        "flex": 2,
    },
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
    number_column(
        "impact",
        "Impact",
        "formatImpact",
        tooltip="CTR with minus CTR without, in percentage points",
        cellClassRules={"impact-pos": "params.value > 0", "impact-neg": "params.value < 0"},
    ),
    {
        "field": "ci_low",
        "colId": "interval",
        "headerName": "95% interval",
        "headerTooltip": "95% interval of the impact, in percentage points (sorts by its lower end)",
        "type": "rightAligned",
        "valueFormatter": {"function": "formatInterval(params.data)"},
        "minWidth": 200,
        "filter": False,
    },
    number_column(
        "p_value",
        "p",
        "formatP",
        width=90,
        tooltip="Two-sided permutation p-value of the impact (share of image shufflings as extreme)",
    ),
    number_column(
        "q_value",
        "q",
        "formatP",
        width=90,
        tooltip="Benjamini-Hochberg adjusted p-value over the features in the table",
    ),
    {
        "field": "result",
        "headerName": "Result",
        "minWidth": 150,
        "filter": False,
        "cellClass": "result-cell",
        "cellClassRules": {
            "result-sig": f"params.value === '{views.RESULT_SIGNIFICANT}'",
            "result-low": f"params.value === '{views.RESULT_LOW_N}'",
        },
    },
]


def table_card() -> dbc.Card:
    """The summary table with its hint, the row-selection note and the two CSV downloads."""
    download = "Every feature passing the filters, not only the ones charted"
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("Feature summary", className="card-title-text"),
                    html.Span(id=ids.TABLE_HINT, className="card-hint"),
                    html.Div(
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
                    ),
                ]
            ),
            dbc.CardBody(
                [
                    html.Div(id=ids.TABLE_SELECTION, className="table-selection"),
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
                            "localeText": {"noRowsToShow": "No feature passes the filters."},
                        },
                        className="summary-grid",
                        style=views.table_style(0),
                    ),
                ]
            ),
        ],
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
    return f"{scope}. Click a row to highlight its feature in the charts; filter by name in the Feature column."
