"""The page: controls, four charts, the hovered-image panel, the summary table and browser state.

``build_layout`` returns a function, so each page load reads the store afresh (the datasets
on offer and the data version the page starts from) and starts the controls at the view the
page's URL names.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from dashboard import ids, views
from dashboard.views import CURRENT_BUILD, ViewState
from data.analysis import DEFAULT_MIN_GROUP_SIZE, SIGNIFICANCE_LEVEL
from data.store import UnknownBuild, UnknownDataset

DEFAULT_SPARSITY = list(views.DEFAULT_SPARSITY)
# An HTML select holds strings: with numbers, the browser would show no choice for 0.
SHOWN_OPTIONS = [
    {"label": "Top & bottom 10", "value": "10"},
    {"label": "Top & bottom 25", "value": "25"},
    {"label": "Top & bottom 50", "value": "50"},
    {"label": "All features", "value": "0"},
]
GRAPH_CONFIG = {
    "displaylogo": False,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
    "toImageButtonOptions": {"format": "png", "scale": 2},
}
BAR_CONFIG = {"displayModeBar": False}
HOVER_HINT = "Hover a point in the chart to see its image, its CTR and its features."


# -- options of the dataset and build pickers ----------------------------------------------


def format_time(iso: str | None) -> str:
    """'25 Nov 2026, 19:24 UTC' from a stored ISO timestamp ('' when missing)."""
    if not iso or pd.isna(iso):
        return ""
    try:
        return datetime.fromisoformat(str(iso)).strftime("%d %b %Y, %H:%M UTC")
    except ValueError:
        return str(iso)


def business_options(datasets: pd.DataFrame) -> list[dict]:
    """Businesses, most recently updated first."""
    return [{"label": b, "value": b} for b in pd.unique(datasets["business"])]


def source_options(datasets: pd.DataFrame, business: str | None) -> list[dict]:
    """The image sources of ``business``, most recently updated first, flagging those without CTR."""
    rows = datasets[datasets["business"] == business]
    return [
        {
            "label": source if ctr else f"{source} (no CTR yet)",
            "value": source,
        }
        for source, ctr in zip(rows["source"], rows["images_with_ctr"])
    ]


def build_options(builds: pd.DataFrame) -> list[dict]:
    """The stored builds, newest first; the newest one has the value CURRENT_BUILD so it follows new builds."""
    options = []
    for i, row in enumerate(builds.itertuples(index=False)):
        if i == 0:
            options.append({"label": f"#{row.build_id} · current", "value": CURRENT_BUILD})
        else:
            label = f"#{row.build_id} · {format_time(row.received_at)}"
            options.append({"label": label, "value": int(row.build_id)})
    return options


def choose(options: list[dict], value, default=None):
    """``value`` when it is still among ``options``, else ``default``, else the first option's."""
    values = [o["value"] for o in options]
    if value in values:
        return value
    if default in values:
        return default
    return values[0] if values else None


# -- the view the page opens at ---------------------------------------------------------------


def resolve_view(state: ViewState, store) -> tuple[ViewState, pd.DataFrame, list[dict], bool | None]:
    """``state`` (from a URL) checked against the store, falling back where it names nothing stored.

    An unknown business gives the default dataset, an unknown source the business's first, a
    build no longer stored the current one, impression weighting without counts the mean.
    Returns ``(state, datasets, build_options, has_counts)``; ``has_counts`` is None without data.
    """
    datasets = store.datasets()
    if not len(datasets):
        state = replace(state, business=None, source=None, build=CURRENT_BUILD)
        return views.with_weighting_available(state, None), datasets, [], None
    if state.business in set(datasets["business"]):
        business = state.business
        sources = datasets.loc[datasets["business"] == business, "source"].tolist()
        source = state.source if state.source in sources else sources[0]
    else:
        business, source = datasets["business"].iloc[0], datasets["source"].iloc[0]
    build_opts = build_options(store.builds(business, source))
    build = choose(build_opts, state.build, CURRENT_BUILD)
    try:
        has_counts = store.dataset(business, source, None if build == CURRENT_BUILD else build).has_counts
    except (UnknownDataset, UnknownBuild):  # deleted meanwhile: the page explains it once drawn
        has_counts = False
    state = replace(state, business=business, source=source, build=build)
    return views.with_weighting_available(state, has_counts), datasets, build_opts, has_counts


def request_query() -> dict[str, str]:
    """The query string of the page being loaded ({} outside a request).

    The browser fetches the layout from /_dash-layout, a request of its own without the page's
    query string; the page's URL comes with it as the referrer (same origin, so the full URL).
    """
    from flask import has_request_context, request

    if not has_request_context():
        return {}
    if request.args:
        return {key: request.args.get(key) for key in request.args}
    return views.query_from_url(request.referrer)


# -- components ----------------------------------------------------------------------------


def _control(label: str, control, *, help_text=None, help_id: str | None = None, label_for=None) -> html.Div:
    return html.Div(
        [
            dbc.Label(label, html_for=label_for or getattr(control, "id", None), className="control-label"),
            control,
            html.Div(help_text, className="control-help", **({"id": help_id} if help_id else {}))
            if (help_text or help_id)
            else None,
        ],
        className="control",
    )


