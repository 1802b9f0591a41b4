"""The page: controls, four charts, the hovered-image panel and the state kept in the browser.

``build_layout`` returns a function, so each page load reads the store afresh (the datasets
on offer and the data version the page starts from).
"""

from __future__ import annotations

from datetime import datetime

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from dashboard import ids

DEFAULT_CONFIDENCE = 0.5
# Features in a handful of images top and tail any impact ranking by chance alone, so the page
# starts without those present in under 2% of the images; the slider goes down to 0.
DEFAULT_SPARSITY = [2, 100]
DEFAULT_SHOWN = 25
SHOWN_OPTIONS = [
    {"label": "Top & bottom 10", "value": 10},
    {"label": "Top & bottom 25", "value": 25},
    {"label": "Top & bottom 50", "value": 50},
    {"label": "All features", "value": 0},
]
CURRENT_BUILD = "current"
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


# -- components ----------------------------------------------------------------------------


def _control(label: str, control, *, help_text: str | None = None, width: int | dict = 2) -> dbc.Col:
    widths = width if isinstance(width, dict) else {"xs": 12, "md": 6, "xl": width}
    return dbc.Col(
        html.Div(
            [
                dbc.Label(label, html_for=getattr(control, "id", None), className="control-label"),
                control,
                html.Div(help_text, className="control-help") if help_text else None,
            ],
            className="control",
        ),
        **widths,
    )


def _controls(datasets: pd.DataFrame, business, source, build_opts) -> dbc.Card:
    confidence = dcc.Slider(
        id=ids.CONFIDENCE,
        min=0,
        max=1,
        step=0.01,
        value=DEFAULT_CONFIDENCE,
        marks={v: f"{v:g}" for v in (0, 0.25, 0.5, 0.75, 1)},
        tooltip={"placement": "bottom", "always_visible": False},
        updatemode="mouseup",
    )
    sparsity = dcc.RangeSlider(
        id=ids.SPARSITY,
        min=0,
        max=100,
        step=1,
        value=list(DEFAULT_SPARSITY),
        marks={v: f"{v}%" for v in (0, 25, 50, 75, 100)},
        allowCross=False,
        tooltip={"placement": "bottom", "always_visible": False},
        updatemode="mouseup",
    )
    return dbc.Card(
        dbc.CardBody(
            dbc.Row(
                [
                    _control(
                        "Business",
                        dcc.Dropdown(
                            id=ids.BUSINESS,
                            options=business_options(datasets),
                            value=business,
                            clearable=False,
                            placeholder="No data yet",
                        ),
                        width=2,
                    ),
                    _control(
                        "Image source",
                        dcc.Dropdown(
                            id=ids.SOURCE,
                            options=source_options(datasets, business),
                            value=source,
                            clearable=False,
                            placeholder="No data yet",
                        ),
                        width=2,
                    ),
                    _control(
                        "Build",
                        dcc.Dropdown(
                            id=ids.BUILD,
                            options=build_opts,
                            value=CURRENT_BUILD if build_opts else None,
                            clearable=False,
                            placeholder="No build yet",
                        ),
                        width=2,
                    ),
                    _control(
                        "Confidence threshold",
                        confidence,
                        help_text="A feature is present when its confidence is above this.",
                        width=2,
                    ),
                    _control(
                        "Feature prevalence",
                        sparsity,
                        help_text="Keep features present in this share of the images.",
                        width=2,
                    ),
                    _control(
                        "Features shown",
                        dbc.Select(id=ids.SHOWN, options=SHOWN_OPTIONS, value=DEFAULT_SHOWN),
                        help_text="Ranked by impact.",
                        width=2,
                    ),
                ],
                className="g-3 align-items-start",
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


def _bars_card() -> dbc.Card:
    heads = [
        ("Average CTR with the feature", "Images in which the feature is present."),
        ("Impact", "Average CTR with minus without, in percentage points. Pale bars: not significant "
         "(q ≥ 0.05 or too few images); whiskers: 95% interval."),
        ("Average CTR without the feature", "Images in which the feature is absent."),
    ]
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("Average CTR by feature", className="card-title-text"),
                    html.Span(
                        "Features sorted by impact, highest first; the three charts share rows.",
                        className="card-hint",
                    ),
                ]
            ),
            dbc.CardBody(
                html.Div(
                    [
                        html.Div(
                            [
                                html.Div([html.Div(t, className="bar-head-title"), html.Div(h, className="bar-head-hint")],
                                         className="bar-head")
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
        className="shadow-sm mb-4",
    )


def _navbar() -> html.Header:
    return html.Header(
        dbc.Container(
            [
                html.Div(
                    [
                        html.H1("Creative analytics", className="brand"),
                        html.Span("Which visual features of ad images go with a higher click-through rate",
                                  className="brand-sub"),
                    ]
                ),
                html.Div(id=ids.STATUS, className="status"),
            ],
            fluid=True,
            className="d-flex justify-content-between align-items-center flex-wrap gap-2",
        ),
        className="topbar",
    )


def page(datasets: pd.DataFrame, build_opts: list[dict], version: str, poll_seconds: float) -> html.Div:
    """The component tree for a store whose datasets are ``datasets`` (newest first)."""
    business = datasets["business"].iloc[0] if len(datasets) else None
    source = datasets["source"].iloc[0] if len(datasets) else None
    return html.Div(
        [
            dcc.Store(id=ids.VERSION, data=version),
            dcc.Store(id=ids.LOOKUP),
            dcc.Interval(id=ids.POLL, interval=int(poll_seconds * 1000)),
            _navbar(),
            dbc.Container(
                [
                    _controls(datasets, business, source, build_opts),
                    html.Div(id=ids.NOTICE, className="notice"),
                    _scatter_card(),
                    _bars_card(),
                ],
                fluid=True,
                className="page",
            ),
        ]
    )


def build_layout(store, settings):
    """The layout as a function of the request, so every page load sees the current datasets."""

    def serve_layout():
        # Version first: a build landing meanwhile then shows up at the next poll, never lost.
        version = store.version()
        datasets = store.datasets()
        build_opts = []
        if len(datasets):
            build_opts = build_options(store.builds(datasets["business"].iloc[0], datasets["source"].iloc[0]))
        return page(datasets, build_opts, version, settings.poll_seconds)

    return serve_layout
