"""The control panel: dataset and build pickers, the sliders, the weighting toggle and how many features to chart."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from dashboard.page import ids, views
from dashboard.page.adjusted import IMPACT_MODE_HELP, impact_mode_control
from dashboard.page.dates import Extent, date_control
from dashboard.page.drift import compare_control
from dashboard.page.selection import business_options, source_options
from dashboard.page.views import ViewState

# An HTML select holds strings: with numbers, the browser would show no choice for 0 (all).
SHOWN_OPTIONS = [
    {"label": "All features" if n == 0 else f"Top & bottom {n}", "value": str(n)} for n in views.SHOWN_CHOICES
]


def _control(label, control, *, help_text=None, help_id: str | None = None, label_for=None) -> html.Div:
    return html.Div(
        [
            dbc.Label(
                label,
                html_for=label_for or getattr(control, "id", None),
                id=f"{label_for or getattr(control, 'id', None)}-label",
                className="control-label",
            ),
            control,
            html.Div(help_text, className="control-help", **({"id": help_id} if help_id else {}))
            if (help_text or help_id)
            else None,
        ],
        className="control",
    )


def _weighting_control(state: ViewState, has_counts: bool | None) -> html.Div:
    toggle = dbc.RadioItems(
        id=ids.WEIGHTING,
        options=views.weighting_options(has_counts),
        value=state.filters.weighting,
        className="weighting",
        input_class_name="weighting-input",
        label_class_name="weighting-label",
    )
    # The tooltip hangs on the impression option's label: a disabled input shows no tooltip.
    tip = dbc.Tooltip(
        views.weighting_tip(has_counts),
        id=ids.WEIGHTING_TIP,
        target=ids.WEIGHTING_IMPRESSIONS_LABEL,
        placement="bottom",
    )
    return _control(
        "CTR weighting",
        html.Div([toggle, tip]),
        help_text=views.weighting_help(has_counts),
        help_id=ids.WEIGHTING_HELP,
        label_for=ids.WEIGHTING,
    )


def sparsity_text(value) -> str:
    """The prevalence range in words, shown beside the slider (its 2 % default is otherwise invisible)."""
    low, high = value or views.DEFAULT_SPARSITY
    return f"{low:g}–{high:g} %"


def _sliders(state: ViewState) -> tuple:
    confidence = dcc.Slider(
        id=ids.CONFIDENCE,
        min=0,
        max=1,
        step=0.01,
        value=state.filters.confidence,
        marks={v: f"{v:g}" for v in (0, 0.5, 1)},
        tooltip={"placement": "bottom", "always_visible": False},
        updatemode="mouseup",
    )
    sparsity = dcc.RangeSlider(
        id=ids.SPARSITY,
        min=0,
        max=100,
        step=1,
        value=state.sparsity,
        marks={v: f"{v}%" for v in (0, 50, 100)},
        allowCross=False,
        tooltip={"placement": "bottom", "always_visible": False},
        updatemode="mouseup",
    )
    return confidence, sparsity


def _dataset_pickers(datasets: pd.DataFrame, state: ViewState, build_opts, compare_opts=None) -> list:
    # An empty store leaves the pickers blank: the notice beside them says what to send.
    return [
        _control(
            "Business",
            dcc.Dropdown(
                id=ids.BUSINESS,
                options=business_options(datasets),
                value=state.business,
                clearable=False,
                placeholder="–",
            ),
        ),
        _control(
            "Image source",
            dcc.Dropdown(
                id=ids.SOURCE,
                options=source_options(datasets, state.business),
                value=state.source,
                clearable=False,
                placeholder="–",
            ),
        ),
        _control(
            "Build",
            dcc.Dropdown(
                id=ids.BUILD,
                options=build_opts,
                value=state.build if build_opts else None,
                clearable=False,
                placeholder="–",
                optionHeight=44,
            ),
            help_text="Number, time received and tag.",
        ),
        compare_control(state.compare, compare_opts),
    ]


def controls_card(
    datasets: pd.DataFrame,
    state: ViewState,
    build_opts,
    has_counts: bool | None,
    compare_opts=None,
    extent: Extent | None = None,
) -> html.Aside:
    """The controls, opened at ``state``, in a column beside the answer; ``compare_opts``: the build
    comparison's; the date range when ``extent`` has days."""
    confidence, sparsity = _sliders(state)
    return html.Aside(
        [
            html.H2("View", className="visually-hidden"),
            *_dataset_pickers(datasets, state, build_opts, compare_opts),
            _control(
                [
                    "Confidence threshold ",
                    html.Span(f"{state.filters.confidence:.2f}", id=ids.CONFIDENCE_VALUE, className="control-value"),
                ],
                confidence,
                help_text="A feature counts as present in an image when the featurizer's confidence is above this.",
                label_for=ids.CONFIDENCE,
            ),
            _control(
                [
                    "Feature prevalence ",
                    html.Span(sparsity_text(state.sparsity), id=ids.SPARSITY_VALUE, className="control-value"),
                ],
                sparsity,
                help_text="Only features present in this share of the images (rare ones give unsteady numbers).",
                label_for=ids.SPARSITY,
            ),
            _weighting_control(state, has_counts),
            date_control(state.filters, extent),  # how CTR is measured: beside the weighting
            _control(
                "Impact", impact_mode_control(state.adjusted), help_text=IMPACT_MODE_HELP, label_for=ids.IMPACT_MODE
            ),
            _control(
                "Features charted",
                dbc.Select(id=ids.SHOWN, options=SHOWN_OPTIONS, value=str(state.shown)),
                help_text="The clearest answers on both sides. The table lists them all.",
            ),
        ],
        className="controls",
        **{"aria-label": "View controls"},
    )