def _weighting_control(state: ViewState, has_counts: bool | None) -> html.Div:
    toggle = dbc.RadioItems(
        id=ids.WEIGHTING,
        options=views.weighting_options(has_counts),
        value=state.weighting,
        className="weighting",
        input_class_name="weighting-input",
        label_class_name="weighting-label",
    )
    # The tooltip hangs on the impression option's label: a disabled input shows no tooltip.
    tip = dbc.Tooltip(
        views.weighting_tip(has_counts),
        id=ids.WEIGHTING_TIP,
        target=ids.WEIGHTING_IMPRESSIONS_LABEL,
        placement="bottom",
    )
    return _control(
        "CTR weighting",
        html.Div([toggle, tip]),
        help_text=views.weighting_help(has_counts),
        help_id=ids.WEIGHTING_HELP,
        label_for=ids.WEIGHTING,
    )


def _controls(datasets: pd.DataFrame, state: ViewState, build_opts, has_counts: bool | None) -> dbc.Card:
    confidence = dcc.Slider(
        id=ids.CONFIDENCE,
        min=0,
        max=1,
        step=0.01,
        value=state.confidence,
        marks={v: f"{v:g}" for v in (0, 0.25, 0.5, 0.75, 1)},
        tooltip={"placement": "bottom", "always_visible": False},
        updatemode="mouseup",
    )
    sparsity = dcc.RangeSlider(
        id=ids.SPARSITY,
        min=0,
        max=100,
        step=1,
        value=state.sparsity,
        marks={v: f"{v}%" for v in (0, 25, 50, 75, 100)},
        allowCross=False,
        tooltip={"placement": "bottom", "always_visible": False},
        updatemode="mouseup",
    )
    return dbc.Card(
        dbc.CardBody(
            html.Div(
                [
                    _control(
                        "Business",
                        dcc.Dropdown(
                            id=ids.BUSINESS,
                            options=business_options(datasets),
                            value=state.business,
                            clearable=False,
                            placeholder="No data yet",
                        ),
                    ),
                    _control(
                        "Image source",
                        dcc.Dropdown(
                            id=ids.SOURCE,
                            options=source_options(datasets, state.business),
                            value=state.source,
                            clearable=False,
                            placeholder="No data yet",
                        ),
                    ),
                    _control(
                        "Build",
                        dcc.Dropdown(
                            id=ids.BUILD,
                            options=build_opts,
                            value=state.build if build_opts else None,
                            clearable=False,
                            placeholder="No build yet",
                        ),
                    ),
                    _control(
                        "Confidence threshold",
                        confidence,
                        help_text="A feature is present when its confidence is above this.",
                    ),
                    _control(
                        "Feature prevalence",
                        sparsity,
                        help_text="Keep features present in this share of the images.",
                    ),
                    _weighting_control(state, has_counts),
                    _control(
                        "Features charted",
                        dbc.Select(id=ids.SHOWN, options=SHOWN_OPTIONS, value=str(state.shown)),
                        help_text="Ranked by impact. The table below lists them all.",
                    ),
                ],
                className="control-grid",
            )
        ),
        className="controls shadow-sm",
    )


def _graph(graph_id: str, config: dict, **kwargs) -> dcc.Loading:
    return dcc.Loading(
        dcc.Graph(id=graph_id, config=config, **kwargs),
        type="circle",
        color="#2f6bcf",
        delay_show=300,
        overlay_style={"visibility": "visible", "opacity": 0.6},
    )


def _scatter_card() -> dbc.Card:
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("Feature CTR per image", className="card-title-text"),
                    html.Span(
                        "Each dot is an image that has the feature, at the image's CTR; a black dash marks "
                        "their average. Hover a dot to join the same image's other features.",
                        className="card-hint",
                    ),
                ]
            ),
            dbc.CardBody(
                dbc.Row(
                    [
                        dbc.Col(
                            html.Div(
                                _graph(ids.SCATTER, GRAPH_CONFIG, clear_on_unhover=True),
                                id=ids.SCATTER_FRAME,
                                className="scatter-frame",
                            ),
                            lg=9,
                        ),
                        dbc.Col(
                            html.Div(
                                html.P(HOVER_HINT, className="text-muted small mb-0"),
                                id=ids.HOVER_PANEL,
                                className="hover-panel",
                            ),
                            lg=3,
                        ),
                    ],
                    className="g-3",
                )
            ),
        ],
        className="shadow-sm mb-3",
    )


def impact_key(min_n: int) -> html.Div:
    """What the impact bars' colours and whiskers mean, as a key above the chart."""

    def item(swatches, text):
        return html.Span(
            [*(html.Span(className=f"swatch {s}") for s in swatches), html.Span(text)], className="key-item"
        )

    return html.Div(
        [
            item(["sig-pos", "sig-neg"], f"significant (q < {SIGNIFICANCE_LEVEL:g}, BH-corrected)"),
            item(["ns-pos", "ns-neg"], "not significant"),
            item(["low-n"], f"too few images (n < {min_n} on a side)"),
            item(["whisker"], "95% interval"),
        ],
        id=ids.IMPACT_KEY,
        className="impact-key",
    )


