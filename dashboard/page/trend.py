"""The trend card: the selected feature's impact day by day, week by week or month by month.

Shown for a dataset with dated metrics. Each point is what the summary says of the feature on
that period's days (``data.trend.feature_trend``, the function behind GET /api/trend), over the
days of the page's window; it follows the feature selected anywhere on the page and every filter.
"""

from __future__ import annotations

from dataclasses import dataclass

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, html

from dashboard.figures.trend import trend_figure, trend_text
from dashboard.page import ids, views
from dashboard.page.components import BAR_CONFIG, loading_graph
from dashboard.page.dates import HIDDEN, dataset_extent
from dashboard.page.dependencies import view_controls
from dashboard.page.radios import button_radios
from dashboard.page.selection import selected_dataset
from data.store import UnknownBuild, UnknownDataset
from data.trend import PROVISIONAL, TrendTooLong, UnknownFeature, feature_trend

DEFAULT_PERIOD = "week"
# The page offers weeks and months: a day-by-day trend draws a permutation null for every day of
# the window on first view (GET /api/trend?period=day serves it to scripts).
PAGE_PERIODS = ("week", "month")
PERIOD_OPTIONS = [{"label": f"By {p}", "value": p} for p in PAGE_PERIODS]
PROVISIONAL_HINT = (
    " Periods looked at for the first time show intervals from 999 random splits of their images while the"
    " full ones are drawn."
)
NO_FEATURE_HINT = "Select a feature (in the answer, a chart or the table) to see its impact over time."


@dataclass(frozen=True)
class TrendView:
    """What the trend card shows: hidden without dated metrics, a hint until a feature is selected."""

    shown: bool = False
    title: str = "Trend"
    hint: str = NO_FEATURE_HINT
    figure: go.Figure | None = None
    text: str = ""


def trend_card(shown: bool = False) -> dbc.Card:
    """The card, shown for a dataset with dated metrics (``shown``; the date control's callback keeps it so)."""
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("Trend", id=ids.TREND_TITLE, className="card-title-text"),
                    html.Span(id=ids.TREND_HINT, className="card-hint"),
                    button_radios(
                        ids.TREND_PERIOD,
                        PERIOD_OPTIONS,
                        DEFAULT_PERIOD,
                        class_name="trend-period ms-auto",
                        **{"aria-label": "Trend period"},
                    ),
                ],
                className="d-flex flex-wrap align-items-center gap-2",
            ),
            dbc.CardBody(loading_graph(ids.TREND, BAR_CONFIG)),
        ],
        id=ids.TREND_CARD,
        className="shadow-sm mb-3",
        style=None if shown else HIDDEN,
    )


def compute_trend(store, state: views.ViewState, feature: str | None, period: str) -> TrendView:
    """The trend of ``feature`` over the days of ``state``'s window (every day without one)."""
    try:
        extent = dataset_extent(store, state.business, state.source)
    except UnknownDataset:
        extent = None
    if extent is None:
        return TrendView()
    if not feature:
        return TrendView(shown=True)
    filters = state.filters
    first, last = max(filters.date_from or extent.first, extent.first), min(filters.date_to or extent.last, extent.last)
    if first > last:
        return TrendView(shown=True, title=f"Trend of {feature}", hint="No data in the chosen days.")

    def dataset_for(window):
        return selected_dataset(
            store,
            state.business,
            state.source,
            state.build,
            filters.replace(date_from=window.start, date_to=window.end),
        )[0]

    try:
        trend = feature_trend(dataset_for, feature, first, last, period, filters, cache=store.cache)
    except TrendTooLong as exc:
        return TrendView(shown=True, title=f"Trend of {feature}", hint=str(exc).capitalize())
    except (UnknownFeature, UnknownBuild, UnknownDataset):
        return TrendView(shown=True, hint=NO_FEATURE_HINT)
    return TrendView(
        shown=True,
        title=f"Trend of {feature}",
        hint=f"Impact per {period} with its 95 % interval; below, the images with the feature behind each point."
        + (PROVISIONAL_HINT if trend.attrs.get(PROVISIONAL) else ""),
        figure=trend_figure(trend, feature, period=period),
        text=trend_text(trend, feature, period),
    )


def trend_outputs(view: TrendView) -> dict:
    from dash import no_update

    return {
        "title": view.title,
        "hint": view.hint,
        "figure": view.figure if view.figure is not None else no_update,
        "frame": None if view.figure is not None else HIDDEN,
        "text": view.text,
    }


def register_trend_callbacks(app, store, settings) -> None:
    """The card follows the selected feature, the period and the view's controls."""

    @app.callback(
        output={
            "title": Output(ids.TREND_TITLE, "children"),
            "hint": Output(ids.TREND_HINT, "children"),
            "figure": Output(ids.TREND, "figure"),
            "frame": Output(ids.TREND, "style"),
            "text": Output(ids.CHART_TEXT[ids.TREND], "children"),
        },
        inputs={
            "selected": Input(ids.TABLE, "selectedRows"),
            "period": Input(ids.TREND_PERIOD, "value"),
            **view_controls(
                names=("business", "source", "build", "confidence", "sparsity", "weighting", "date_from", "date_to")
            ),
            "version": Input(ids.VERSION, "data"),
            # The view's window refined (data/refine.py): its periods' full nulls were queued with it.
            "refined": Input(ids.REFINED, "data"),
        },
        prevent_initial_call=True,
    )
    def _trend(
        selected, period, business, source, build, confidence, sparsity, weighting, date_from, date_to, version, refined
    ):
        state = views.state_from_controls(
            business,
            source,
            build,
            confidence,
            sparsity,
            weighting,
            None,
            date_from=date_from,
            date_to=date_to,
            min_n=settings.min_group_size,
        )
        period = period if period in PAGE_PERIODS else DEFAULT_PERIOD
        return trend_outputs(compute_trend(store, state, views.selected_feature(selected), period))
