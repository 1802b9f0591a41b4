"""Callbacks: thin wiring from the controls to the plain functions that compute and render the view.

Each callback reads its inputs, calls ``compute``/``selection``/``views`` and a component, and
returns outputs, keyed by name (never by position). Hover linking and selection run in the
browser (``assets/dashboard.js``), so mouse moves and clicks on a feature never reach the server.
"""

from __future__ import annotations

from dash import ClientsideFunction, Input, Output, State, callback_context, no_update

from dashboard.page import ids, views
from dashboard.page.adjusted import bars_hint, impact_title, register_adjusted_callbacks, table_column_defs
from dashboard.page.components import hover_panel, notice_component, status_component
from dashboard.page.compute import PLACEHOLDER_API, View, compute_view, download_csv
from dashboard.page.controls import sparsity_text
from dashboard.page.dates import register_date_callbacks
from dashboard.page.dependencies import control_states, view_controls
from dashboard.page.drift import DriftView, compute_drift, drift_outputs, register_drift_callbacks
from dashboard.page.gallery import register_gallery_callbacks
from dashboard.page.layout import INDEX_STRING
from dashboard.page.selection import (
    build_options,
    business_options,
    choose,
    dataset_has_counts,
    poll_version,
    source_options,
    stale_build_shown,
)
from dashboard.page.table import sized_columns, table_hint
from dashboard.page.trend import register_trend_callbacks
from dashboard.page.verdict import chart_texts, verdict_panel
from dashboard.page.views import CURRENT_BUILD
from data.store import UnknownDataset

HIDDEN = {"display": "none"}
# The controls that make a view, as keyword arguments of the redraw (and of state_from_controls).
VIEW_INPUTS = view_controls()
VIEW_OUTPUTS = {
    # The answer
    "verdict": Output(ids.VERDICT, "children"),
    "verdict_card": Output(ids.VERDICT_CARD, "style"),
    "notice": Output(ids.NOTICE, "children"),
    "status": Output(ids.STATUS, "children"),
    "evidence": Output(ids.EVIDENCE, "style"),
    # The charts
    "scatter": Output(ids.SCATTER, "figure"),
    "impact": Output(ids.IMPACT, "figure"),
    "avg_with": Output(ids.AVG_WITH, "figure"),
    **{
        f"{name}_text": Output(ids.CHART_TEXT[chart], "children")
        for name, chart in (("scatter", ids.SCATTER), ("impact", ids.IMPACT), ("avg_with", ids.AVG_WITH))
    },
    "lookup": Output(ids.LOOKUP, "data"),
    "hover": Output(ids.HOVER_PANEL, "children"),
    "bar_panel": Output(ids.BAR_PANEL, "style"),
    "impact_title": Output(ids.IMPACT_TITLE, "children"),
    "bar_hint": Output(ids.BAR_HINT, "children"),
    # The table
    "rows": Output(ids.TABLE_ROWS, "data"),  # unpacked into the table's rowData in the browser
    "table_style": Output(ids.TABLE, "style"),
    "table_hint": Output(ids.TABLE_HINT, "children"),
    "columns": Output(ids.TABLE, "columnDefs"),
    # The build comparison
    "drift": Output(ids.DRIFT, "figure"),
    "drift_card": Output(ids.DRIFT_CARD, "style"),
    "drift_frame": Output(ids.DRIFT_FRAME, "style"),
    "drift_note": Output(ids.DRIFT_NOTE, "children"),
    "pending": Output(ids.PENDING_NULL, "data"),
    "refine_off": Output(ids.REFINE_POLL, "disabled"),
}


def answer_outputs(view: View) -> dict:
    """The verdict card, the notice and the top bar's status for ``view``."""
    panel = verdict_panel(view.table_summary, impressions=view.impressions, adjusted=view.adjusted, fcr=view.fcr_level)
    return {
        "verdict": panel,
        "verdict_card": {} if panel is not None else HIDDEN,
        "notice": notice_component(view.notice),
        "status": status_component(view),
        "evidence": {} if view.has_data else HIDDEN,
    }


