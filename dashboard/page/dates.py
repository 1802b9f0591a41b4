"""The date range of a dataset with dated metrics: its control, its presets and its words.

A dataset whose CTRs came as clicks and impressions per image and day (``PUT /api/metrics``) is
read over a window of days: each image's CTR is its clicks over its impressions in the window.
The control offers presets (the last 7, 30 or 90 days of the data, or every day) and a range
picker; the URL holds the window as ``from`` and ``to``, the same days /api/summary takes. The
presets count back from the last day with data, not from today: a feed that lags a day still
shows a full week. A dataset with one CTR per image has no days: the control hides and any
window in the URL is set aside (the read API refuses one there instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from dash import dcc, html

from dashboard.page import ids
from dashboard.page.radios import button_radios
from data.filters import Filters
from data.window import RECENT_DAYS, recent

ALL_DAYS = "all"
CUSTOM = "custom"
PRESET_DAYS = RECENT_DAYS  # their null tables are drawn when the metrics land (data/writes.py)
PRESET_OPTIONS = [
    *({"label": f"{n} days", "value": str(n)} for n in PRESET_DAYS),
    {"label": "All", "value": ALL_DAYS},
]
WINDOW_HELP = "CTR from the clicks and impressions of these days; presets count back from the last day with data."
HIDDEN = {"display": "none"}
# The window's two ends as the callbacks read them, in the order state_from_controls takes them.
WINDOW_PROPS = ((ids.DATE_RANGE, "start_date"), (ids.DATE_RANGE, "end_date"))


@dataclass(frozen=True)
class Extent:
    """The first and last day (ISO) of a dataset's dated metrics."""

    first: str
    last: str

    @classmethod
    def of(cls, metric_set) -> Extent | None:
        """The extent of a stored metric set (``data.metrics_queries.MetricSet``), None without days."""
        if metric_set is None or not metric_set.first_day or not metric_set.last_day:
            return None
        return cls(str(metric_set.first_day)[:10], str(metric_set.last_day)[:10])

    @property
    def days(self) -> int:
        return (date.fromisoformat(self.last) - date.fromisoformat(self.first)).days + 1


def dataset_extent(store, business, source) -> Extent | None:
    """The days of the pair's dated metrics, None for a pair with a CTR set (or nothing selected)."""
    if not business or not source:
        return None
    return Extent.of(store.metric_set(business, source))


def preset_range(preset, extent: Extent | None) -> tuple[str | None, str | None]:
    """``(from, to)`` of a preset over ``extent``: the last n days of the data, or (None, None) for every day."""
    if extent is None or preset in (None, ALL_DAYS, CUSTOM):
        return None, None
    window = recent(int(preset), extent.first, extent.last)
    return window.start, window.end


def matching_preset(date_from, date_to, extent: Extent | None) -> str:
    """The preset that ``date_from``..``date_to`` stands for, else CUSTOM."""
    if not date_from and not date_to:
        return ALL_DAYS
    for n in PRESET_DAYS:
        if (date_from, date_to) == preset_range(str(n), extent):
            return str(n)
    return CUSTOM


def page_window(filters: Filters, extent: Extent | None) -> Filters:
    """``filters`` with the window set aside when the dataset has no dated metrics (the page is lenient)."""
    if extent is None and (filters.date_from or filters.date_to):
        return filters.replace(date_from=None, date_to=None)
    return filters


