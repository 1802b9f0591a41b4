"""The controls a view is made of, as Dash dependencies: one mapping for every callback that reads them.

The redraw, the gallery, the trend, the downloads and the "Travels with" panel each read some of
them; each names the ones it needs, by the keyword ``views.state_from_controls`` takes them.
"""

from __future__ import annotations

from dash import Input, State

from dashboard.page import ids
from dashboard.page.dates import WINDOW_PROPS

# Each control's (component id, property), in the order state_from_controls takes them.
VIEW_CONTROLS = {
    "business": (ids.BUSINESS, "value"),
    "source": (ids.SOURCE, "value"),
    "build": (ids.BUILD, "value"),
    "confidence": (ids.CONFIDENCE, "value"),
    "sparsity": (ids.SPARSITY, "value"),
    "weighting": (ids.WEIGHTING, "value"),
    "shown": (ids.SHOWN, "value"),
    "compare": (ids.COMPARE, "value"),
    "impact_mode": (ids.IMPACT_MODE, "value"),
    "date_from": WINDOW_PROPS[0],
    "date_to": WINDOW_PROPS[1],
}
# What a download or the panel reads beside its own trigger: the view without the impact mode.
READ_CONTROLS = tuple(name for name in VIEW_CONTROLS if name != "impact_mode")


def view_controls(kind: type = Input, names=tuple(VIEW_CONTROLS)) -> dict:
    """The named controls (all by default) as ``kind`` (Input or State) dependencies, by keyword."""
    return {name: kind(*VIEW_CONTROLS[name]) for name in names}


def control_states(names=READ_CONTROLS) -> list:
    """The named controls as State dependencies, in the order given (for positional callbacks)."""
    return list(view_controls(State, names).values())