def chart_outputs(view: View) -> dict:
    """The two bar charts, the scatter, their words, the hover lookup and the impact chart's heading."""
    texts = chart_texts(view.table_summary, view.summary, view.overall_ctr)
    return {
        "scatter": view.scatter,
        "impact": view.impact,
        "avg_with": view.avg_with,
        **{f"{name}_text": text for name, text in texts.items()},
        "lookup": view.lookup,
        "hover": hover_panel(),
        "bar_panel": {"--label-width": f"{view.label_px or 0}px"},
        # Headed by the impact the view shows, not the one asked for (impression weighting has no adjusted one).
        "impact_title": impact_title(view.adjusted),
        "bar_hint": bars_hint(view.adjusted),
    }


def table_outputs(view: View, drift: DriftView) -> dict:
    """The table's rows, columns, size and hint, and the build comparison above the charts."""
    figure, card, frame, note, rows, columns = drift_outputs(drift, view.table)
    return {
        "rows": views.packed_rows(rows),
        "table_style": views.table_style(len(view.table)),
        "table_hint": table_hint(view),
        "columns": sized_columns(table_column_defs(columns, view.adjusted), rows),
        "drift": figure,
        "drift_card": card,
        "drift_frame": frame,
        "drift_note": note,
    }


def register_callbacks(app, store, settings) -> None:
    """Wire the controls to the answer, the charts and the table, the poll to the pickers, and the browser's part."""
    app.index_string = INDEX_STRING
    register_adjusted_callbacks(app, store, settings)
    register_picker_callbacks(app, store)
    register_view_callback(app, store, settings)
    register_url_callbacks(app)
    register_download_callbacks(app, store, settings)
    register_drift_callbacks(app, store)
    register_gallery_callbacks(app, store, settings)
    register_date_callbacks(app, store)
    register_trend_callbacks(app, store, settings)
    register_browser_callbacks(app)


def register_picker_callbacks(app, store) -> None:
    """The poll, and the dataset, build and weighting pickers following the store."""

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
        options = business_options(store.datasets())
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
        # The toggle's value read as the other controls' are, then dropped to the mean without counts.
        wanted = views.state_from_controls(business, source, build, None, None, weighting, None)
        available = views.with_weighting_available(wanted, has_counts).filters.weighting
        return (
            views.weighting_options(has_counts),
            no_update if available == weighting else available,
            views.weighting_help(has_counts),
            views.weighting_tip(has_counts),
        )


def register_view_callback(app, store, settings) -> None:
    """One computation per view (the summary behind the verdict, the charts and the table), its outputs by card."""

    @app.callback(
        output=VIEW_OUTPUTS,
        inputs={**VIEW_INPUTS, "version": Input(ids.VERSION, "data"), "refined": Input(ids.REFINED, "data")},
        state={"stale": State(ids.STALE_BUILD, "data")},
    )
    def _redraw(version, refined, stale, **controls):
        from flask import request

        # The same reading of the controls as the URL and the downloads, so all three agree.
        state = views.state_from_controls(**controls, min_n=settings.min_group_size)
        view = compute_view(
            store,
            controls["business"],
            controls["source"],
            controls["build"],
            state.filters,
            shown=state.shown,
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
            controls["compare"],
            state.filters,
            shown=state.shown,
        )
        refining = {"pending": view.pending, "refine_off": view.pending is None}
        return {**answer_outputs(view), **chart_outputs(view), **table_outputs(view, drift), **refining}

    @app.callback(
        Output(ids.REFINED, "data"),
        Input(ids.REFINE_POLL, "n_intervals"),
        State(ids.PENDING_NULL, "data"),
        State(ids.REFINED, "data"),
        prevent_initial_call=True,
    )
    def _refined(_n, pending, refined):
        # A provisional view (data/refine.py) redraws once its window's full null is stored; the
        # redraw turns the poll off.
        if pending and pending != refined and store.has_null_table(pending):
            return pending
        return no_update


