"""What the pickers offer and which stored build a selection stands for, checked against the store.

The dataset and build pickers' options, the build a picker value names (falling back to the
current build when the picked one is gone), and the view a page URL opens at.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pandas as pd
from dash import no_update

from dashboard.page import views
from dashboard.page.views import CURRENT_BUILD, ViewState
from data.store import UnknownBuild, UnknownDataset, WindowUnavailable

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


def build_label(row) -> str:
    """'#7 · 25 Nov 19:24 · jenkins-42': the build's number, the time it arrived and its tag (when sent)."""
    parts = [f"#{row.build_id}"]
    try:
        parts.append(datetime.fromisoformat(str(row.received_at)).strftime("%d %b %H:%M"))
    except ValueError:
        pass
    tag = getattr(row, "build_tag", None)
    if isinstance(tag, str) and tag:
        parts.append(tag)
    return " · ".join(parts)


def build_options(builds: pd.DataFrame) -> list[dict]:
    """The stored builds, newest first; the newest one has the value CURRENT_BUILD so it follows new builds.

    Each is labelled with its time and tag, so that builds of the same day are told apart.
    """
    options = []
    for i, row in enumerate(builds.itertuples(index=False)):
        if i == 0:
            options.append({"label": f"{build_label(row)} · current", "value": CURRENT_BUILD})
        else:
            options.append({"label": build_label(row), "value": int(row.build_id)})
    return options


def choose(options: list[dict], value, default=None):
    """``value`` when it is still among ``options``, else ``default``, else the first option's."""
    values = [o["value"] for o in options]
    if value in values:
        return value
    if default in values:
        return default
    return values[0] if values else None


# -- the selected build ------------------------------------------------------------------------


def parse_build(value) -> int | None:
    """The build id a build picker value stands for (None for the current build)."""
    if value in (None, "", CURRENT_BUILD):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def selected_dataset(store, business, source, build, filters=None):
    """The picked build's dataset, or the current build's when the picked one is no longer stored.

    Returns ``(dataset, build_id, gone)``: ``gone`` is the picked build id that fell back, else
    None. Raises UnknownDataset when the pair has no build at all. A pair with dated metrics
    gets its CTRs over the window of ``filters`` (a ``Filters``; None: every day); a pair with
    one CTR per image has no days, and the page sets the window aside there.
    """
    window = filters.window if filters is not None else None
    # One snapshot: a build pruned by a concurrent write cannot vanish between resolving and reading it.
    try:
        return store.load_build(business, source, parse_build(build), fall_back=True, window=window)
    except WindowUnavailable:
        return store.load_build(business, source, parse_build(build), fall_back=True)


def dataset_has_counts(store, business, source, build) -> bool | None:
    """Whether the selected build's CTRs came with clicks and impressions (None when no dataset is selected)."""
    if not business or not source:
        return None
    try:
        return selected_dataset(store, business, source, build)[0].has_counts
    except UnknownDataset:
        return None


def poll_version(store, known: str | None):
    """The store's version when it differs from ``known``, else ``no_update`` (nothing redraws)."""
    current = store.version()
    return no_update if current == known else current


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


def stale_build(requested: ViewState, resolved: ViewState) -> int | None:
    """The build ``requested`` pinned that ``resolve_view`` replaced by the current one, else None."""
    if requested.build == CURRENT_BUILD or resolved.build != CURRENT_BUILD:
        return None
    if (requested.business, requested.source) != (resolved.business, resolved.source):
        return None  # another dataset altogether: its build ids say nothing about this one
    return requested.build


def stale_build_shown(stale: dict | None, state: ViewState) -> int | None:
    """The gone build to explain while the page still shows what it fell back to, else None.

    ``stale`` is the page's STALE_BUILD store; once the build or dataset is picked, it no longer applies.
    """
    if not stale or state.build != CURRENT_BUILD:
        return None
    if (stale.get("business"), stale.get("source")) != (state.business, state.source):
        return None
    return stale.get("build")


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
