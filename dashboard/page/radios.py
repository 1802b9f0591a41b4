"""A choice of one among a few, drawn as a row of small buttons (the date presets, the trend's period)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html


def button_radios(
    control_id: str, options: list[dict], value, *, class_name: str = "", items_class_name: str = "", **aria
) -> html.Div:
    """A choice of one among a few, drawn as a row of small buttons: a radio group named by ``aria``
    (``aria-label`` or ``aria-labelledby``), so that it reads as one control."""
    return html.Div(
        dbc.RadioItems(
            id=control_id,
            options=options,
            value=value,
            inline=True,
            className=items_class_name,
            input_class_name="btn-check",
            label_class_name="btn btn-outline-secondary btn-sm",
            label_checked_class_name="active",
        ),
        className=class_name,
        role="radiogroup",
        **aria,
    )
