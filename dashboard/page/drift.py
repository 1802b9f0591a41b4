"""The page's build comparison: the "Compare with build" picker, the drift chart and the table's drift columns.

``compute_drift`` is the plain function behind them (tests call it directly); the numbers come
from ``data.drift.feature_drift``, the same function as ``/api/drift``. The comparison is off
until a build is picked; the picked build is *from*, the build shown is *to*.
"""

from __future__ import annotations

from dataclasses import dataclass

import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update

from dashboard.figures import label_width
from dashboard.figures.drift import drift_figure, select_by_change
from dashboard.page import ids
from dashboard.page.components import BAR_CONFIG, loading_graph
from dashboard.page.selection import build_label, parse_build, selected_dataset
from dashboard.page.table import TABLE_COLUMN_DEFS, number_column
from dashboard.page.views import CURRENT_BUILD
from data.drift import feature_drift, image_overlap
from data.filters import Filters
from data.store import UnknownBuild, UnknownDataset

HIDDEN = {"display": "none"}
# The table's drift fields, prefixed so they never clash with the summary's own ci/p/q.
DRIFT_FIELDS = {
    "impact_from": "drift_impact_from",
    "change": "drift_change",
    "ci_low": "drift_ci_low",
    "ci_high": "drift_ci_high",
    "p_value": "drift_p",
    "q_value": "drift_q",
    "n_flipped": "drift_flipped",
}
UNCHANGED = "drift_unchanged"  # the feature kept the same images and labels: its change is 0 by construction


@dataclass(frozen=True)
class DriftView:
    """The comparison for one selection; ``drift`` is None when it is off or cannot be computed."""

    from_build: int | None = None
    to_build: int | None = None
    drift: pd.DataFrame | None = None
    figure: go.Figure | None = None
    note: str | None = None  # why the comparison is empty or unusual
    caption: str = ""  # what the chart shows
    shared_images: int = 0
    shared_images_with_ctr: int = 0

    @property
    def on(self) -> bool:
        """Whether a build to compare with is picked."""
        return self.from_build is not None


def compare_options(builds: pd.DataFrame, shown_build: int | None) -> list[dict]:
    """Every stored build but the one shown, newest first, labelled like the build picker."""
    return [
        {"label": build_label(row), "value": int(row.build_id)}
        for row in builds.itertuples(index=False)
        if int(row.build_id) != shown_build
    ]


def compare_choice(store, business, source, build, compare) -> tuple[list[dict], int | None]:
    """The picker's options for the pair's build ``build`` (every other stored build), and ``compare``
    when it is still one of them, else None (off)."""
    try:
        builds = store.builds(business, source)
    except UnknownDataset:
        return [], None
    shown = parse_build(build)
    if build == CURRENT_BUILD or shown is None:
        shown = int(builds["build_id"].iloc[0])
    options = compare_options(builds, shown)
    return options, compare if compare in [o["value"] for o in options] else None


def compare_control(value: int | None, options: list[dict] | None = None) -> html.Div:
    """The picker, off (empty) by default, with the options the page opens with (``compare_choice``)."""
    return html.Div(
        [
            dbc.Label("Compare with build", html_for=ids.COMPARE, className="control-label"),
            dcc.Dropdown(id=ids.COMPARE, options=options or [], value=value, clearable=True, placeholder="Off"),
            html.Div("Shows how each feature's impact changed since then.", className="control-help"),
        ],
        className="control",
    )


def drift_card() -> dbc.Card:
    """The drift chart's card, hidden while the comparison is off."""
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("Change of impact between builds", className="card-title-text"),
                    html.Span(
                        "Did a feature's impact move? Images in both builds are compared with themselves "
                        "(clustered by image), so a re-featurized build is tested on the labels that changed. "
                        "Hover a point for both impacts and the images whose label flipped.",
                        className="card-hint",
                    ),
                ]
            ),
            dbc.CardBody(
                [
                    html.Div(id=ids.DRIFT_NOTE),
                    html.Div(loading_graph(ids.DRIFT, BAR_CONFIG), id=ids.DRIFT_FRAME, className="drift-frame"),
                ]
            ),
        ],
        id=ids.DRIFT_CARD,
        className="shadow-sm mb-3",
        style=HIDDEN,
    )


def _note(view: DriftView, before, after) -> str | None:
    a, b = f"#{view.from_build}", f"#{view.to_build}"
    if before.images_with_ctr == 0 or after.images_with_ctr == 0:
        missing = a if before.images_with_ctr == 0 else b
        return f"No image of build {missing} has a CTR, so there is no impact to compare."
    if view.from_build == view.to_build:
        return f"Build {a} is compared with itself: every change is 0."
    if view.shared_images == 0:
        return (
            f"Builds {a} and {b} share no images: each change compares different images, so it cannot "
            "tell a featurizer change from a change in the images themselves."
        )
    if view.shared_images_with_ctr == 0:
        return (
            f"The {view.shared_images:,} images both builds share have no CTR: the comparison rests on images "
            "in only one of the builds."
        )
    return None


