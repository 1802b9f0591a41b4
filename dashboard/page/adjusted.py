"""The page's marginal / adjusted impact switch and the co-occurrence panel.

In adjusted mode the impact chart and the table show each feature's impact adjusted for the
features it travels with (``data.adjusted``): the summary's impact, interval, p and q columns
are swapped for the adjusted ones, so the charts rank and colour by them with no other change.
The co-occurrence panel lists, for the feature selected in the table or hovered in the bars,
its controls with their phi and both impacts side by side.
"""

from __future__ import annotations

import math

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
from dash import ClientsideFunction, Input, Output, State, dcc, html, no_update

from dashboard.figures import format_p, format_pp
from dashboard.figures.style import signed
from dashboard.page import ids, views
from dashboard.page.dependencies import control_states
from dashboard.page.selection import selected_dataset
from data.adjusted import adjusted_columns, cooccurring, fit_adjusted
from data.adjusted_cost import fit_running, known_fit
from data.analysis import SIGNIFICANCE_LEVEL, feature_summary
from data.filters import Filters
from data.store import UnknownDataset

MARGINAL, ADJUSTED = "marginal", "adjusted"
IMPACT_MODE_LABELS = {MARGINAL: "Marginal", ADJUSTED: "Adjusted"}
IMPACT_MODE_HELP = (
    "Marginal: CTR with minus without. Adjusted: the same comparison among images that share the "
    "features it usually appears with, so a companion's effect is not counted as its own."
)
PANEL_ROWS = 12  # controls listed, strongest co-occurrence first
# What the panel says in the marginal view when the adjusted fit of every feature is neither
# cached nor quick at this size: the Adjusted view computes it (once, then kept) and the panel
# shows the numbers from then on.
ADJUSTED_DEFERRED = (
    "too costly to compute on each selection for this build; switch Impact to Adjusted to compute it "
    "(once), after which the adjusted numbers show here too"
)
ADJUSTED_COMPUTING = "being computed for the Adjusted view; they show here once it is drawn"
PANEL_HINT = "Select a row in the table or hover a bar to see the features that feature travels with."
_SWAPPED = {
    "impact": "adjusted_impact",
    "ci_low": "adjusted_ci_low",
    "ci_high": "adjusted_ci_high",
    "p_value": "adjusted_p_value",
    "q_value": "adjusted_q_value",
    # The answer's columns, where the summary has them (else the page derives them from the above).
    "verdict": "adjusted_verdict",
    "lift_pct": "adjusted_lift_pct",
    "ci_low_fcr": "adjusted_ci_low_fcr",
    "ci_high_fcr": "adjusted_ci_high_fcr",
}


def impact_mode_control(adjusted: bool):
    """The "Impact: marginal / adjusted" radio, opened at the URL's mode."""
    return dbc.RadioItems(
        id=ids.IMPACT_MODE,
        options=[{"label": label, "value": value} for value, label in IMPACT_MODE_LABELS.items()],
        value=ADJUSTED if adjusted else MARGINAL,
        className="weighting",
        input_class_name="weighting-input",
        label_class_name="weighting-label",
    )


def as_adjusted(summary: pd.DataFrame, dataset, filters: Filters, *, cache=None) -> pd.DataFrame:
    """``summary`` (under ``filters``) with impact, interval, p, q (and verdict, lift, FCR interval) replaced by
    the adjusted ones.

    The marginal impact stays in ``marginal_impact``; significance follows the adjusted q.
    """
    full = adjusted_columns(summary, dataset, filters, cache=cache)
    out = full.copy()
    out["marginal_impact"] = full["impact"]
    for column, adjusted in _SWAPPED.items():
        if adjusted in full:
            out[column] = full[adjusted]
        elif column in out:  # a marginal answer column with no adjusted twin: derived again from the swap
            out = out.drop(columns=column)
    out["significant"] = out["q_value"] < SIGNIFICANCE_LEVEL
    impact = out["impact"].to_numpy(dtype=np.float64)
    names = out["feature"].astype(str).to_numpy()
    order = np.lexsort((names, np.where(np.isnan(impact), np.inf, -impact)))
    return out.iloc[order].reset_index(drop=True)


def table_column_defs(base: list[dict], adjusted: bool) -> list[dict]:
    """The table's columns ``base``, with the impact columns headed and explained for the mode shown."""
    if not adjusted:
        return base
    renamed = {
        "impact": ("Adjusted impact", "Coefficient of the feature with its co-occurring features held fixed, in pp"),
        "interval": ("95% interval (adjusted)", "95% interval of the adjusted impact, in percentage points"),
        "p_value": ("p (adjusted)", "HC3 t test, or a permutation test for a feature with few images on a side"),
        "q_value": ("q (adjusted)", "Benjamini-Hochberg adjusted p-value over the features in the table"),
    }
    columns = []
    for column in base:
        key = column.get("colId", column["field"])
        if key in renamed:
            header, tip = renamed[key]
            column = {**column, "headerName": header, "headerTooltip": tip}
        columns.append(column)
    return columns


