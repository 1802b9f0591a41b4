"""Component ids of the page, in one place so that layout, callbacks and tests agree."""

# Controls
BUSINESS = "business"
SOURCE = "image-source"
BUILD = "build"
CONFIDENCE = "confidence"
SPARSITY = "sparsity"
SHOWN = "features-shown"

# Charts
SCATTER = "scatter-chart"
AVG_WITH = "avg-with-chart"
IMPACT = "impact-chart"
AVG_WITHOUT = "avg-without-chart"
CHARTS = (SCATTER, AVG_WITH, IMPACT, AVG_WITHOUT)
BAR_CHARTS = (AVG_WITH, IMPACT, AVG_WITHOUT)

# Text around the charts
STATUS = "view-status"
NOTICE = "view-notice"
HOVER_PANEL = "hover-panel"
SCATTER_FRAME = "scatter-frame"
BAR_PANEL = "bar-panel"  # its --label-width lines the three bar charts up

# State kept in the browser
LOOKUP = "hover-lookup"  # per view: which image each scatter point belongs to, and its features
VERSION = "data-version"  # store.version() last seen by the page
POLL = "version-poll"
