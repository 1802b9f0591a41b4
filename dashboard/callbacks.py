"""Callbacks: thin wiring from the controls to the plain functions that compute the page's view.

``compute_view`` turns a selection into the four figures, the hover lookup and the text around
them; tests call it directly. Hover linking runs in the browser (``assets/dashboard.js``), so
mouse moves never reach the server.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
from dash import ClientsideFunction, Input, Output, State, html, no_update

from dashboard import figures, ids, views
from dashboard.layout import (
    CURRENT_BUILD,
    DEFAULT_SPARSITY,
    HOVER_HINT,
    build_options,
    business_options,
    choose,
    format_time,
    source_options,
)
from dashboard.views import DEFAULT_CONFIDENCE, DEFAULT_SHOWN
from data.analysis import DEFAULT_MIN_GROUP_SIZE, feature_summary, scatter_points
from data.store import UnknownBuild, UnknownDataset

PLACEHOLDER_API = "http://HOST:PORT"
# Wider than this many features, the scatter scrolls sideways so that every label stays legible.
SCATTER_MAX_FIT = 90
SCATTER_PX_PER_FEATURE = 14


# -- pure helpers ----------------------------------------------------------------------------


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


def parse_build(value) -> int | None:
    """The build id a build picker value stands for (None for the current build)."""
    if value in (None, "", CURRENT_BUILD):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def image_urls(template: str | None, business: str, source: str, images) -> list[str] | None:
    """Each image's picture URL from ``template`` ({business}, {source}, {image}, each URL-quoted)."""
    if not template:
        return None
    b, s = quote(str(business), safe=""), quote(str(source), safe="")
    try:
        return [template.format(business=b, source=s, image=quote(str(i), safe="")) for i in images]
    except (KeyError, IndexError, ValueError):
        return None


def hover_lookup(points: pd.DataFrame, shown: pd.DataFrame, *, token: str, urls_for=None, counts=None) -> dict:
    """What the browser needs to link a hovered point to its image without asking the server.

    ``point_image[i]`` is the image of scatter point *i*; each image lists the codes (bar rows
    and scatter x) of its features with their confidences. ``urls_for(images)`` gives picture
    URLs; ``counts`` maps image to (clicks, impressions).
    """
    codes = points["feature"].cat.codes.to_numpy(dtype=np.int64)
    image_of_point, images = pd.factorize(points["image"], sort=False)
    ctr = points["ctr"].to_numpy(dtype=np.float64)
    first = np.zeros(len(images), dtype=np.int64)
    first[image_of_point[::-1]] = np.arange(len(points))[::-1]
    order = np.lexsort((codes, image_of_point))
    bounds = np.cumsum(np.bincount(image_of_point, minlength=len(images)))[:-1]
    conf = np.round(points["confidence"].to_numpy(dtype=np.float64), 4)
    lookup = {
        "token": token,
        "features": shown["feature"].astype(str).tolist(),
        "impact": [None if not np.isfinite(v) else v * 100.0 for v in shown["impact"].to_numpy(dtype=np.float64)],
        "images": [str(i) for i in images],
        "ctr": (ctr[first] * 100.0).tolist(),
        "point_image": image_of_point.tolist(),
        "image_codes": [c.tolist() for c in np.split(codes[order], bounds)],
        "image_conf": [c.tolist() for c in np.split(conf[order], bounds)],
        "urls": urls_for(list(images)) if urls_for else None,
    }
    if counts is not None:
        lookup["clicks"] = [counts.get(i, (None, None))[0] for i in images]
        lookup["impressions"] = [counts.get(i, (None, None))[1] for i in images]
    return lookup


def _empty_view(message: str, *, notice: dict | None, status: str = "") -> dict:
    return {
        "scatter": figures.empty_figure(message, title=""),
        "avg_with": figures.empty_figure(message, title="", height=260),
        "impact": figures.empty_figure("", title="", height=260),
        "avg_without": figures.empty_figure("", title="", height=260),
        "lookup": None,
        "summary": None,
        "notice": notice,
        "status": status,
        "scatter_width": None,
        "label_px": None,
        "table": [],
        "table_summary": None,
        "weighting": None,
    }


