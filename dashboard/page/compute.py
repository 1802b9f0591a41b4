"""The page's view of one selection, computed: figures, hover lookup, table rows and the text around them.

``compute_view`` is the one function behind the charts and the table; tests call it directly.
It reads the store once per view, so that the components that render a ``View`` never do.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard import figures
from dashboard.api import downloads
from dashboard.page import views
from dashboard.page.adjusted import as_adjusted
from dashboard.page.dates import dataset_extent, window_text
from dashboard.page.hover import hover_lookup, image_urls
from dashboard.page.selection import selected_dataset
from dashboard.page.views import DEFAULT_FILTERS, DEFAULT_SHOWN
from data import refine
from data.analysis import feature_summary, scatter_points
from data.filters import Filters
from data.store import UnknownDataset

PLACEHOLDER_API = "http://HOST:PORT"
# Above this many points a paged scatter holds only its window's part (and a margin): Plotly's
# WebGL scatter processes every point of its trace at each draw, about 1.5 s for 632k points
# with software GL, where the window shows some 50k. The page draws the rest as the reader pages.
SCATTER_DRAW_LIMIT = 100_000
# Above this many rows a paged bar chart holds only its window's rows (and a margin): Plotly draws
# and styles every bar, whisker and mark of a trace, in the window or not (~0.35 s of a page of
# 1,000 features). The page draws the rest as the reader pages.
BAR_DRAW_LIMIT = 200
PROVISIONAL_NOTICE = {
    "title": "First look at this window: refining the p-values",
    "text": f"These p-values, q-values and intervals come from {refine.QUICK_RESAMPLES:,} random splits of the "
    "window's images; the full set is being drawn and the page updates by itself in a few seconds.",
}


@dataclass(frozen=True)
class View:
    """Everything the page shows for one selection; rendering it needs no store."""

    scatter: go.Figure
    avg_with: go.Figure  # CTR with the feature, with a mark at the CTR without it
    impact: go.Figure
    lookup: dict | None = None  # for the browser's hover linking; None without points
    summary: pd.DataFrame | None = None  # the rows charted
    table_summary: pd.DataFrame | None = None  # every feature passing the filters
    table: list[dict] = field(default_factory=list)  # table_summary as the table's rows
    weighting: str | None = None  # the one used: impressions fall back to the mean without counts
    notice: dict | None = None  # explains an empty or unusual state
    status: str = ""  # image, CTR and feature counts of the build
    window: str = ""  # the days whose clicks and impressions make the CTRs, in words ('' without dated metrics)
    shown_text: str = ""  # which features are charted, at which filters
    label_px: int | None = None  # width of the bar charts' feature labels
    business: str | None = None
    source: str | None = None
    build_id: int | None = None  # the build shown (the current one when the picked one is gone)
    received_at: str | None = None  # when that build arrived (ISO)
    adjusted: bool = False  # whether the impact shown is the adjusted one (only under the mean weighting)
    overall_ctr: float | None = None  # the CTR of all images with one, as the weighting computes it
    impressions: dict | None = None  # per helping or hurting feature, the impressions of its images
    has_data: bool = False  # False until a dataset with CTRs is selected: the charts and table hide
    pending: str | None = None  # the stored name of the full null a provisional answer waits for (data/refine.py)

    @property
    def fcr_level(self) -> float | None:
        """The level of the FCR-adjusted intervals of the table's summary (None when unknown)."""
        return views.fcr_level(self.table_summary)


def upload_command(business: str, source: str, *, kind: str = "features", api_base: str = PLACEHOLDER_API) -> str:
    """The curl command with which Jenkins sends a build of features (or a CTR set)."""
    return (
        f'curl -X PUT -H "Business: {business}" -H "Image-Source: {source}" '
        f'-H "Authorization: Bearer $INGEST_TOKEN" --data-binary @{kind}.json '
        f"{api_base.rstrip('/')}/api/{kind}"
    )


