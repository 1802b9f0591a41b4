"""Pure Plotly figure builders (no Dash, no Flask, no store), every one re-exported here.

A notebook reaches them all from here, with no server::

    from data.analysis import feature_summary
    from dashboard import figures
    figures.impact_figure(feature_summary(dataset, confidence=0.3)).show()
"""

from dashboard.figures.bars import (
    BAR_MARGIN,
    BAR_MIN_PLOT_PX,
    BAR_PAGER_PX,
    BAR_ROW_PX,
    BAR_WINDOW_ROW_PX,
    bar_figure,
    bar_layout,
    impact_figure,
)
from dashboard.figures.drift import drift_figure
from dashboard.figures.scatter import LINK_TRACE_NAME, SCATTER_WINDOW, WEBGL_THRESHOLD, scatter_figure
from dashboard.figures.style import (
    COLORS,
    FEATURE_WINDOW,
    FONT_FAMILY,
    MINUS,
    SIGNIFICANCE_CLASSES,
    TITLES,
    empty_figure,
    escape_label,
    format_ctr,
    format_lift,
    format_p,
    format_pp,
    is_empty_figure,
    label_width,
    page_slider,
    rgba_color,
    significance_classes,
)
from dashboard.figures.trend import trend_figure, trend_text

__all__ = [
    "trend_figure",
    "trend_text",
    "BAR_MARGIN",
    "BAR_MIN_PLOT_PX",
    "BAR_PAGER_PX",
    "BAR_ROW_PX",
    "BAR_WINDOW_ROW_PX",
    "COLORS",
    "FEATURE_WINDOW",
    "FONT_FAMILY",
    "LINK_TRACE_NAME",
    "MINUS",
    "SCATTER_WINDOW",
    "SIGNIFICANCE_CLASSES",
    "TITLES",
    "WEBGL_THRESHOLD",
    "bar_figure",
    "bar_layout",
    "drift_figure",
    "empty_figure",
    "escape_label",
    "format_ctr",
    "format_lift",
    "format_p",
    "format_pp",
    "impact_figure",
    "is_empty_figure",
    "label_width",
    "page_slider",
    "rgba_color",
    "scatter_figure",
    "significance_classes",
]