def compute_view(
    store,
    business: str | None,
    source: str | None,
    build=None,
    confidence: float = DEFAULT_CONFIDENCE,
    sparsity=tuple(DEFAULT_SPARSITY),
    *,
    shown: int | None = DEFAULT_SHOWN,
    min_n: int = DEFAULT_MIN_GROUP_SIZE,
    weighting: str = "mean",
    image_url_template: str | None = None,
    api_base: str = PLACEHOLDER_API,
) -> dict:
    """The page's view of one selection: the four figures, the hover lookup, the table and text.

    Returns a dict with ``scatter``, ``avg_with``, ``impact``, ``avg_without`` (figures),
    ``lookup`` (for the browser's hover linking, None when there are no points), ``summary``
    (the rows charted), ``table_summary`` and ``table`` (every feature passing the filters, as
    a frame and as the table's rows), ``weighting`` (the one used: impression weighting falls
    back to the mean without counts), ``notice`` (None, or a dict explaining an empty or
    unusual state), ``status`` and ``scatter_width``. The numbers come from ``feature_summary``
    and ``scatter_points``, the same functions as ``/api/summary``.
    """
    if not business or not source:
        return _empty_view(
            "No data yet.\nSend a build of image features to PUT /api/features.",
            notice={
                "title": "No data yet",
                "text": "The dashboard fills in as soon as a build of image features arrives. "
                "Jenkins sends one like this:",
                "command": upload_command("acme", "vision", api_base=api_base),
                "after": "Business and Image-Source name the dataset. Then send each image's CTR the same "
                "way to /api/ctr; the page picks both up without a reload.",
            },
        )
    try:
        dataset, _, gone = selected_dataset(store, business, source, build)
    except UnknownDataset:
        return _empty_view(
            f"No build for {business} / {source}.",
            notice={
                "title": f"No build for {business} / {source} yet",
                "text": "Send one like this:",
                "command": upload_command(business, source, api_base=api_base),
            },
        )
    notice = (
        None if gone is None else {"title": f"Build #{gone} is no longer stored", "text": "Showing the current build."}
    )
    n_images, n_features = len(dataset.images), len(dataset.features)
    status = f"{n_images:,} images · {dataset.images_with_ctr:,} with CTR · {n_features:,} features"
    if dataset.images_with_ctr == 0:
        return _empty_view(
            f"No CTR yet for {business} / {source}.\nThe charts need each image's click-through rate.",
            notice={
                "title": f"No CTR yet for {business} / {source}",
                "text": f"This build has {n_images:,} images and {n_features:,} features, but no image has a "
                "click-through rate yet. Send the CTRs like this:",
                "command": upload_command(business, source, kind="ctr", api_base=api_base),
            },
            status=status,
        )

    if weighting == "impressions" and not dataset.has_counts:
        weighting = "mean"
        notice = notice or {
            "title": "Impression weighting is not available here",
            "text": "This dataset's CTRs came without clicks and impressions; showing the mean of the images' CTRs.",
        }
    low, high = (float(v) for v in (sparsity or (0, 100)))
    summary = feature_summary(dataset, float(confidence), low, high, min_n=min_n, weighting=weighting)
    if summary.empty:
        message = (
            f"No feature is present in {low:g}–{high:g}% of the images at confidence above {confidence:g}.\n"
            "Lower the confidence threshold or widen the prevalence range."
        )
        view = _empty_view(
            message,
            notice={"title": "No feature left", "text": message.replace("\n", " ")},
            status=status,
        )
        view.update(table_summary=summary, weighting=weighting)
        return view
    charted = select_shown(summary, shown)
    points = scatter_points(dataset, float(confidence), features=charted["feature"])

    k = len(charted)
    width = None if k <= SCATTER_MAX_FIT else 160 + SCATTER_PX_PER_FEATURE * k
    scatter = figures.scatter_figure(
        points,
        feature_order=charted["feature"],
        means=charted.set_index("feature")["avg_ctr_with"],
        title="",
        width=width,
    )
    label_px = figures.label_width(charted["feature"])
    with_without = (
        np.concatenate(
            [charted["avg_ctr_with"].to_numpy(dtype=np.float64), charted["avg_ctr_without"].to_numpy(dtype=np.float64)]
        )
        * 100.0
    )
    finite = with_without[np.isfinite(with_without)]
    shared_range = [0, float(finite.max()) * 1.2 if len(finite) and finite.max() > 0 else 1.0]

    counts = None
    if dataset.has_counts:
        counts = {
            str(img): (int(c), int(i))
            for img, c, i in zip(dataset.images, dataset.clicks, dataset.impressions)
            if np.isfinite(i)
        }
    # A fresh token per view: the browser forgets its last hovered image when figures are replaced.
    token = uuid.uuid4().hex
    lookup = hover_lookup(
        points,
        charted,
        token=token,
        urls_for=(lambda imgs: image_urls(image_url_template, business, source, imgs)) if image_url_template else None,
        counts=counts,
    )
    shown_text = (
        f"Showing all {k:,} features"
        if k == len(summary)
        else f"Showing the top {k // 2:,} and bottom {k - k // 2:,} of {len(summary):,} features"
    )
    return {
        "scatter": scatter,
        "avg_with": figures.bar_figure(
            charted, value="avg_ctr_with", title="", x_range=shared_range, label_px=label_px
        ),
        "impact": figures.impact_figure(charted, title="", feature_labels=False),
        "avg_without": figures.bar_figure(
            charted, value="avg_ctr_without", title="", x_range=shared_range, feature_labels=False
        ),
        "lookup": lookup,
        "summary": charted,
        "table_summary": summary,
        "table": views.table_rows(summary),
        "weighting": weighting,
        "notice": notice,
        "status": status,
        "shown_text": f"{shown_text} present in {low:g}–{high:g}% of images at confidence above {confidence:g}"
        f" · CTR: {views.WEIGHTING_LABELS[weighting].lower()}.",
        "scatter_width": width,
        "label_px": label_px,
    }