def _bars_card(min_n: int) -> dbc.Card:
    heads = [
        ("Average CTR with the feature", "Images in which the feature is present."),
        ("Impact", impact_key(min_n)),
        ("Average CTR without the feature", "Images in which the feature is absent."),
    ]
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("Average CTR by feature", className="card-title-text"),
                    html.Span(
                        "Features sorted by impact (CTR with minus without, in percentage points), highest first; "
                        "the three charts share rows. Hover a bar for its numbers.",
                        className="card-hint",
                    ),
                ]
            ),
            dbc.CardBody(
                html.Div(
                    [
                        html.Div(
                            [
                                html.Div(
                                    [html.Div(t, className="bar-head-title"), html.Div(h, className="bar-head-hint")],
                                    className="bar-head",
                                )
                                for t, h in heads
                            ],
                            className="bar-grid bar-heads",
                        ),
                        html.Div(
                            [
                                _graph(ids.AVG_WITH, BAR_CONFIG),
                                _graph(ids.IMPACT, BAR_CONFIG),
                                _graph(ids.AVG_WITHOUT, BAR_CONFIG),
                            ],
                            className="bar-grid",
                        ),
                    ],
                    id=ids.BAR_PANEL,
                    className="bar-scroll",
                ),
                className="pt-0",
            ),
        ],
        id=ids.BAR_CARD,
        className="shadow-sm mb-3",
    )


# Cell formats are functions in assets/dashboard.js (window.dashAgGridFunctions), so rows keep
# full precision and sort by number.
def _number_column(field, header, formatter, *, tooltip=None, width=110, **extra) -> dict:
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
    _number_column("n_with", "Images with", "formatCount", tooltip="Images with a CTR that have the feature"),
    _number_column("n_without", "Images without", "formatCount", tooltip="Images with a CTR that lack the feature"),
    _number_column(
        "prevalence_pct",
        "Prevalence",
        "formatShare",
        tooltip="Share of the build's images in which the feature is present",
    ),
    _number_column("avg_ctr_with", "CTR with", "formatCtr", tooltip="Average CTR of the images with the feature"),
    _number_column("avg_ctr_without", "CTR without", "formatCtr", tooltip="Average CTR of the images without it"),
    _number_column(
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
    _number_column(
        "p_value",
        "p",
        "formatP",
        width=90,
        tooltip="Two-sided p-value of the impact (Welch's t, or z for impression weighting)",
    ),
    _number_column(
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


def _table_card() -> dbc.Card:
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


def _navbar() -> html.Header:
    return html.Header(
        dbc.Container(
            [
                html.Div(
                    [
                        html.H1("Creative analytics", className="brand"),
                        html.Span(
                            "Which visual features of ad images go with a higher click-through rate",
                            className="brand-sub",
                        ),
                    ]
                ),
                html.Div(id=ids.STATUS, className="status"),
            ],
            fluid=True,
            className="d-flex justify-content-between align-items-center flex-wrap gap-2",
        ),
        className="topbar",
    )


def page(
    datasets: pd.DataFrame,
    build_opts: list[dict],
    version: str,
    poll_seconds: float,
    state: ViewState | None = None,
    *,
    has_counts: bool = True,
    min_n: int = DEFAULT_MIN_GROUP_SIZE,
) -> html.Div:
    """The component tree for a store whose datasets are ``datasets`` (newest first), opened at ``state``."""
    if state is None:
        state = ViewState(
            business=datasets["business"].iloc[0] if len(datasets) else None,
            source=datasets["source"].iloc[0] if len(datasets) else None,
        )
    return html.Div(
        [
            # callback-nav: the controls write the query string without reloading the page.
            dcc.Location(id=ids.URL, refresh="callback-nav"),
            dcc.Store(id=ids.VERSION, data=version),
            dcc.Store(id=ids.LOOKUP),
            dcc.Interval(id=ids.POLL, interval=int(poll_seconds * 1000)),
            _navbar(),
            dbc.Container(
                [
                    _controls(datasets, state, build_opts, has_counts),
                    html.Div(id=ids.NOTICE, className="notice"),
                    _scatter_card(),
                    _bars_card(min_n),
                    _table_card(),
                ],
                fluid=True,
                className="page",
            ),
        ]
    )


def build_layout(store, settings):
    """The layout as a function of the request: the current datasets, opened at the URL's view."""

    def serve_layout():
        # Version first: a build landing meanwhile then shows up at the next poll, never lost.
        version = store.version()
        state, datasets, build_opts, has_counts = resolve_view(views.parse_view(request_query()), store)
        return page(
            datasets,
            build_opts,
            version,
            settings.poll_seconds,
            state,
            has_counts=has_counts,
            min_n=settings.min_group_size,
        )

    return serve_layout
