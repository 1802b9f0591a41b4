"""Callbacks: thin wiring from the controls to the plain functions that compute and render the view.

Each callback reads its inputs, calls ``compute``/``selection``/``views`` and a component, and
returns outputs. Hover linking runs in the browser (``assets/dashboard.js``), so mouse moves
never reach the server.
"""

from __future__ import annotations

from dash import ClientsideFunction, Input, Output, State, callback_context, no_update

from dashboard.page import ids, views
from dashboard.page.adjusted import register_adjusted_callbacks, table_column_defs
from dashboard.page.components import hover_panel, notice_component, status_component
from dashboard.page.compute import PLACEHOLDER_API, compute_view, download_csv
from dashboard.page.drift import compute_drift, drift_outputs, register_drift_callbacks
from dashboard.page.gallery import register_gallery_callbacks
from dashboard.page.selection import (
    build_options,
    business_options,
    choose,
    dataset_has_counts,
    poll_version,
    source_options,
    stale_build_shown,
)
from dashboard.page.table import table_hint
from dashboard.page.views import CURRENT_BUILD
from data.store import UnknownDataset


def register_callbacks(app, store, settings) -> None:
    """Wire the controls to the charts, the poll to the pickers, and hover linking in the browser."""
    register_adjusted_callbacks(app, store, settings)

    @app.callback(
        Output(ids.VERSION, "data"),
        Input(ids.POLL, "n_intervals"),
        State(ids.VERSION, "data"),
        prevent_initial_call=True,
    )
    def _poll(_n, known):
        return poll_version(store, known)

    @app.callback(
        Output(ids.BUSINESS, "options"),
        Output(ids.BUSINESS, "value"),
        Input(ids.VERSION, "data"),
        State(ids.BUSINESS, "value"),
        prevent_initial_call=True,
    )
    def _refresh_businesses(_version, business):
        datasets = store.datasets()
        options = business_options(datasets)
        return options, choose(options, business)

    @app.callback(
        Output(ids.SOURCE, "options"),
        Output(ids.SOURCE, "value"),
        Input(ids.BUSINESS, "value"),
        Input(ids.VERSION, "data"),
        State(ids.SOURCE, "value"),
        prevent_initial_call=True,
    )
    def _refresh_sources(business, _version, source):
        options = source_options(store.datasets(), business)
        return options, choose(options, source)

    @app.callback(
        Output(ids.BUILD, "options"),
        Output(ids.BUILD, "value"),
        Input(ids.SOURCE, "value"),
        Input(ids.VERSION, "data"),
        State(ids.BUSINESS, "value"),
        State(ids.BUILD, "value"),
        prevent_initial_call=True,
    )
    def _refresh_builds(source, _version, business, build):
        try:
            options = build_options(store.builds(business, source))
        except UnknownDataset:
            return [], None
        return options, choose(options, build, CURRENT_BUILD)

    @app.callback(
        Output(ids.WEIGHTING, "options"),
        Output(ids.WEIGHTING, "value"),
        Output(ids.WEIGHTING_HELP, "children"),
        Output(ids.WEIGHTING_TIP, "children"),
        Input(ids.BUSINESS, "value"),
        Input(ids.SOURCE, "value"),
        Input(ids.BUILD, "value"),
        Input(ids.VERSION, "data"),
        State(ids.WEIGHTING, "value"),
        prevent_initial_call=True,
    )
    def _weighting_availability(business, source, build, _version, weighting):
        has_counts = dataset_has_counts(store, business, source, build)
        state = views.with_weighting_available(views.ViewState(weighting=weighting or "mean"), has_counts)
        return (
            views.weighting_options(has_counts),
            no_update if state.weighting == weighting else state.weighting,
            views.weighting_help(has_counts),
            views.weighting_tip(has_counts),
        )

    @app.callback(
        Output(ids.SCATTER, "figure"),
        Output(ids.AVG_WITH, "figure"),
        Output(ids.IMPACT, "figure"),
        Output(ids.AVG_WITHOUT, "figure"),
        Output(ids.LOOKUP, "data"),
        Output(ids.HOVER_PANEL, "children"),
        Output(ids.NOTICE, "children"),
        Output(ids.STATUS, "children"),
        Output(ids.BAR_PANEL, "style"),
        Output(ids.TABLE, "rowData"),
        Output(ids.TABLE, "style"),
        Output(ids.TABLE_HINT, "children"),
        Output(ids.DRIFT, "figure"),
        Output(ids.DRIFT_CARD, "style"),
        Output(ids.DRIFT_FRAME, "style"),
        Output(ids.DRIFT_NOTE, "children"),
        Output(ids.TABLE, "columnDefs"),
        Input(ids.BUSINESS, "value"),
        Input(ids.SOURCE, "value"),
        Input(ids.BUILD, "value"),
        Input(ids.CONFIDENCE, "value"),
        Input(ids.SPARSITY, "value"),
        Input(ids.SHOWN, "value"),
        Input(ids.WEIGHTING, "value"),
        Input(ids.COMPARE, "value"),
        Input(ids.VERSION, "data"),
        Input(ids.IMPACT_MODE, "value"),
        State(ids.STALE_BUILD, "data"),
    )
    def _redraw(
        business, source, build, confidence, sparsity, shown, weighting, compare, _version, impact_mode=None, stale=None
    ):
        from flask import request

        # The same reading of the controls as the URL and the downloads, so all three agree.
        state = views.state_from_controls(
            business, source, build, confidence, sparsity, weighting, shown, compare, impact_mode
        )
        view = compute_view(
            store,
            business,
            source,
            build,
            state.confidence,
            state.sparsity,
            shown=state.shown,
            min_n=settings.min_group_size,
            weighting=state.weighting,
            adjusted=state.adjusted,
            image_url_template=settings.image_url_template,
            api_base=request.host_url if request else PLACEHOLDER_API,
            stale_build=stale_build_shown(stale, state),
        )
        drift = compute_drift(
            store,
            view.business,
            view.source,
            view.build_id,
            compare,
            state.confidence,
            state.sparsity,
            weighting=state.weighting,
            min_n=settings.min_group_size,
            shown=state.shown,
        )
        drift_figure, drift_style, drift_frame, drift_note, rows, columns = drift_outputs(drift, view.table)
        columns = table_column_defs(columns, state.adjusted and view.weighting == "mean")
        return (
            view.scatter,
            view.avg_with,
            view.impact,
            view.avg_without,
            view.lookup,
            hover_panel(),
            notice_component(view.notice),
            status_component(view),
            {"--label-width": f"{view.label_px or 0}px"},
            rows,
            views.table_style(len(view.table)),
            table_hint(view),
            drift_figure,
            drift_style,
            drift_frame,
            drift_note,
            columns,
        )

    @app.callback(
        Output(ids.URL, "data"),
        *(Input(c, "value") for c in ids.CONTROLS),
        Input(ids.IMPACT_MODE, "value"),
        Input(ids.TABLE, "selectedRows"),
        State(ids.URL, "data"),
        prevent_initial_call=True,
    )
    def _write_url(
        business, source, build, confidence, sparsity, weighting, shown, compare, impact_mode, selected, written
    ):
        # One way only, controls -> URL: the URL is read once, when the layout is built, so
        # writing it here never feeds back into the controls.
        query = views.view_query(
            views.state_from_controls(
                business,
                source,
                build,
                confidence,
                sparsity,
                weighting,
                shown,
                compare,
                impact_mode,
                feature=views.selected_feature(selected),
            )
        )
        if written and written.get("search") == query:
            return no_update  # the view the URL already holds: no new history entry
        return views.history_entry(query, [t["prop_id"] for t in callback_context.triggered])

    def _download(kind):
        def send(_clicks, business, source, build, confidence, sparsity, weighting, shown, _compare):
            state = views.state_from_controls(business, source, build, confidence, sparsity, weighting, shown)
            return download_csv(store, state, kind, min_n=settings.min_group_size) or no_update

        return send

    for kind, button, target in (
        ("summary", ids.DOWNLOAD_SUMMARY_BUTTON, ids.DOWNLOAD_SUMMARY),
        ("points", ids.DOWNLOAD_POINTS_BUTTON, ids.DOWNLOAD_POINTS),
    ):
        app.callback(
            Output(target, "data"),
            Input(button, "n_clicks"),
            *(State(c, "value") for c in ids.CONTROLS),
            prevent_initial_call=True,
        )(_download(kind))

    register_drift_callbacks(app, store)
    register_gallery_callbacks(app, store, settings)

    # Hover linking runs on the scatter's own hover events in the browser (assets/dashboard.js);
    # each view hands it the view's lookup. No callback listens to hoverData: one would put a
    # Dash update and a React render between each mouse move and the link.
    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="newView"),
        Input(ids.LOOKUP, "data"),
        prevent_initial_call=True,
    )

    # Selecting a table row highlights its feature in the charts, in the browser (no round trip).
    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="highlightRow"),
        Output(ids.SCATTER, "figure", allow_duplicate=True),
        Output(ids.AVG_WITH, "figure", allow_duplicate=True),
        Output(ids.IMPACT, "figure", allow_duplicate=True),
        Output(ids.AVG_WITHOUT, "figure", allow_duplicate=True),
        Output(ids.TABLE_SELECTION, "children"),
        Input(ids.TABLE, "selectedRows"),
        Input(ids.LOOKUP, "data"),
        prevent_initial_call=True,
    )

    # Panning or paging one chart's window of features moves the others' to the same features,
    # in the browser (assets/window.js).
    app.clientside_callback(
        ClientsideFunction(namespace="creative_window", function_name="followWindow"),
        *(Input(chart, "relayoutData") for chart in ids.CHARTS),
        prevent_initial_call=True,
    )

    # The browser writes the URL: pushState or replaceState, which dcc.Location cannot choose.
    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="writeUrl"),
        Input(ids.URL, "data"),
        prevent_initial_call=True,
    )
    # At load, a URL pinning a build no longer stored is replaced by the view shown.
    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="writeUrl"),
        Input(ids.STALE_BUILD, "data"),
    )

    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="showInCharts"),
        Output(ids.SHOW_IN_CHARTS, "n_clicks"),
        Input(ids.SHOW_IN_CHARTS, "n_clicks"),
        prevent_initial_call=True,
    )

    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="clearSelection"),
        Output(ids.TABLE, "deselectAll"),
        Input(ids.TABLE_CLEAR, "n_clicks"),
        prevent_initial_call=True,
    )