def download_csv(store, state: views.ViewState, kind: str, *, min_n: int = DEFAULT_MIN_GROUP_SIZE) -> dict | None:
    """The ``summary`` or ``points`` CSV of the view the controls show, as dcc.Download takes it.

    The rows are every feature passing the filters (not only those charted), computed by the
    same function as the page; the file name names the dataset, build and filters. None when
    there is nothing to download (no dataset, no CTR).
    """
    if not state.business or not state.source:
        return None
    try:
        dataset, build_id, _ = selected_dataset(store, state.business, state.source, state.build)
    except UnknownDataset:
        return None
    if dataset.images_with_ctr == 0:
        return None
    state = views.with_weighting_available(state, dataset.has_counts)
    summary = feature_summary(
        dataset, state.confidence, state.min_pct, state.max_pct, min_n=min_n, weighting=state.weighting
    )
    if kind == "summary":
        content = views.summary_csv(summary)
    else:
        content = views.points_csv(scatter_points(dataset, state.confidence, features=summary["feature"]))
    filename = views.download_filename(
        state.business, state.source, build_id, state.confidence, state.min_pct, state.max_pct, state.weighting, kind
    )
    return {"content": content, "filename": filename, "type": "text/csv"}


def dataset_has_counts(store, business, source, build) -> bool | None:
    """Whether the selected build's CTRs came with clicks and impressions (None when no dataset is selected)."""
    if not business or not source:
        return None
    try:
        return selected_dataset(store, business, source, build)[0].has_counts
    except UnknownDataset:
        return None


def selected_dataset(store, business, source, build):
    """The picked build's dataset, or the current build's when the picked one is no longer stored.

    Returns ``(dataset, build_id, gone)``: ``gone`` is the picked build id that fell back, else
    None. Raises UnknownDataset when the pair has no build at all.
    """
    wanted = parse_build(build)
    try:
        build_id, gone = store.resolve_build(business, source, wanted), None
    except UnknownBuild:
        build_id, gone = store.resolve_build(business, source), wanted
    return store.dataset(business, source, build_id), build_id, gone


def table_hint(view: dict) -> str:
    """The line above the table: how many features it lists, and how to link a row to the charts."""
    summary = view.get("table_summary")
    if summary is None:
        return ""  # no data yet: the notice above the charts says what to do
    if summary.empty:
        return "No feature passes the filters."
    n, charted = len(summary), len(view["summary"]) if view.get("summary") is not None else 0
    scope = f"All {n:,} features passing the filters" + ("" if charted == n else f" ({charted:,} of them charted)")
    return f"{scope}. Click a row to highlight its feature in the charts; filter by name in the Feature column."


def poll_version(store, known: str | None):
    """The store's version when it differs from ``known``, else ``no_update`` (nothing redraws)."""
    current = store.version()
    return no_update if current == known else current