def register_url_callbacks(app) -> None:
    """The controls and the selected feature write the URL (one way: the URL is read once, at load)."""

    @app.callback(
        Output(ids.URL, "data"),
        inputs={**VIEW_INPUTS, "selected": Input(ids.TABLE, "selectedRows")},
        state={"written": State(ids.URL, "data")},
        prevent_initial_call=True,
    )
    def _write_url(selected, written, **controls):
        query = views.view_query(views.state_from_controls(**controls, feature=views.selected_feature(selected)))
        if written and written.get("search") == query:
            return no_update  # the view the URL already holds: no new history entry
        return views.history_entry(query, [t["prop_id"] for t in callback_context.triggered])

    @app.callback(Output(ids.SPARSITY_VALUE, "children"), Input(ids.SPARSITY, "value"), prevent_initial_call=True)
    def _sparsity_value(value):
        return sparsity_text(value)

    @app.callback(Output(ids.CONFIDENCE_VALUE, "children"), Input(ids.CONFIDENCE, "value"), prevent_initial_call=True)
    def _confidence_value(value):
        return f"{float(value or 0):.2f}"


def register_download_callbacks(app, store, settings) -> None:
    """The summary and points CSVs of the view the controls show."""

    def _download(kind):
        def send(
            _clicks, business, source, build, confidence, sparsity, weighting, shown, _compare, date_from, date_to
        ):
            state = views.state_from_controls(
                business,
                source,
                build,
                confidence,
                sparsity,
                weighting,
                shown,
                date_from=date_from,
                date_to=date_to,
                min_n=settings.min_group_size,
            )
            return download_csv(store, state, kind) or no_update

        return send

    for kind, button, target in (
        ("summary", ids.DOWNLOAD_SUMMARY_BUTTON, ids.DOWNLOAD_SUMMARY),
        ("points", ids.DOWNLOAD_POINTS_BUTTON, ids.DOWNLOAD_POINTS),
    ):
        app.callback(
            Output(target, "data"),
            Input(button, "n_clicks"),
            *control_states(),
            prevent_initial_call=True,
        )(_download(kind))


def register_browser_callbacks(app) -> None:
    """The callbacks that run in the browser (assets/dashboard.js, assets/window.js)."""
    # Hover linking runs on the scatter's own hover events in the browser; each view hands it the
    # view's lookup. No callback listens to hoverData: one would put a Dash update and a React
    # render between each mouse move and the link.
    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="newView"),
        Input(ids.LOOKUP, "data"),
        prevent_initial_call=True,
    )
    # The scatter's WebGL buffers follow the screen's pixel ratio, set once before its first data.
    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="glPixelRatio"),
        Output(ids.SCATTER, "config"),
        Input(ids.SCATTER, "id"),
        State(ids.SCATTER, "config"),
    )
    # The view's rows, sent by column, become the table's rows.
    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="unpackRows"),
        Output(ids.TABLE, "rowData"),
        Input(ids.TABLE_ROWS, "data"),
        prevent_initial_call=True,
    )
    # The selected table row (picked in the table or the verdict) is highlighted in the charts.
    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="highlightRow"),
        Output(ids.SCATTER, "figure", allow_duplicate=True),
        Output(ids.IMPACT, "figure", allow_duplicate=True),
        Output(ids.AVG_WITH, "figure", allow_duplicate=True),
        Output(ids.TABLE_SELECTION, "children"),
        Input(ids.TABLE, "selectedRows"),
        Input(ids.LOOKUP, "data"),
        prevent_initial_call=True,
    )
    # The URL's feature=, selected once the table has rows.
    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="selectAtLoad"),
        Output(ids.TABLE, "selectedRows"),
        Output(ids.FEATURE_AT_LOAD, "data"),
        Input(ids.TABLE, "rowData"),
        State(ids.FEATURE_AT_LOAD, "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="filterTable"),
        Output(ids.TABLE, "dashGridOptions"),
        Input(ids.TABLE_SEARCH, "value"),
        prevent_initial_call=True,
    )
    # Panning or paging one chart's window of features moves the others' to the same features.
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
