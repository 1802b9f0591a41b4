"""The page layout (placeholder until the dashboard lands)."""

from dash import html


def build_layout(store, settings):
    """The page's component tree."""
    return html.Div("Creative analytics")