# -- rendering of the text around the charts ---------------------------------------------------


def notice_component(notice: dict | None):
    """An alert explaining an empty or unusual state (None when all is well)."""
    if not notice:
        return None
    body = [
        html.H4(notice["title"], className="alert-heading h6 fw-semibold mb-1"),
        html.P(notice.get("text", ""), className="mb-1"),
    ]
    if notice.get("command"):
        body.append(html.Pre(html.Code(notice["command"]), className="command mb-0"))
    if notice.get("after"):
        body.append(html.P(notice["after"], className="small mt-2 mb-0"))
    return dbc.Alert(body, color="info" if notice.get("command") else "warning", className="mb-3")


def status_component(view: dict, store, business, source, build):
    """The build and counts line of the top bar."""
    if not view.get("status"):
        return None
    parts = [html.Span(f"{business} / {source}", className="status-dataset")]
    try:
        builds = store.builds(business, source)
        bid = parse_build(build)
        row = builds.iloc[0] if bid is None else builds[builds["build_id"] == bid].iloc[0]
        parts.append(html.Span(f"Build #{row['build_id']} · {format_time(row['received_at'])}"))
    except (UnknownDataset, IndexError):
        pass
    parts.append(html.Span(view["status"]))
    lines = [html.Div(parts, className="status-line")]
    if view.get("shown_text"):
        lines.append(html.Div(view["shown_text"], className="status-line status-shown"))
    return lines


# -- wiring ------------------------------------------------------------------------------------


def register_callbacks(app, store, settings) -> None:
    """Wire the controls to the charts, the poll to the pickers, and hover linking in the browser."""

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
        Output(ids.SCATTER, "style"),
        Output(ids.BAR_PANEL, "style"),
        Output(ids.TABLE, "rowData"),
        Output(ids.TABLE, "style"),
        Output(ids.TABLE_HINT, "children"),
        Input(ids.BUSINESS, "value"),
        Input(ids.SOURCE, "value"),
        Input(ids.BUILD, "value"),
        Input(ids.CONFIDENCE, "value"),
        Input(ids.SPARSITY, "value"),
        Input(ids.SHOWN, "value"),
        Input(ids.WEIGHTING, "value"),
        Input(ids.VERSION, "data"),
    )
    def _redraw(business, source, build, confidence, sparsity, shown, weighting, _version):
        from flask import request

        # The same reading of the controls as the URL and the downloads, so all three agree.
        state = views.state_from_controls(business, source, build, confidence, sparsity, weighting, shown)
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
            image_url_template=settings.image_url_template,
            api_base=request.host_url if request else PLACEHOLDER_API,
        )
        hint = html.P(HOVER_HINT, className="text-muted small mb-0")
        width = view["scatter_width"]
        return (
            view["scatter"],
            view["avg_with"],
            view["impact"],
            view["avg_without"],
            view["lookup"],
            hint,
            notice_component(view["notice"]),
            status_component(view, store, business, source, build),
            {"width": f"{width}px"} if width else {},
            {"--label-width": f"{view['label_px'] or 0}px"},
            view["table"],
            views.table_style(len(view["table"])),
            table_hint(view),
        )

    @app.callback(
        Output(ids.URL, "search"),
        *(Input(c, "value") for c in ids.CONTROLS),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def _write_url(business, source, build, confidence, sparsity, weighting, shown, search):
        # One way only, controls -> URL: the URL is read once, when the layout is built, so
        # writing it here never feeds back into the controls.
        query = views.view_query(
            views.state_from_controls(business, source, build, confidence, sparsity, weighting, shown)
        )
        return no_update if query == search else query

    def _download(kind):
        def send(_clicks, business, source, build, confidence, sparsity, weighting, shown):
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

    app.clientside_callback(
        ClientsideFunction(namespace="creative", function_name="linkHover"),
        Output(ids.SCATTER, "figure", allow_duplicate=True),
        Output(ids.AVG_WITH, "figure", allow_duplicate=True),
        Output(ids.IMPACT, "figure", allow_duplicate=True),
        Output(ids.AVG_WITHOUT, "figure", allow_duplicate=True),
        Output(ids.HOVER_PANEL, "children", allow_duplicate=True),
        Input(ids.SCATTER, "hoverData"),
        State(ids.LOOKUP, "data"),
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