def impact_title(adjusted: bool) -> str:
    """The impact chart's heading."""
    return "Adjusted impact" if adjusted else "Impact"


def bars_hint(adjusted: bool) -> str:
    """The line under the bar charts' title: what they are sorted by."""
    by = (
        "adjusted impact (with the features each travels with held fixed)"
        if adjusted
        else "impact (CTR with minus without, in percentage points)"
    )
    return (
        f"Features ranked by evidence: those that help at the top, those that hurt at the bottom, each side "
        f"strongest first. Bars: the {by}. The two charts share rows. Hover a bar for its numbers."
    )


def _pp(value) -> str:
    return format_pp(value)


def _q(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f" (q {format_p(value)})"


def cooccurrence_rows(store, state: views.ViewState, feature: str) -> dict | None:
    """The panel's numbers for ``feature`` in the view ``state``: its impacts and its controls'.

    The feature's own impacts and q are the table's: the same weighting and prevalence filter,
    so BH runs over the same features. Its controls are every feature of the build at the view's
    threshold, whatever the prevalence filter, since a control may lie outside it; they and
    their marginal impacts cost milliseconds at any size. The adjusted numbers need the fit of
    every feature: in the adjusted view it is fitted (the view needs it anyway); in the marginal
    view they are shown only when the fit is cached or quick (``data.adjusted_cost.known_fit``), and
    ``adjusted`` says which: "shown", "computing" (another request is fitting it now), "deferred",
    or "unavailable" under impression weighting.
    None when the feature is not in the table or there is no data.
    """
    if not feature or not state.business or not state.source:
        return None
    try:
        dataset, _, _ = selected_dataset(store, state.business, state.source, state.build, state.filters)
    except UnknownDataset:
        return None
    if dataset.images_with_ctr == 0 or feature not in set(dataset.features):
        return None
    filters = state.filters.available_for(dataset.has_counts)
    table = feature_summary(dataset, filters, cache=store.cache)
    if feature not in set(table["feature"]):
        return None
    # Every feature at the view's threshold, min_n and weighting, whatever the prevalence: the
    # model's own terms (a control may lie outside the table's prevalence range).
    model = filters.replace(min_pct=0.0, max_pct=100.0)
    every = table if model == filters else feature_summary(dataset, model, cache=store.cache)
    fit, status = None, "unavailable"
    if filters.weighting == "mean":
        if state.adjusted:
            fit = fit_adjusted(dataset, filters.confidence, min_n=filters.min_n, cache=store.cache)
        else:
            fit = known_fit(dataset, filters.confidence, min_n=filters.min_n, cache=store.cache)
        if fit is not None:
            status = "shown"
        elif fit_running(dataset, filters.confidence, min_n=filters.min_n, cache=store.cache):
            status = "computing"
        else:
            status = "deferred"
    if fit is not None:
        table = adjusted_columns(table, dataset, filters, fit=fit)
        every = adjusted_columns(every, dataset, model, fit=fit)
    table, every = table.set_index("feature"), every.set_index("feature")
    controls = cooccurring(dataset, feature, model)
    controls = controls.reindex(controls["phi"].abs().sort_values(ascending=False).index)
    rows = []
    for name, phi, dropped in controls.itertuples(index=False):
        known = name in every.index
        rows.append(
            {
                "feature": str(name),
                "phi": float(phi),
                "impact": float(every.at[name, "impact"]) if known else math.nan,
                "adjusted_impact": _number(every, name, "adjusted_impact"),
                "dropped": dropped,
            }
        )
    return {
        "feature": feature,
        "impact": float(table.at[feature, "impact"]),
        "q_value": float(table.at[feature, "q_value"]),
        "adjusted_impact": _number(table, feature, "adjusted_impact"),
        "adjusted_q_value": _number(table, feature, "adjusted_q_value"),
        "adjusted": status,
        "controls": rows,
    }


def _number(frame: pd.DataFrame, row, column: str) -> float:
    return float(frame.at[row, column]) if column in frame.columns and row in frame.index else math.nan


def _adjusted_head(numbers: dict):
    """The head's adjusted part: the numbers, or in words why they are not here."""
    status = numbers.get("adjusted", "shown")
    if status == "deferred":
        return html.Span(f" · adjusted: {ADJUSTED_DEFERRED}", className="cooc-deferred")
    if status == "computing":
        return html.Span(f" · adjusted: {ADJUSTED_COMPUTING}", className="cooc-deferred")
    if status == "unavailable":
        return html.Span(" · adjusted: computed for the mean weighting only", className="cooc-deferred")
    return html.Span(f" · adjusted {_pp(numbers['adjusted_impact'])}{_q(numbers['adjusted_q_value'])}")


def cooccurrence_panel(numbers: dict | None):
    """The panel: the feature's two impacts, then the features it travels with (phi, both impacts)."""
    if numbers is None:
        return html.Div(PANEL_HINT, className="cooc-hint")
    head = html.Div(
        [
            html.Strong(numbers["feature"]),
            html.Span(f" marginal {_pp(numbers['impact'])}{_q(numbers['q_value'])}"),
            _adjusted_head(numbers),
        ],
        className="cooc-head",
    )
    controls = numbers["controls"]
    if not controls:
        return html.Div(
            [head, html.Div("It travels with no other feature (no |phi| of 0.05 or more).", className="cooc-hint")]
        )
    shown = controls[:PANEL_ROWS]
    adjusted = numbers.get("adjusted", "shown") == "shown"
    body = [
        html.Tr(
            [
                html.Td(row["feature"] + (" (dropped: collinear)" if row["dropped"] else "")),
                html.Td(signed(row["phi"], 2), className="num"),
                html.Td(_pp(row["impact"]), className="num"),
                html.Td(_pp(row["adjusted_impact"]) if adjusted else "…", className="num"),
            ]
        )
        for row in shown
    ]
    more = len(controls) - len(shown)
    table = html.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th("Travels with"),
                        html.Th("phi", className="num"),
                        html.Th("Marginal impact", className="num"),
                        html.Th("Adjusted impact", className="num"),
                    ]
                )
            ),
            html.Tbody(body),
        ],
        className="cooc-table",
    )
    note = f"and {more:,} more with weaker co-occurrence" if more > 0 else ""
    return html.Div([head, table, html.Div(note, className="cooc-hint") if note else None])


