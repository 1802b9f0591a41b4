"""The page: the answer first, then the evidence (charts), then the table; the controls in a side column.

``build_layout`` returns a function, so each page load reads the store afresh (the datasets
on offer and the data version the page starts from) and starts the controls at the view the
page's URL names.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
from dash import dcc, html

from dashboard.page import ids, views
from dashboard.page.adjusted import cooccurrence_card
from dashboard.page.components import bars_card, navbar, scatter_card, verdict_card
from dashboard.page.controls import controls_card
from dashboard.page.dates import Extent, dataset_extent, page_window
from dashboard.page.drift import compare_choice, drift_card
from dashboard.page.gallery import gallery_card
from dashboard.page.selection import request_query, resolve_view, stale_build
from dashboard.page.table import table_card
from dashboard.page.trend import trend_card
from dashboard.page.views import ViewState
from data.analysis import DEFAULT_MIN_GROUP_SIZE

REFINE_POLL_MS = 1_000  # how often a provisional view asks whether its full null is stored


def address_bar_fix(state: ViewState, stale: int | None, moved: bool) -> dcc.Store:
    """The store that replaces the address bar once, at load (no history entry added), when the
    page shows another view than it names: a build no longer stored (``build``: the notice says
    so), or a business or source not there for this reader (a copied link then names what it shows)."""
    data = None
    if stale is not None or moved:
        search = views.view_query(state)
        data = {"build": stale, "business": state.business, "source": state.source, "search": search, "replace": True}
    return dcc.Store(id=ids.STALE_BUILD, data=data)


def page(
    datasets: pd.DataFrame,
    build_opts: list[dict],
    version: str,
    poll_seconds: float,
    state: ViewState | None = None,
    *,
    has_counts: bool = True,
    min_n: int = DEFAULT_MIN_GROUP_SIZE,
    stale: int | None = None,
    moved: bool = False,
    compare_opts: list[dict] | None = None,
    extent: Extent | None = None,
) -> html.Div:
    """The component tree for a store whose datasets are ``datasets`` (newest first), opened at ``state``.

    ``stale``: the build the page's URL pinned that is no longer stored (``state`` shows the current one);
    ``moved``: the URL named a business or source that is not there for this reader (``state`` shows another);
    ``compare_opts``: the builds to compare with (``drift.compare_choice``); ``extent``: the days of
    the dataset's dated metrics (None: one CTR per image, no date range).
    """
    if state is None:
        state = ViewState(
            business=datasets["business"].iloc[0] if len(datasets) else None,
            source=datasets["source"].iloc[0] if len(datasets) else None,
        )
    return html.Div(
        [
            # The query the controls last wrote (assets/dashboard.js puts it in the address bar),
            # starting at the view the page opens at: callbacks that set a control to the value
            # it has while the page loads then write nothing, so no history entry is added.
            dcc.Store(id=ids.URL, data={"search": views.view_query(state)}),
            address_bar_fix(state, stale, moved),
            dcc.Store(id=ids.VERSION, data=version),
            # The URL's feature=, selected once the table has its rows (assets/dashboard.js).
            dcc.Store(id=ids.FEATURE_AT_LOAD, data=state.feature),
            dcc.Store(id=ids.LOOKUP),
            dcc.Interval(id=ids.POLL, interval=int(poll_seconds * 1000)),
            dcc.Interval(id=ids.REFINE_POLL, interval=REFINE_POLL_MS, disabled=True),
            dcc.Store(id=ids.PENDING_NULL),
            dcc.Store(id=ids.REFINED),
            navbar(),
            html.Div(
                [
                    controls_card(datasets, state, build_opts, has_counts, compare_opts, extent),
                    html.Main(
                        [
                            html.Div(id=ids.NOTICE, className="notice"),
                            verdict_card(),
                            # Hidden while there is no data: the notice says what to send.
                            html.Div(
                                [
                                    drift_card(),
                                    bars_card(min_n),
                                    trend_card(shown=extent is not None),
                                    scatter_card(),
                                    cooccurrence_card(),
                                    gallery_card(),
                                    table_card(),
                                ],
                                id=ids.EVIDENCE,
                            ),
                        ],
                        className="page-main",
                    ),
                ],
                className="page",
            ),
        ],
    )


def build_layout(store, settings):
    """The layout as a function of the request: the current datasets, opened at the URL's view."""

    def serve_layout():
        # Version first: a build landing meanwhile then shows up at the next poll, never lost.
        version = store.version()
        requested = views.parse_view(request_query(), min_n=settings.min_group_size)
        state, datasets, build_opts, has_counts = resolve_view(requested, store)
        compare_opts, compare = compare_choice(store, state.business, state.source, state.build, state.compare)
        extent = dataset_extent(store, state.business, state.source)
        state = replace(state, compare=compare, filters=page_window(state.filters, extent))
        return page(
            datasets,
            build_opts,
            version,
            settings.poll_seconds,
            state,
            has_counts=has_counts,
            min_n=settings.min_group_size,
            stale=stale_build(requested, state),
            moved=requested.business is not None
            and (requested.business, requested.source) != (state.business, state.source),
            compare_opts=compare_opts,
            extent=extent,
        )

    return serve_layout


def outage_page(cause: str) -> html.Div:
    """The page while the database cannot serve it: what is wrong, in words, and what to do."""
    from dashboard.api.errors import public_detail

    return html.Div(
        [
            navbar(),
            html.Main(
                html.Div(
                    [
                        html.H2("The data is unavailable right now", className="h5"),
                        html.P(f"{cause.capitalize()}: {public_detail(cause)}."),
                        html.P("Nothing is lost: reload this page in a minute."),
                    ],
                    className="alert alert-warning",
                    role="alert",
                    id="outage",
                ),
                className="page",
            ),
        ]
    )


# The page's HTML: Dash's own, with the language named and the component ids the scripts in
# assets/ use (ids.BROWSER) handed to them before they load, so they spell none of their own.
INDEX_STRING = (
    """<!DOCTYPE html>
<html lang="en">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
        <script>window.CREATIVE_IDS = """
    + json.dumps(ids.BROWSER).replace("<", "\\u003c")
    + """;</script>
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""
)
