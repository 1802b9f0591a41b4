"""The gallery: the images with (or without) the selected feature, highest CTR first, a page at a time.

The feature is the one selected in the table (a row, a bar of the charts, the URL's
``feature=``); the images are exactly those ``data.gallery.feature_gallery`` lists for the
dataset, build and confidence threshold the controls show, the function behind GET /api/gallery,
read through the same store (and so the same checks) as the page's other callbacks. The server
sends one page of plain records; ``assets/gallery.js`` draws them as tiles (``<img
loading="lazy">``, names as text, never markup), moves between tiles with the arrow keys and
links a hovered or focused tile to its points in the scatter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import dash_bootstrap_components as dbc
import pandas as pd
from dash import ClientsideFunction, Input, Output, State, ctx, dcc, html

from dashboard.page import ids, views
from dashboard.page.dependencies import view_controls
from dashboard.page.hover import image_urls
from dashboard.page.selection import selected_dataset
from data.errors import UnknownBuild, UnknownDataset
from data.gallery import UnknownFeature, feature_gallery, gallery_average

PAGE_SIZE = 48
SIDES = ids.GALLERY_SIDES
MODES = {"with": ("with",), "without": ("without",), "both": SIDES}
DEFAULT_MODE = "with"
MODE_OPTIONS = [
    {"label": "With the feature", "value": "with"},
    {"label": "Without it", "value": "without"},
    {"label": "Side by side", "value": "both"},
]
HINT = "Select a feature (a row of the table or a bar of the charts) to see its images, highest CTR first."


@dataclass(frozen=True)
class GallerySide:
    """One page of the images on one side of a feature."""

    side: str
    offset: int
    total: int
    images: list[dict] = field(default_factory=list)  # image, ctr, clicks, impressions, confidence, url
    average: float | None = None  # the side's average CTR, as the summary states it (avg_ctr_with / _without)


@dataclass(frozen=True)
class GalleryView:
    """What the gallery shows: the feature, the sides shown, or a message instead."""

    feature: str | None = None
    sides: dict[str, GallerySide] = field(default_factory=dict)
    message: str = HINT


def page_offset(offset, total: int, limit: int = PAGE_SIZE) -> int:
    """``offset`` as the start of a page within ``total`` images (0 when there are none)."""
    try:
        offset = int(offset)
    except (TypeError, ValueError):
        offset = 0
    last = max(0, (total - 1) // limit * limit)
    return min(max(0, offset // limit * limit), last)


def stepped_offsets(offsets: dict | None, side: str, step: int, limit: int = PAGE_SIZE) -> dict[str, int]:
    """``offsets`` with ``side`` moved ``step`` pages (clamped later, once the total is known)."""
    moved = {s: int((offsets or {}).get(s) or 0) for s in SIDES}
    moved[side] = max(0, moved[side] + step * limit)
    return moved


def _count(value):
    return None if value is None or value is pd.NA else int(value)


def _finite(value):
    return float(value) if value is not None and math.isfinite(value) else None


def gallery_side(
    dataset,
    business: str,
    source: str,
    feature: str,
    side: str,
    confidence: float,
    offset,
    *,
    tags_for,
    template: str | None = None,
    limit: int = PAGE_SIZE,
    weighting: str = "mean",
) -> GallerySide:
    """One page of ``feature_gallery`` as plain records with each image's picture URL (or None).

    ``tags_for(names)`` maps the page's images to their stored thumbnails' etags; an image
    without one gets ``template``'s URL when that is set, else None (the tile shows its name).
    The side's average CTR is taken over all its images under ``weighting``, as the summary's.
    """
    frame = feature_gallery(dataset, feature, confidence, side)
    total = len(frame)
    offset = page_offset(offset, total, limit)
    page = frame.iloc[offset : offset + limit]
    names = [str(n) for n in page["image"]]
    tags = tags_for(names) if names else {}
    urls = image_urls(template, business, source, names, tags) or [None] * len(names)
    images = [
        {
            "image": name,
            "ctr": _finite(ctr),
            "clicks": _count(clicks),
            "impressions": _count(impressions),
            "confidence": _finite(conf),
            "url": url,
        }
        for name, ctr, clicks, impressions, conf, url in zip(
            names,
            page["ctr"].tolist(),
            page["clicks"].tolist(),
            page["impressions"].tolist(),
            page["confidence"].tolist(),
            urls,
        )
    ]
    return GallerySide(side, offset, total, images, _finite(gallery_average(frame, weighting)))


def gallery_view(
    store,
    state: views.ViewState,
    feature: str | None,
    mode: str,
    offsets: dict | None,
    *,
    template: str | None = None,
    limit: int = PAGE_SIZE,
) -> GalleryView:
    """The gallery of ``feature`` in the dataset, build and threshold of ``state``, one page per side shown."""
    if not feature:
        return GalleryView()
    if not state.business or not state.source:
        return GalleryView(feature, message="No data yet: the gallery shows the images once a build is stored.")
    try:
        dataset, _, _ = selected_dataset(store, state.business, state.source, state.build, state.filters)
    except (UnknownDataset, UnknownBuild):
        return GalleryView(feature, message="No build of this dataset is stored.")

    def tags_for(names):
        return store.thumbnail_tags(state.business, state.source, names)

    weighting = state.filters.available_for(dataset.has_counts).weighting

    try:
        sides = {
            side: gallery_side(
                dataset,
                state.business,
                state.source,
                feature,
                side,
                state.filters.confidence,
                (offsets or {}).get(side, 0),
                tags_for=tags_for,
                template=template,
                limit=limit,
                weighting=weighting,
            )
            for side in MODES.get(mode, MODES[DEFAULT_MODE])
        }
    except UnknownFeature:
        return GalleryView(feature, message=f"The build shown has no feature “{feature}”.")
    return GalleryView(feature, sides, message="")


def side_heading(feature: str, side: GallerySide) -> str:
    """'With text: 96 images, average CTR 0.84%, highest first' (the summary's n_with and avg_ctr_with)."""
    n = f"{side.total:,} image{'' if side.total == 1 else 's'}"
    if side.average is not None:
        n += f", average CTR {side.average * 100:.2f}%"
    order = "highest first" if side.average is not None else "highest CTR first"
    return f"{'With' if side.side == 'with' else 'Without'} {feature}: {n}, {order}"


def range_text(side: GallerySide, limit: int = PAGE_SIZE) -> str:
    """'1–48 of 1,234' (or 'none' for an empty side)."""
    if not side.total:
        return "none"
    return f"{side.offset + 1:,}–{min(side.offset + limit, side.total):,} of {side.total:,}"


def gallery_outputs(view: GalleryView, limit: int = PAGE_SIZE) -> dict:
    """The gallery's component properties for ``view`` (the tiles go to assets/gallery.js as data)."""
    out = {
        "title": f"Images of {view.feature}" if view.feature else "Images of a feature",
        "hint": view.message,
        "both": "gallery-columns both" if len(view.sides) == 2 else "gallery-columns",
        "offsets": {s: (view.sides[s].offset if s in view.sides else 0) for s in SIDES},
        "tiles": {
            "feature": view.feature,
            "sides": {
                s: {
                    "list": ids.gallery_id(s, "tiles"),
                    "images": view.sides[s].images if s in view.sides else [],
                    "offset": view.sides[s].offset if s in view.sides else 0,
                }
                for s in SIDES
            },
        },
    }
    for s in SIDES:
        side = view.sides.get(s)
        out[f"{s}_hidden"] = side is None
        out[f"{s}_heading"] = side_heading(view.feature, side) if side else ""
        out[f"{s}_range"] = range_text(side, limit) if side else ""
        out[f"{s}_prev"] = side is None or side.offset <= 0
        out[f"{s}_next"] = side is None or side.offset + limit >= side.total
    return out


def _side_column(side: str) -> html.Section:
    nav_label = "Pages of the images " + ("with the feature" if side == "with" else "without the feature")
    return html.Section(
        [
            html.H3(id=ids.gallery_id(side, "heading"), className="gallery-heading"),
            # Filled by assets/gallery.js: one focusable tile per image.
            html.Ul(id=ids.gallery_id(side, "tiles"), className="gallery-grid"),
            html.Nav(
                [
                    html.Button(
                        "‹ Previous",
                        id=ids.gallery_id(side, "prev"),
                        className="btn btn-outline-secondary btn-sm",
                        disabled=True,
                        type="button",
                    ),
                    html.Span(id=ids.gallery_id(side, "range"), className="gallery-range", **{"aria-live": "polite"}),
                    html.Button(
                        "Next ›",
                        id=ids.gallery_id(side, "next"),
                        className="btn btn-outline-secondary btn-sm",
                        disabled=True,
                        type="button",
                    ),
                ],
                className="gallery-pager",
                **{"aria-label": nav_label},
            ),
        ],
        id=ids.gallery_id(side, "column"),
        className=f"gallery-column {side}",
        hidden=True,
    )


def gallery_card() -> dbc.Card:
    """The gallery's card, empty until a feature is selected (the URL's ``feature=`` selects its table row at load)."""
    switch = html.Fieldset(
        [
            html.Legend("Show images", className="gallery-legend"),
            dbc.RadioItems(
                id=ids.GALLERY_SIDE,
                options=MODE_OPTIONS,
                value=DEFAULT_MODE,
                inline=True,
                className="gallery-switch",
            ),
        ],
        className="gallery-fieldset",
    )
    return dbc.Card(
        [
            dbc.CardHeader(
                [
                    html.H2("Images of a feature", id=ids.GALLERY_TITLE, className="card-title-text"),
                    html.Span(
                        "Hover or focus an image to see its points in the scatter; arrow keys move between images.",
                        className="card-hint",
                    ),
                    switch,
                ]
            ),
            dbc.CardBody(
                [
                    html.P(HINT, id=ids.GALLERY_HINT, className="gallery-hint text-muted small"),
                    html.Div([_side_column(s) for s in SIDES], id=ids.GALLERY_COLUMNS, className="gallery-columns"),
                    dcc.Store(id=ids.GALLERY_OFFSETS, data={s: 0 for s in SIDES}),
                    dcc.Store(id=ids.GALLERY_TILES),
                ]
            ),
        ],
        id=ids.GALLERY_CARD,
        className="shadow-sm mb-3",
    )


def register_gallery_callbacks(app, store, settings) -> None:
    """The gallery follows the selected feature, the controls, the switch and its pagers."""
    pagers = {(s, step): ids.gallery_id(s, name) for s in SIDES for step, name in ((-1, "prev"), (1, "next"))}
    output = {
        "title": Output(ids.GALLERY_TITLE, "children"),
        "hint": Output(ids.GALLERY_HINT, "children"),
        "both": Output(ids.GALLERY_COLUMNS, "className"),
        "offsets": Output(ids.GALLERY_OFFSETS, "data"),
        "tiles": Output(ids.GALLERY_TILES, "data"),
    }
    for s in SIDES:
        output[f"{s}_hidden"] = Output(ids.gallery_id(s, "column"), "hidden")
        output[f"{s}_heading"] = Output(ids.gallery_id(s, "heading"), "children")
        output[f"{s}_range"] = Output(ids.gallery_id(s, "range"), "children")
        output[f"{s}_prev"] = Output(ids.gallery_id(s, "prev"), "disabled")
        output[f"{s}_next"] = Output(ids.gallery_id(s, "next"), "disabled")

    @app.callback(
        output=output,
        inputs={
            "selected": Input(ids.TABLE, "selectedRows"),
            "mode": Input(ids.GALLERY_SIDE, "value"),
            **view_controls(names=("business", "source", "build", "confidence", "weighting", "date_from", "date_to")),
            "version": Input(ids.VERSION, "data"),
            "pages": [Input(button, "n_clicks") for button in pagers.values()],
        },
        state={"offsets": State(ids.GALLERY_OFFSETS, "data")},
        prevent_initial_call=True,
    )
    def _gallery(
        selected, mode, business, source, build, confidence, weighting, date_from, date_to, version, pages, offsets
    ):
        state = views.state_from_controls(
            business, source, build, confidence, None, weighting, None, date_from=date_from, date_to=date_to
        )
        step = next(((s, d) for (s, d), button in pagers.items() if button == ctx.triggered_id), None)
        # A new feature, view or switch starts each side at its first page; a pager moves its side.
        offsets = stepped_offsets(offsets, *step) if step else None
        view = gallery_view(
            store, state, views.selected_feature(selected), mode, offsets, template=settings.image_url_template
        )
        return gallery_outputs(view)

    # The tiles are drawn in the browser from the page's records (assets/gallery.js).
    app.clientside_callback(
        ClientsideFunction(namespace="creative_gallery", function_name="render"),
        Input(ids.GALLERY_TILES, "data"),
        prevent_initial_call=True,
    )
    # Clicking a bar selects its feature (its table row), which the charts, the URL and the gallery follow.
    app.clientside_callback(
        ClientsideFunction(namespace="creative_gallery", function_name="selectClicked"),
        Output(ids.TABLE, "selectedRows", allow_duplicate=True),
        *(Input(chart, "clickData") for chart in ids.BAR_CHARTS),
        prevent_initial_call=True,
    )