def cooccurrence_card() -> dbc.Card:
    """The card holding the co-occurrence panel."""
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("Travels with", className="card-title-text"),
                    html.Span(
                        "Features that co-occur with the selected one (|phi| >= 0.05): the controls of its "
                        "adjusted impact, strongest first.",
                        className="card-hint",
                    ),
                ]
            ),
            dbc.CardBody(
                [html.Div(cooccurrence_panel(None), id=ids.COOCCURRENCE), dcc.Store(id=ids.COOCCURRENCE_REDRAW)]
            ),
        ],
        className="shadow-sm mb-3",
    )


def hovered_feature(hover_data) -> str | None:
    """The feature of a hovered bar (its y category), or None."""
    try:
        return str(hover_data["points"][0]["y"])
    except (TypeError, KeyError, IndexError):
        return None


def register_adjusted_callbacks(app, store, settings) -> None:
    """The co-occurrence panel (the impact chart's heading follows the view: see callbacks)."""
    # The impact chart's heading is written each time the view is drawn. With a feature selected,
    # the browser raises the redraw count, and the panel follows the new mode, threshold or filter
    # (and shows the adjusted numbers once the Adjusted view has fitted them); with none, no
    # request: the view's draw is not followed by a round trip that changes nothing.
    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="redrawnWithSelection"),
        Output(ids.COOCCURRENCE_REDRAW, "data"),
        Input(ids.IMPACT_TITLE, "children"),
        State(ids.TABLE, "selectedRows"),
        State(ids.COOCCURRENCE_REDRAW, "data"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.COOCCURRENCE, "children"),
        Input(ids.TABLE, "selectedRows"),
        Input(ids.AVG_WITH, "hoverData"),
        Input(ids.IMPACT, "hoverData"),
        Input(ids.COOCCURRENCE_REDRAW, "data"),
        *control_states(),
        prevent_initial_call=True,
    )
    def _panel(selected, hover_with, hover_impact, _drawn, *controls):
        from dash import ctx

        trigger = ctx.triggered_id
        if trigger == ids.TABLE:
            feature = views.selected_feature(selected)
        elif trigger == ids.COOCCURRENCE_REDRAW:
            feature = views.selected_feature(selected)
            if feature is None:
                return no_update
        else:
            hovered = {ids.AVG_WITH: hover_with, ids.IMPACT: hover_impact}
            feature = hovered_feature(hovered.get(trigger))
            if feature is None:
                return no_update
        *values, date_from, date_to = controls
        state = views.state_from_controls(*values, date_from=date_from, date_to=date_to, min_n=settings.min_group_size)
        return cooccurrence_panel(cooccurrence_rows(store, state, feature))