def _day_text(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%-d %b %Y")


def window_text(filters: Filters, extent: Extent | None) -> str:
    """The window in words for the header: 'CTR over 3 Sep – 1 Dec 2026 (90 days)'; '' without dated metrics."""
    if extent is None:
        return ""
    start = filters.date_from or extent.first
    end = filters.date_to or extent.last
    start, end = max(start, extent.first), min(end, extent.last)
    if start > end:
        return f"CTR over {_day_text(filters.date_from or extent.first)} – {_day_text(filters.date_to or extent.last)}: no data"
    days = (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
    span = f"{_day_text(start)} – {_day_text(end)}" if start != end else _day_text(start)
    every = " (every day)" if not filters.date_from and not filters.date_to else ""
    return f"CTR over {span}, {days:,} day{'s' if days != 1 else ''}{every}"


def date_control(filters: Filters, extent: Extent | None) -> html.Div:
    """The date range control: presets and a range picker, shown only for a dataset with dated metrics."""
    label_id = f"{ids.DATE_RANGE}-label"
    return html.Div(
        [
            html.Div("Date range", id=label_id, className="control-label form-label"),
            button_radios(
                ids.DATE_PRESET,
                PRESET_OPTIONS,
                matching_preset(filters.date_from, filters.date_to, extent),
                items_class_name="date-presets",
                **{"aria-labelledby": label_id},
            ),
            html.Div(
                [
                    html.Label("From", htmlFor=ids.DATE_FROM_INPUT, className="visually-hidden"),
                    html.Label("To", htmlFor=ids.DATE_TO_INPUT, className="visually-hidden"),
                    dcc.DatePickerRange(
                        id=ids.DATE_RANGE,
                        start_date=filters.date_from,
                        end_date=filters.date_to,
                        start_date_id=ids.DATE_FROM_INPUT,
                        end_date_id=ids.DATE_TO_INPUT,
                        min_date_allowed=extent.first if extent else None,
                        max_date_allowed=extent.last if extent else None,
                        initial_visible_month=extent.last if extent else None,
                        start_date_placeholder_text="First day",
                        end_date_placeholder_text="Last day",
                        first_day_of_week=1,
                        display_format="D MMM YY",
                        clearable=True,
                        updatemode="bothdates",
                    ),
                ],
                className="date-range",
            ),
            html.Div(WINDOW_HELP, className="control-help"),
        ],
        id=ids.DATE_CONTROL,
        className="control",
        style=None if extent else HIDDEN,
    )


def _day_or_none(value) -> str | None:
    return value[:10] if isinstance(value, str) and value else None


def date_outputs(extent: Extent | None, preset, start, end, trigger) -> dict:
    """What the date control shows after ``trigger`` (the preset, the picker, or a dataset change):
    the window's ends and the preset they match, clipped to the extent's days."""
    if trigger == ids.DATE_PRESET:
        if preset == CUSTOM:
            return {}
        start, end = preset_range(preset, extent)
    elif extent is None:
        start = end = None
    return {
        "style": None if extent else HIDDEN,
        "trend": None if extent else HIDDEN,
        "min": extent.first if extent else None,
        "max": extent.last if extent else None,
        "month": (end or extent.last) if extent else None,
        "start": start,
        "end": end,
        "preset": matching_preset(start, end, extent),
    }


def register_date_callbacks(app, store) -> None:
    """The date control follows the dataset (shown with its days, hidden without) and keeps its
    presets and its picker in step; the view's callbacks read the picker's two days."""
    from dash import Input, Output, ctx, no_update

    from data.store import UnknownDataset

    @app.callback(
        output={
            "style": Output(ids.DATE_CONTROL, "style"),
            "trend": Output(ids.TREND_CARD, "style"),
            "min": Output(ids.DATE_RANGE, "min_date_allowed"),
            "max": Output(ids.DATE_RANGE, "max_date_allowed"),
            "month": Output(ids.DATE_RANGE, "initial_visible_month"),
            "start": Output(ids.DATE_RANGE, "start_date"),
            "end": Output(ids.DATE_RANGE, "end_date"),
            "preset": Output(ids.DATE_PRESET, "value"),
        },
        inputs={
            "business": Input(ids.BUSINESS, "value"),
            "source": Input(ids.SOURCE, "value"),
            "version": Input(ids.VERSION, "data"),
            "preset": Input(ids.DATE_PRESET, "value"),
            "start": Input(*WINDOW_PROPS[0]),
            "end": Input(*WINDOW_PROPS[1]),
        },
        prevent_initial_call=True,
    )
    def _dates(business, source, version, preset, start, end):
        try:
            extent = dataset_extent(store, business, source)
        except UnknownDataset:
            extent = None
        start, end = _day_or_none(start), _day_or_none(end)
        wanted = date_outputs(extent, preset, start, end, ctx.triggered_id)
        current = {"preset": preset, "start": start, "end": end}
        # Only what changes: an unchanged day would redraw the view for nothing.
        return {
            key: no_update
            if key in current and current[key] == wanted.get(key, current[key])
            else wanted.get(key, no_update)
            for key in ("style", "trend", "min", "max", "month", "start", "end", "preset")
        }