def compute_drift(
    store,
    business: str | None,
    source: str | None,
    build_id: int | None,
    compare,
    filters: Filters,
    *,
    shown: int | None = None,
) -> DriftView:
    """The comparison of the shown build (``build_id``) with the picked one (``compare``) under ``filters``."""
    from_build = parse_build(compare)
    if from_build is None or not business or not source or build_id is None:
        return DriftView()
    try:
        store.resolve_build(business, source, from_build)
        before = selected_dataset(store, business, source, from_build, filters)[0]
        after = selected_dataset(store, business, source, build_id, filters)[0]
    except (UnknownBuild, UnknownDataset):
        return DriftView(from_build, build_id, note=f"Build #{from_build} is no longer stored.")
    drift = feature_drift(before, after, filters.available_for(before.has_counts and after.has_counts))
    shared, shared_with_ctr = image_overlap(before, after)
    # Labels on the same images, unchanged, cannot have moved: charting hundreds of zeros would
    # bury the few that did.
    unchanged = (drift["change"] == 0) & (drift["n_flipped"] == 0)
    moved = drift[~unchanged]
    charted = select_by_change(moved, shown)
    figure = drift_figure(
        charted,
        from_label=f"build #{from_build}",
        to_label=f"build #{build_id}",
        title="",
        label_px=label_width(charted["feature"]) if len(charted) else None,
        empty_message="No feature moved: both builds have the same images with the same labels at these settings."
        if len(drift) and unchanged.all()
        else "No feature has an impact in both builds at these settings.",
    )
    caption = f"{len(moved):,} of {len(drift):,} features moved between build #{from_build} and build #{build_id}"
    if unchanged.any():
        caption += f"; {int(unchanged.sum()):,} kept the same images and labels and are not charted"
    if len(charted) < len(moved.dropna(subset=["change"])):
        caption += f". Charted: the {len(charted) // 2:,} largest rises and falls"
    view = DriftView(from_build, build_id, drift, figure, None, caption + ".", shared, shared_with_ctr)
    return DriftView(
        from_build, build_id, drift, figure, _note(view, before, after), view.caption, shared, shared_with_ctr
    )


def table_rows_with_drift(rows: list[dict], view: DriftView) -> list[dict]:
    """The summary table's rows with the drift fields of their feature added (None where it has none)."""
    if view.drift is None:
        return rows
    by_feature = view.drift.set_index("feature")
    out = []
    for row in rows:
        extra = dict.fromkeys(DRIFT_FIELDS.values())
        extra[UNCHANGED] = False
        if row["feature"] in by_feature.index:
            found = by_feature.loc[row["feature"]]
            for source, target in DRIFT_FIELDS.items():
                value = found[source]
                extra[target] = None if pd.isna(value) else value.item() if hasattr(value, "item") else value
            # Same images, same labels: nothing moved, whatever the group sizes. Said once, the same
            # way for every such feature (not an interval of zeros here and a dash there).
            if found["change"] == 0 and found["n_flipped"] == 0:
                extra.update(
                    {UNCHANGED: True, "drift_ci_low": None, "drift_ci_high": None, "drift_p": None, "drift_q": None}
                )
        out.append({**row, **extra})
    return out


def table_columns(view: DriftView) -> list[dict]:
    """The summary table's columns, with the drift columns after them while the comparison is on."""
    if view.drift is None:
        return TABLE_COLUMN_DEFS
    since = f"build #{view.from_build}"
    return TABLE_COLUMN_DEFS + [
        number_column("drift_impact_from", f"Impact in {since}", "formatImpact", tooltip=f"The impact in {since}"),
        number_column(
            "drift_change",
            "Change",
            "formatImpact",
            tooltip=f"Impact now minus impact in {since}, in percentage points",
            cellClassRules={"impact-pos": "params.value > 0", "impact-neg": "params.value < 0"},
        ),
        {
            "field": "drift_ci_low",
            "colId": "drift_interval",
            "headerName": "Change 95% interval",
            "headerTooltip": "95% interval of the change, clustered by image (sorts by its lower end); "
            "'unchanged' where the feature kept the same images and labels",
            "type": "rightAligned",
            "valueFormatter": {
                "function": f"formatInterval(params.data, 'drift_ci_low', 'drift_ci_high', '{UNCHANGED}')"
            },
            "minWidth": 200,
            "filter": False,
        },
        number_column("drift_p", "Change p", "formatP", width=90, tooltip="Two-sided p-value of the change"),
        number_column(
            "drift_q", "Change q", "formatP", width=90, tooltip="Benjamini-Hochberg over the features compared"
        ),
        number_column(
            "drift_flipped",
            "Images flipped",
            "formatCount",
            tooltip=f"Images in both builds whose presence of the feature differs from {since}",
        ),
    ]


def drift_outputs(view: DriftView, rows: list[dict]) -> tuple:
    """What the page shows for ``view``: chart, card style, chart frame style, note, table rows and columns."""
    if not view.on:
        return go.Figure(), HIDDEN, HIDDEN, None, rows, TABLE_COLUMN_DEFS
    note = [
        dbc.Alert(view.note, color="warning", className="mb-2 py-2") if view.note else None,
        html.P(view.caption, className="text-muted small mb-1") if view.caption else None,
    ]
    figure = view.figure if view.figure is not None else go.Figure()
    frame = {} if view.figure is not None else HIDDEN
    return figure, {}, frame, note, table_rows_with_drift(rows, view), table_columns(view)


def register_drift_callbacks(app, store) -> None:
    """Fill the picker with the pair's other builds; drop a picked build that is gone or now shown.

    The page opens with them (``build_layout``): a callback at load would hold back the view's,
    which reads the picker, by a round trip.
    """

    @app.callback(
        Output(ids.COMPARE, "options"),
        Output(ids.COMPARE, "value"),
        Input(ids.SOURCE, "value"),
        Input(ids.BUILD, "value"),
        Input(ids.VERSION, "data"),
        State(ids.BUSINESS, "value"),
        State(ids.COMPARE, "value"),
        prevent_initial_call=True,
    )
    def _compare_options(source, build, _version, business, compare):
        options, value = compare_choice(store, business, source, build, compare)
        return options, no_update if value == compare else value
