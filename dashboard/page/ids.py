"""Component ids of the page, in one place so that layout, callbacks and tests agree."""

# Controls
BUSINESS = "business"
SOURCE = "image-source"
BUILD = "build"
CONFIDENCE = "confidence"
SPARSITY = "sparsity"
SHOWN = "features-shown"
WEIGHTING = "weighting"
WEIGHTING_HELP = "weighting-help"
WEIGHTING_TIP = "weighting-tip"
WEIGHTING_IMPRESSIONS_LABEL = "weighting-impressions-label"  # the tooltip's target
COMPARE = "compare-build"  # a build to compare the shown one with (dashboard/page/drift.py)
CONTROLS = (BUSINESS, SOURCE, BUILD, CONFIDENCE, SPARSITY, WEIGHTING, SHOWN, COMPARE)
IMPACT_MODE = "impact-mode"  # marginal / adjusted impact in the impact chart and the table
# The window of days of a dataset with dated metrics (dashboard/page/dates.py)
DATE_CONTROL = "date-control"  # hidden for a dataset with one CTR per image
DATE_PRESET = "date-preset"  # last 7 / 30 / 90 days, all
DATE_RANGE = "date-range"
DATE_FROM_INPUT = "date-from"
DATE_TO_INPUT = "date-to"
SLIDERS = (CONFIDENCE, SPARSITY)  # their moves replace the URL's history entry instead of adding one

# The page's address: its query string holds the view (see dashboard/views.py); this store
# holds the query the controls last wrote, which assets/dashboard.js puts in the address bar.
URL = "url"
# The build the page's URL pinned when it is no longer stored (the page opened at the current one),
# with the query that replaces that URL in the address bar; None when the URL named nothing gone.
STALE_BUILD = "stale-build"

SPARSITY_VALUE = "sparsity-value"  # the prevalence range in words, beside the slider's label
CONFIDENCE_VALUE = "confidence-value"

# The answer
VERDICT = "verdict-panel"  # helps / hurts / unclear, each feature a button that selects it
VERDICT_CARD = "verdict-card"
FEATURE_AT_LOAD = "feature-at-load"  # the URL's feature=, selected once the table has its rows

# Charts
SCATTER = "scatter-chart"
AVG_WITH = "avg-with-chart"  # CTR with the feature (bars) and without it (a baseline mark per row)
IMPACT = "impact-chart"
CHARTS = (SCATTER, IMPACT, AVG_WITH)
BAR_CHARTS = (IMPACT, AVG_WITH)  # the first one carries the feature labels and the page slider
CHART_TEXT = {
    SCATTER: "scatter-text",
    IMPACT: "impact-text",
    AVG_WITH: "avg-with-text",
    "trend-chart": "trend-text",
}  # each chart's words
EVIDENCE = "evidence"  # the cards holding the charts, hidden while there is no data

# Text around the charts
STATUS = "view-status"
NOTICE = "view-notice"
HOVER_PANEL = "hover-panel"
HOVER_HINT = "hover-hint"  # the panel's hint, hidden while a point is hovered
HOVER_CARD = "hover-card-slot"  # filled by assets/dashboard.js with the hovered image
SCATTER_FRAME = "scatter-frame"
BAR_PANEL = "bar-panel"  # its --label-width lines the three bar charts up
BAR_CARD = "bar-card"
IMPACT_KEY = "impact-key"  # what the impact bars' colours mean
IMPACT_TITLE = "impact-title"  # "Impact" or "Adjusted impact"
BAR_HINT = "bar-hint"  # what the bar charts are sorted by
COOCCURRENCE = "cooccurrence-panel"  # the features the selected or hovered one travels with
# A count the browser raises when a view is drawn while a feature is selected: the panel then
# follows the view, and with nothing selected no request is made.
COOCCURRENCE_REDRAW = "cooccurrence-redraw"

# The gallery of the selected feature's images (dashboard/page/gallery.py, assets/gallery.js)
GALLERY_CARD = "gallery-card"
GALLERY_TITLE = "gallery-title"
GALLERY_SIDE = "gallery-side"  # with / without / both side by side
GALLERY_HINT = "gallery-hint"  # what to do, or why there is nothing to show
GALLERY_COLUMNS = "gallery-columns"
GALLERY_OFFSETS = "gallery-offsets"  # the first image shown of each side (its page)
GALLERY_TILES = "gallery-tiles"  # the page's records, drawn as tiles by assets/gallery.js
GALLERY_SIDES = ("with", "without")


def gallery_id(side: str, part: str) -> str:
    """The id of a part of one side's column of the gallery: "gallery-with-tiles", ..."""
    return f"gallery-{side}-{part}"


# The selected feature's impact period by period (dashboard/page/trend.py)
TREND = "trend-chart"
TREND_CARD = "trend-card"
TREND_TITLE = "trend-title"
TREND_PERIOD = "trend-period"
TREND_HINT = "trend-hint"

# The build comparison
DRIFT = "drift-chart"
DRIFT_CARD = "drift-card"
DRIFT_FRAME = "drift-frame"
DRIFT_NOTE = "drift-note"

# The summary table and the downloads
TABLE = "summary-table"
TABLE_HINT = "summary-table-hint"
TABLE_ROWS = "summary-table-rows"  # the view's rows, packed by column (views.packed_rows)
TABLE_SELECTION = "summary-table-selection"  # which row is highlighted in the charts
SHOW_IN_CHARTS = "show-in-charts"  # both drawn by assets/dashboard.js in the selection note
TABLE_CLEAR = "summary-table-clear"
TABLE_SEARCH = "summary-table-search"  # filters the table's rows by feature name
TABLE_CARD = "summary-table-card"
DOWNLOAD_SUMMARY_BUTTON = "download-summary-button"
DOWNLOAD_POINTS_BUTTON = "download-points-button"
DOWNLOAD_SUMMARY = "download-summary"
DOWNLOAD_POINTS = "download-points"

# State kept in the browser
LOOKUP = "hover-lookup"  # per view: which image each scatter point belongs to, and its features
VERSION = "data-version"  # store.version() last seen by the page
POLL = "version-poll"
REFINE_POLL = "refine-poll"  # runs while the view waits for a window's full null (data/refine.py)
PENDING_NULL = "pending-null"  # the stored name of that null
REFINED = "refined"  # set when it is stored: the view redraws


# The ids that assets/*.js use, handed to the browser in the page (layout.INDEX_STRING) as
# window.CREATIVE_IDS, so that the scripts spell no id of their own.
BROWSER = {
    "SCATTER": SCATTER,
    "IMPACT": IMPACT,
    "AVG_WITH": AVG_WITH,
    "BAR_CHARTS": list(BAR_CHARTS),
    "BAR_PANEL": BAR_PANEL,
    "BAR_CARD": BAR_CARD,
    "HOVER_HINT": HOVER_HINT,
    "HOVER_CARD": HOVER_CARD,
    "LOOKUP": LOOKUP,
    "TABLE": TABLE,
    "TABLE_CLEAR": TABLE_CLEAR,
    "SHOW_IN_CHARTS": SHOW_IN_CHARTS,
    "VERDICT": VERDICT,
}