def select_shown(summary: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """The ``n`` highest- and ``n`` lowest-impact rows of a summary, in its order (all when n is 0)."""
    if not n or len(summary) <= 2 * n:
        return summary
    finite = summary[summary["impact"].notna()]
    if len(finite) <= 2 * n:
        return finite
    return pd.concat([finite.iloc[:n], finite.iloc[-n:]])


def _empty_view(message: str, *, notice: dict | None, **fields) -> View:
    return View(
        scatter=figures.empty_figure(message, title=""),
        avg_with=figures.empty_figure("", title="", height=260),
        impact=figures.empty_figure(message, title="", height=260),
        notice=notice,
        **fields,
    )


def overall_ctr(dataset, weighting: str) -> float | None:
    """The CTR of all images with one: their mean, or total clicks / total impressions."""
    known = dataset.has_ctr
    if not known.any():
        return None
    if weighting == "impressions" and dataset.has_counts:
        shown = float(np.nansum(dataset.impressions[known]))
        return float(np.nansum(dataset.clicks[known])) / shown if shown > 0 else None
    return float(np.nanmean(dataset.ctr[known]))


def feature_impressions(dataset, confidence: float, features) -> dict | None:
    """Per feature (of ``features``), the impressions of the images with a CTR in which it is present.

    None without counts. Reads only those features' columns (the verdict's, a few dozen).
    """
    if not dataset.has_counts or not len(features):
        return None
    cols = pd.Index(dataset.features, dtype=object).get_indexer(pd.Index(features, dtype=object))
    cols = cols[cols >= 0]
    known = dataset.has_ctr & np.isfinite(dataset.impressions)
    block = dataset.confidences[:, cols]
    present = (block.toarray() if hasattr(block, "toarray") else np.asarray(block)) > confidence
    totals = dataset.impressions[known] @ present[known]
    return {str(dataset.features[c]): int(t) for c, t in zip(cols, totals)}


def _no_data_view(api_base: str) -> View:
    return _empty_view(
        "No data yet.\nSend a build of image features to PUT /api/features.",
        notice={
            "title": "No data yet",
            "text": "The dashboard fills in as soon as a build of image features arrives. Jenkins sends one like this:",
            "command": upload_command("acme", "vision", api_base=api_base),
            "after": "Business and Image-Source name the dataset. Then send each image's CTR the same "
            "way to /api/ctr; the page picks both up without a reload.",
        },
    )


def _no_build_view(business: str, source: str, api_base: str) -> View:
    return _empty_view(
        f"No build for {business} / {source}.",
        notice={
            "title": f"No build for {business} / {source} yet",
            "text": "Send one like this:",
            "command": upload_command(business, source, api_base=api_base),
        },
    )


def _received_at(store, business: str, source: str, build_id: int) -> str | None:
    try:
        builds = store.builds(business, source)
    except UnknownDataset:  # deleted meanwhile
        return None
    times = builds.loc[builds["build_id"] == build_id, "received_at"]
    return str(times.iloc[0]) if len(times) else None


def compute_view(
    store,
    business: str | None,
    source: str | None,
    build=None,
    filters: Filters = DEFAULT_FILTERS,
    *,
    shown: int | None = DEFAULT_SHOWN,
    adjusted: bool = False,
    image_url_template: str | None = None,
    api_base: str = PLACEHOLDER_API,
    stale_build: int | None = None,
) -> View:
    """The page's view of one selection: the verdict's summary, the figures, the hover lookup, the table and text.

    The numbers come from ``feature_summary`` and ``scatter_points`` under ``filters``, the same
    functions as ``/api/summary``, with the store's analysis cache. ``stale_build``: a build the page's URL pinned that is no longer stored
    (the page opened at the current one instead); the notice says so.
    """
    if not business or not source:
        return _no_data_view(api_base)
    try:
        dataset, build_id, gone = selected_dataset(store, business, source, build, filters)
    except UnknownDataset:
        return _no_build_view(business, source, api_base)
    gone = gone if gone is not None else stale_build
    notice = (
        None if gone is None else {"title": f"Build #{gone} is no longer stored", "text": "Showing the current build."}
    )
    n_images, n_features = len(dataset.images), len(dataset.features)
    build_fields = {
        "business": business,
        "source": source,
        "build_id": build_id,
        "received_at": _received_at(store, business, source, build_id),
        "status": f"{n_images:,} images · {dataset.images_with_ctr:,} with CTR · {n_features:,} features",
        "window": window_text(filters, dataset_extent(store, business, source)),
    }
    if dataset.images_with_ctr == 0:
        return _empty_view(
            f"No CTR yet for {business} / {source}.\nThe charts need each image's click-through rate.",
            notice={
                "title": f"No CTR yet for {business} / {source}",
                "text": f"This build has {n_images:,} images and {n_features:,} features, but no image has a "
                "click-through rate yet. Send the CTRs like this:",
                "command": upload_command(business, source, kind="ctr", api_base=api_base),
            },
            **build_fields,
        )

    summary, filters, adjusted, note, pending = view_summary(dataset, filters, adjusted=adjusted, cache=store.cache)
    notice = notice or note
    build_fields.update(weighting=filters.weighting, adjusted=adjusted, has_data=True, pending=pending)
    if summary.empty:
        message = (
            f"No feature is present in {filters.min_pct:g}–{filters.max_pct:g}% of the images at confidence "
            f"above {filters.confidence:g}.\n"
            "Lower the confidence threshold or widen the prevalence range."
        )
        return _empty_view(
            message,
            notice={"title": "No feature left", "text": message.replace("\n", " ")},
            table_summary=summary,
            **build_fields,
        )
    charted = select_shown(summary, shown)
    significant = summary.loc[summary["verdict"].isin(["helps", "hurts"]), "feature"]
    return View(
        **_charts(store, dataset, charted, filters, business, source, image_url_template),
        summary=charted,
        table_summary=summary,
        table=views.table_rows(summary),
        notice=notice,
        shown_text=_shown_text(len(charted), len(summary), filters, adjusted),
        label_px=figures.label_width(charted["feature"]),
        overall_ctr=overall_ctr(dataset, filters.weighting),
        impressions=feature_impressions(dataset, filters.confidence, significant),
        **build_fields,
    )


def view_summary(dataset, filters: Filters, *, adjusted: bool, cache=None):
    """The summary the page shows: marginal or adjusted, with its answer columns, ranked by evidence.

    Returns ``(summary, filters, adjusted, notice, pending)``: the filters and mode actually shown
    (impression weighting falls back to the mean without counts; the adjusted impact exists
    under the mean weighting only) and a notice saying why when they differ from those asked;
    ``pending``: the full null a new window's provisional answer waits for (``data/refine.py``), or None.
    """
    notice = None
    wanted, filters = filters, filters.available_for(dataset.has_counts)
    if filters != wanted:
        notice = {
            "title": "Impression weighting is not available here",
            "text": "This dataset's CTRs came without clicks and impressions; showing the mean of the images' CTRs.",
        }
    summary = feature_summary(dataset, filters, cache=cache)
    pending = refine.pending(summary)
    if pending is not None:
        notice = notice or PROVISIONAL_NOTICE
    if adjusted and filters.weighting != "mean":
        adjusted = False
        notice = notice or {
            "title": "Adjusted impact is computed for the mean of images only",
            "text": "Showing the marginal impact: switch CTR weighting to the mean of images to adjust it.",
        }
    elif adjusted and not summary.empty:
        summary = as_adjusted(summary, dataset, filters, cache=cache)
    return views.evidence_order(summary), filters, bool(adjusted), notice, pending


def _shown_text(k: int, total: int, filters: Filters, adjusted: bool) -> str:
    shown = (
        f"Showing all {k:,} features"
        if k == total
        else f"Showing the top {k // 2:,} and bottom {k - k // 2:,} of {total:,} features by evidence"
    )
    return (
        f"{shown} present in {filters.min_pct:g}–{filters.max_pct:g}% of images at confidence above "
        f"{filters.confidence:g} · CTR: {views.WEIGHTING_LABELS[filters.weighting].lower()}"
        f"{' · impact adjusted for co-occurring features' if adjusted else ''}."
    )


def _charts(store, dataset, charted: pd.DataFrame, filters: Filters, business, source, image_url_template) -> dict:
    """The figures of the charted features and the browser's hover lookup."""
    points = scatter_points(dataset, filters, features=charted["feature"])
    label_px = figures.label_width(charted["feature"])
    # The scatter fits its card: beyond figures.SCATTER_WINDOW features it pages rather than widens.
    scatter = figures.scatter_figure(
        points,
        feature_order=charted["feature"],
        means=charted.set_index("feature")["avg_ctr_with"],
        overall_ctr=overall_ctr(dataset, filters.weighting),
        title="",
        draw_limit=SCATTER_DRAW_LIMIT,
    )
    counts = None
    if dataset.has_counts:
        counts = {
            str(img): (int(c), int(i))
            for img, c, i in zip(dataset.images, dataset.clicks, dataset.impressions)
            if np.isfinite(i)
        }
    # A fresh token per view: the browser forgets its last hovered image when figures are replaced,
    # and draws the rest of a scatter drawn in part only from its own view's lookup.
    token = uuid.uuid4().hex
    drawn_in_part = bool(scatter.data) and scatter.data[0].meta is not None
    if drawn_in_part:
        scatter.data[0].meta = {**scatter.data[0].meta, "token": token}
    lookup = hover_lookup(
        points,
        charted,
        token=token,
        images=dataset.images,
        # A stored thumbnail wins over IMAGE_URL_TEMPLATE's picture.
        urls_for=lambda imgs: image_urls(
            image_url_template, business, source, imgs, stored=store.thumbnail_tags(business, source)
        ),
        counts=counts,
        drawn_in_part=drawn_in_part,
    )
    return {
        "scatter": scatter,
        # The two bar charts page together (assets/window.js keeps them on the scatter's window),
        # so only the impact chart, which carries the feature labels, draws the page slider.
        "impact": figures.impact_figure(charted, title="", label_px=label_px, draw_limit=BAR_DRAW_LIMIT),
        "avg_with": figures.bar_figure(
            charted,
            value="avg_ctr_with",
            title="",
            feature_labels=False,
            pager=False,
            baseline="avg_ctr_without",
            draw_limit=BAR_DRAW_LIMIT,
        ),
        "lookup": lookup,
    }


def download_csv(store, state: views.ViewState, kind: str) -> dict | None:
    """The ``summary`` or ``points`` CSV of the view the controls show, as dcc.Download takes it.

    The rows are every feature passing the filters (not only those charted), computed by the
    same function as the page; the file name names the dataset, build and filters. None when
    there is nothing to download (no dataset, no CTR).
    """
    if not state.business or not state.source:
        return None
    try:
        dataset, build_id, _ = selected_dataset(store, state.business, state.source, state.build, state.filters)
    except UnknownDataset:
        return None
    if dataset.images_with_ctr == 0:
        return None
    state = views.with_weighting_available(state, dataset.has_counts)
    filename, content = downloads.csv_download(
        dataset,
        business=state.business,
        source=state.source,
        build_id=build_id,
        filters=state.filters,
        kind=kind,
        cache=store.cache,
    )
    return {"content": content, "filename": filename, "type": "text/csv"}
