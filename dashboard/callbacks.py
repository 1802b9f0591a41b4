"""Dash callbacks (placeholder until the dashboard lands)."""


def register_callbacks(app, store, settings) -> None:
    """Wire the controls to the charts."""
