"""The page's components around the charts: chart cards, the impact key, the top bar and its texts.

Components render a ``View`` (``dashboard.page.compute``) and never query the store.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.page import ids
from dashboard.page.adjusted import bars_hint
from dashboard.page.compute import View
from dashboard.page.hover import HOVER_HINT
from dashboard.page.selection import format_time
from data.analysis import SIGNIFICANCE_LEVEL

GRAPH_CONFIG = {
    "displaylogo": False,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
    "toImageButtonOptions": {"format": "png", "scale": 2},
    # The WebGL scatter's buffers at the screen's own pixel ratio, which the page sets on a
    # high-density screen (assets/dashboard.js glPixelRatio). Plotly's default of 2 gives a
    # standard screen four times its pixels in each of three WebGL buffers, to the same look:
    # 0.3-0.4 s more to create them with software GL, before the scatter can draw.
    "plotGlPixelRatio": 1,
}
BAR_CONFIG = {"displayModeBar": False}
# What a chart shows until its first figure arrives: nothing. Plotly's default empty figure draws
# axes ticked -1 to 6 that mean nothing, and laying them out took 0.05-0.2 s of the page's first
# draw, while the view's answer was on its way.
BLANK_FIGURE = {"data": [], "layout": {"xaxis": {"visible": False}, "yaxis": {"visible": False}}}


def hover_hint() -> html.P:
    """The hovered-image panel before anything is hovered."""
    return html.P(HOVER_HINT, className="text-muted small mb-0")


def hover_panel() -> list:
    """The hovered-image panel's contents: the hint, and a slot that assets/dashboard.js fills
    with the hovered image (and empties, showing the hint again, when the pointer leaves)."""
    return [html.Div(hover_hint(), id=ids.HOVER_HINT), html.Div(id=ids.HOVER_CARD)]


def loading_graph(graph_id: str, config: dict, **kwargs) -> html.Figure:
    """A chart, blank until its first figure, with its text alternative (a caption for screen
    readers, filled with each view)."""
    text_id = ids.CHART_TEXT.get(graph_id)
    return html.Figure(
        [
            dcc.Loading(
                dcc.Graph(id=graph_id, config=config, figure=BLANK_FIGURE, **kwargs),
                type="circle",
                color="#2f6bcf",
                delay_show=300,
                overlay_style={"visibility": "visible", "opacity": 0.6},
            ),
            html.Figcaption(id=text_id, className="visually-hidden") if text_id else None,
        ],
        className="chart-figure",
    )


def scatter_card() -> dbc.Card:
    """The scatter of every image's features at its CTR, beside the hovered-image panel."""
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("Feature CTR per image", className="card-title-text"),
                    html.Span(
                        "Each dot is an image that has the feature, at the image's CTR; a black dash marks "
                        "their average, the dashed line the CTR of all images. Hover a dot to join the same "
                        "image's other features.",
                        className="card-hint",
                    ),
                ]
            ),
            dbc.CardBody(
                html.Div(
                    [
                        html.Div(
                            loading_graph(ids.SCATTER, GRAPH_CONFIG), id=ids.SCATTER_FRAME, className="scatter-frame"
                        ),
                        html.Div(hover_panel(), id=ids.HOVER_PANEL, className="hover-panel"),
                    ],
                    className="scatter-row",
                )
            ),
        ],
        className="shadow-sm mb-3",
    )


def impact_key(min_n: int) -> html.Div:
    """What the impact bars' colours and whiskers mean, as a key above the chart."""

    def item(swatches, text, tip=None):
        return html.Span(
            [*(html.Span(className=f"swatch {s}") for s in swatches), html.Span(text)],
            className="key-item",
            title=tip,
        )

    return html.Div(
        [
            item(["sig-pos"], "helps"),
            item(["sig-neg"], "hurts"),
            item(["ns-pos", "ns-neg"], "unclear", f"q ≥ {SIGNIFICANCE_LEVEL:g}: the difference could be chance"),
            item(["low-n"], f"too few images (n < {min_n} on a side)"),
            item(
                ["whisker"],
                "interval",
                "The range the impact plausibly lies in, widened for testing every feature at once: "
                "it is clear of 0 exactly for the features that help or hurt.",
            ),
        ],
        id=ids.IMPACT_KEY,
        className="impact-key",
    )


def bars_card(min_n: int) -> dbc.Card:
    """The impact chart and the CTR with / without chart, sharing their rows (one page scroll, no inner one)."""
    heads = [
        (html.Div("Impact", className="bar-head-title", id=ids.IMPACT_TITLE), impact_key(min_n)),
        (
            html.Div("Average CTR with the feature", className="bar-head-title"),
            html.Span(
                [
                    html.Span(className="swatch with"),
                    " with the feature, ",
                    html.Span(className="swatch base"),
                    " without it",
                ],
                className="bar-head-hint",
            ),
        ),
    ]
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("The evidence, feature by feature", className="card-title-text"),
                    html.Span(bars_hint(False), id=ids.BAR_HINT, className="card-hint"),
                ]
            ),
            dbc.CardBody(
                html.Div(
                    [
                        html.Div(
                            [html.Div([t, h], className="bar-head") for t, h in heads], className="bar-grid bar-heads"
                        ),
                        html.Div(
                            [loading_graph(ids.IMPACT, BAR_CONFIG), loading_graph(ids.AVG_WITH, BAR_CONFIG)],
                            className="bar-grid",
                        ),
                    ],
                    id=ids.BAR_PANEL,
                    className="bar-panel",
                ),
                className="pt-0",
            ),
        ],
        id=ids.BAR_CARD,
        className="shadow-sm mb-3",
    )


def verdict_card() -> dbc.Card:
    """The answer: which features help, which hurt, and how sure (filled with each view)."""
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("What goes with a higher CTR", className="card-title-text"),
                    html.Span(
                        "Select a feature to see it in the charts and the table.",
                        className="card-hint",
                    ),
                ]
            ),
            dbc.CardBody(html.Div(id=ids.VERDICT, className="verdict", **{"aria-live": "polite"})),
        ],
        id=ids.VERDICT_CARD,
        className="shadow-sm mb-3 verdict-card",
    )


def navbar() -> html.Header:
    """The top bar: the title and the status of the view."""
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


def notice_component(notice: dict | None):
    """An alert explaining an empty or unusual state (None when all is well)."""
    if not notice:
        return None
    body = [
        html.H4(notice["title"], className="alert-heading h6 fw-semibold mb-1"),
        html.P(notice.get("text", ""), className="mb-1"),
    ]
    if notice.get("command"):
        body.append(html.Pre(html.Code(notice["command"]), className="command mb-0"))
    if notice.get("after"):
        body.append(html.P(notice["after"], className="small mt-2 mb-0"))
    return dbc.Alert(body, color="info" if notice.get("command") else "warning", className="mb-3")


def status_component(view: View):
    """The build and counts line of the top bar."""
    if not view.status:
        return None
    parts = [html.Span(f"{view.business} / {view.source}", className="status-dataset")]
    if view.build_id is not None:
        parts.append(html.Span(f"Build #{view.build_id} · {format_time(view.received_at)}"))
    parts.append(html.Span(view.status))
    if view.window:
        parts.append(html.Span(view.window, className="status-window"))
    lines = [html.Div(parts, className="status-line")]
    if view.shown_text:
        lines.append(html.Div(view.shown_text, className="status-line status-shown"))
    return lines
