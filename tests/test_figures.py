"""Figure builders: their numbers are feature_summary's and scatter_points', without a server."""

from __future__ import annotations

import ast
import base64
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import figures
from dashboard.page import views
from data.analysis import Dataset, feature_summary, scatter_points

# Every module of dashboard/figures/: all pure.
FIGURE_MODULES = sorted(Path(figures.__file__).parent.glob("*.py"))

# The answer's columns of a summary (verdict, lift, FCR interval): dropped where a test reads the per-test ones.
ANSWER_COLUMNS = ["verdict", "lift_pct", "ci_low_fcr", "ci_high_fcr"]


def _synthetic(n_images: int = 40, n_features: int = 6, seed: int = 42) -> Dataset:
    """Small deterministic data: confidences in [0, 1), CTRs around 1%, one feature never present."""
    rng = random.Random(seed)
    conf = np.array([[rng.random() if rng.random() < 0.5 else 0.0 for _ in range(n_features)] for _ in range(n_images)])
    conf[:, -1] = 0.0
    ctr = np.array([0.005 + rng.random() * 0.01 for _ in range(n_images)])
    return Dataset.from_matrix(
        [f"img_{i}" for i in range(n_images)],
        [f"f{j}" for j in range(n_features)],
        conf,
        pd.Series(ctr, index=[f"img_{i}" for i in range(n_images)]),
    )


def _ticks(fig) -> list[str]:
    return list(fig.layout.xaxis.ticktext)


# -- scatter -----------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [0.0, 0.3, 0.5, 0.8])
def test_scatter_figure_has_one_point_per_image_and_feature_present(reference_dataset, confidence):
    summary = feature_summary(reference_dataset, confidence=confidence)
    points = scatter_points(reference_dataset, confidence=confidence, features=summary["feature"])
    fig = figures.scatter_figure(points, feature_order=summary["feature"])

    present = reference_dataset.confidences > confidence
    columns = [list(reference_dataset.features).index(f) for f in summary["feature"]]
    assert len(fig.data[0].x) == int(present[:, columns].sum()) == len(points)
    names = np.array(_ticks(fig), dtype=object)[np.asarray(fig.data[0].x)]
    assert list(names) == list(points["feature"].astype(str))
    assert np.array_equal(fig.data[0].y, (points["ctr"].to_numpy() * 100.0).astype(np.float32))
    assert fig.data[0].text is None and fig.data[0].customdata is None  # the hover panel has them


def test_scatter_figure_x_lists_only_features_with_points_in_the_given_order():
    dataset = _synthetic()
    order = ["f3", "f5", "f0", "f1", "f2", "f4"]  # f5 is never present
    fig = figures.scatter_figure(scatter_points(dataset, confidence=0.2), feature_order=order)
    assert _ticks(fig) == ["f3", "f0", "f1", "f2", "f4"]
    assert list(fig.layout.xaxis.tickvals) == [0, 1, 2, 3, 4]
    assert set(np.asarray(fig.data[0].x)) == {0, 1, 2, 3, 4}


def test_scatter_figure_orders_x_like_the_bar_charts(reference_dataset):
    summary = feature_summary(reference_dataset, confidence=0.3)
    points = scatter_points(reference_dataset, confidence=0.3, features=summary["feature"])
    scatter = figures.scatter_figure(points, feature_order=summary["feature"])
    bars = figures.bar_figure(summary)
    assert _ticks(scatter) == list(bars.data[0].y) == list(summary["feature"])


def test_scatter_figure_drops_points_of_features_outside_the_order():
    dataset = _synthetic()
    points = scatter_points(dataset, confidence=0.2)
    fig = figures.scatter_figure(points, feature_order=["f1", "f0"])
    assert _ticks(fig) == ["f1", "f0"]
    assert len(fig.data[0].x) == int(points["feature"].isin(["f0", "f1"]).sum())


def test_scatter_figure_sends_x_as_integer_codes_with_tick_labels(reference_dataset):
    fig = figures.scatter_figure(scatter_points(reference_dataset, confidence=0.3))
    payload = json.loads(fig.to_json())
    x = payload["data"][0]["x"]
    assert isinstance(x, dict) and x["dtype"].startswith(("i", "u")) and "bdata" in x
    assert payload["layout"]["xaxis"]["tickmode"] == "array"


def test_scatter_figure_uses_webgl_above_a_few_thousand_points():
    dataset = _synthetic(n_images=1500, n_features=8)
    points = scatter_points(dataset, confidence=0.0)
    assert len(points) > figures.WEBGL_THRESHOLD
    assert figures.scatter_figure(points).data[0].type == "scattergl"
    assert figures.scatter_figure(points.head(500)).data[0].type == "scatter"


def test_a_wide_scatter_above_its_draw_limit_holds_its_first_window_and_says_which_points():
    """Past ``draw_limit`` points, a windowed scatter's trace holds the points of its first window
    and ``DRAWN_MARGIN`` features more, and names them in its meta; the layout still counts all."""
    from dashboard.figures.scatter import DRAWN_MARGIN

    data = _synthetic(n_images=300, n_features=120)
    points = scatter_points(data, confidence=0.0)  # feature-major, in the dataset's feature order
    full = figures.scatter_figure(points)
    part = figures.scatter_figure(points, draw_limit=1_000)
    x, y = np.asarray(full.data[0].x), np.asarray(full.data[0].y)
    stop = figures.SCATTER_WINDOW + DRAWN_MARGIN
    end = int((x < stop).sum())
    assert full.data[0].meta is None and len(x) == len(points) > 1_000
    assert part.data[0].meta == {"points": [0, end], "features": [0, stop]}
    assert np.array_equal(np.asarray(part.data[0].x), x[:end]) and np.array_equal(np.asarray(part.data[0].y), y[:end])
    assert part.layout.meta["points"] == len(points) and list(part.layout.xaxis.ticktext) == _ticks(full)
    # Every point is sent below the limit, when the features fit one window, or when the points
    # are not feature-major (a window's points would not be one run).
    for fig in (
        figures.scatter_figure(points, draw_limit=len(points)),
        figures.scatter_figure(scatter_points(data, confidence=0.0, features=data.features[:40]), draw_limit=10),
        figures.scatter_figure(points.sample(frac=1.0, random_state=1), draw_limit=1_000),
    ):
        assert fig.data[0].meta is None and len(fig.data[0].x) == fig.layout.meta["points"]


def test_scatter_figure_has_an_empty_link_trace_for_hover():
    fig = figures.scatter_figure(scatter_points(_synthetic(), confidence=0.2))
    link = fig.data[1]
    assert link.name == figures.LINK_TRACE_NAME
    assert len(link.x) == 0 and link.line.dash == "dot" and link.line.color == figures.COLORS["link"]
    assert link.hoverinfo == "skip"


def test_scatter_figure_marks_each_features_average(reference_dataset):
    summary = feature_summary(reference_dataset, confidence=0.3)
    points = scatter_points(reference_dataset, confidence=0.3, features=summary["feature"])
    fig = figures.scatter_figure(
        points, feature_order=summary["feature"], means=summary.set_index("feature")["avg_ctr_with"]
    )
    assert np.array_equal(fig.data[2].y, summary["avg_ctr_with"].to_numpy() * 100.0)


def test_a_paged_scatter_draws_each_features_average_as_one_broken_line():
    """Beyond one window of features the averages are one line of dashes (one SVG path), each
    feature's from code - 0.3 to code + 0.3 at its average, named in its hover."""
    data = _synthetic(n_images=300, n_features=120)
    summary = feature_summary(data, confidence=0.0)
    points = scatter_points(data, confidence=0.0, features=summary["feature"])
    fig = figures.scatter_figure(
        points, feature_order=summary["feature"], means=summary.set_index("feature")["avg_ctr_with"]
    )
    means = fig.data[2]
    order = _ticks(fig)
    assert len(order) > figures.SCATTER_WINDOW and means.mode == "lines" and means.name == "average"
    x, y = np.asarray(means.x).reshape(-1, 3), np.asarray(means.y).reshape(-1, 3)
    expected = summary.set_index("feature")["avg_ctr_with"].reindex(order).to_numpy() * 100.0
    codes = np.arange(len(order))
    assert np.allclose(x[:, 0], codes - 0.3) and np.allclose(x[:, 1], codes + 0.3) and np.isnan(x[:, 2]).all()
    assert np.array_equal(y[:, 0], expected) and np.array_equal(y[:, 1], expected) and np.isnan(y[:, 2]).all()
    assert list(means.text[::3]) == order and "%{text}" in means.hovertemplate


# -- bars --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["avg_ctr_with", "avg_ctr_without"])
@pytest.mark.parametrize("confidence, low, high", [(0.0, 0, 100), (0.3, 0, 100), (0.5, 5, 60)])
def test_bar_figure_numbers_equal_feature_summary(reference_dataset, value, confidence, low, high):
    summary = feature_summary(reference_dataset, confidence=confidence, min_pct=low, max_pct=high)
    fig = figures.bar_figure(summary, value=value)
    bar = fig.data[0]
    assert bar.orientation == "h"
    assert list(bar.y) == list(summary["feature"])
    assert np.array_equal(bar.x, summary[value].to_numpy() * 100.0, equal_nan=True)
    assert list(fig.layout.yaxis.range) == [len(summary) - 0.5, -0.5]  # highest impact on top


def test_bar_charts_share_rows(reference_dataset):
    summary = feature_summary(reference_dataset, confidence=0.0)
    charts = [
        figures.bar_figure(summary, label_px=100, title=""),
        figures.impact_figure(summary, feature_labels=False, title=""),
        figures.bar_figure(summary, value="avg_ctr_without", feature_labels=False, title=""),
    ]
    assert (
        len({(tuple(f.layout.yaxis.range), f.layout.height, f.layout.margin.t, f.layout.margin.b) for f in charts}) == 1
    )


def test_bar_figure_grows_with_the_feature_count_up_to_a_window():
    small = figures.bar_figure(feature_summary(_synthetic(n_features=4), confidence=0.2))
    window = figures.bar_figure(feature_summary(_synthetic(n_features=figures.FEATURE_WINDOW), confidence=0.2))
    assert window.layout.height > small.layout.height
    assert window.layout.height >= figures.FEATURE_WINDOW * figures.BAR_ROW_PX
    large = figures.bar_figure(feature_summary(_synthetic(n_features=200), confidence=0.2))
    wider = figures.bar_figure(feature_summary(_synthetic(n_features=900), confidence=0.2))
    assert large.layout.height == wider.layout.height < window.layout.height
    unwindowed = figures.bar_figure(feature_summary(_synthetic(n_features=200), confidence=0.2), window=None)
    assert unwindowed.layout.height >= 200 * figures.BAR_ROW_PX and not unwindowed.layout.sliders


def _page_ranges(fig, axis="yaxis"):
    return [step.args[0][f"{axis}.range"] for step in fig.layout.sliders[0].steps]


@pytest.mark.parametrize("build", ["avg_ctr_with", "impact", "avg_ctr_without"])
def test_bar_charts_show_a_window_of_many_features_with_every_bar(build):
    """Beyond the window each bar chart shows that many rows; its pages cover all; no bar is left out."""
    summary = feature_summary(_synthetic(n_images=60, n_features=130), confidence=0.2)
    n = len(summary)
    assert n > figures.FEATURE_WINDOW + 60
    fig = figures.impact_figure(summary) if build == "impact" else figures.bar_figure(summary, value=build, title="")
    w = figures.FEATURE_WINDOW
    assert list(fig.layout.yaxis.range) == [w - 0.5, -0.5]  # the first window, highest impact on top
    assert list(fig.data[0].y) == list(summary["feature"]) and len(fig.data[0].x) == n  # nothing sampled
    assert list(fig.layout.yaxis.categoryarray) == list(summary["feature"])
    assert fig.layout.meta["window"] == w and fig.layout.meta["features"] == n
    assert fig.layout.dragmode == "pan" and fig.layout.xaxis.fixedrange is True
    ranges = _page_ranges(fig)
    assert ranges[0] == [w - 0.5, -0.5] and ranges[1] == [2 * w - 0.5, w - 0.5]
    assert ranges[-1] == [n - 0.5, n - w - 0.5]  # the last page is full, ending at the last feature
    assert len(ranges) == -(-n // w)
    labels = [s.label for s in fig.layout.sliders[0].steps]
    assert labels[0] == f"1–{w}" and labels[-1] == f"{(len(labels) - 1) * w + 1}–{n}"
    assert fig.layout.sliders[0].currentvalue.suffix.startswith(f" of {n:,}")
    # Without its own slider (paged with its neighbours) it keeps the same rows and height.
    bare = (
        figures.impact_figure(summary, pager=False)
        if build == "impact"
        else figures.bar_figure(summary, value=build, title="", pager=False)
    )
    assert not bare.layout.sliders
    assert (bare.layout.height, bare.layout.margin.t, list(bare.layout.yaxis.range)) == (
        fig.layout.height,
        fig.layout.margin.t,
        list(fig.layout.yaxis.range),
    )


@pytest.mark.parametrize("build", ["avg_ctr_with", "impact"])
def test_bar_charts_above_their_draw_limit_hold_their_first_window_and_keep_every_row_in_meta(build):
    """Past ``draw_limit`` rows, each trace of a windowed bar chart holds the rows of its first
    window and ``DRAWN_ROWS_MARGIN`` more; its meta keeps every row's values by attribute path, the
    same as the whole chart's; the layout (axis, pages, value labels) is the whole chart's."""
    from dashboard.figures.bars import DRAWN_ROWS_MARGIN

    summary = feature_summary(_synthetic(n_images=60, n_features=160), confidence=0.2)
    n = len(summary)
    summary.loc[summary.index[-3:], "verdict"] = "too few images"  # hatched bars: a per-row pattern

    def chart(**kw):
        if build == "impact":
            return figures.impact_figure(summary, **kw)
        return figures.bar_figure(summary, value=build, title="", baseline="avg_ctr_without", **kw)

    whole, part = chart(), chart(draw_limit=100)
    stop = figures.FEATURE_WINDOW + DRAWN_ROWS_MARGIN
    assert n > 100 and stop < n
    assert part.layout.to_plotly_json() == whole.layout.to_plotly_json()
    cut = 0
    for w, p in zip(whole.data, part.data):
        w, p = w.to_plotly_json(), p.to_plotly_json()
        if not len(w.get("y", [])):  # the value axis's empty trace
            assert p == w
            continue
        cut += 1
        assert p["meta"]["rows"] == [0, stop] and list(p["y"]) == list(summary["feature"][:stop])
        full = p["meta"]["full"]
        assert {"x", "y", "hovertext"} <= set(full)
        for path, values in full.items():
            keys = path.split(".")
            whole_values, part_values = w, p
            for key in keys:
                whole_values, part_values = whole_values[key], part_values[key]
            assert len(values) == n and np.array_equal(np.asarray(values), np.asarray(whole_values))
            assert np.array_equal(np.asarray(part_values), np.asarray(whole_values)[:stop])
        if build == "impact":
            assert {"marker.color", "marker.pattern.shape", "error_x.array", "error_x.arrayminus"} <= set(full)
    assert cut == (2 if build == "avg_ctr_with" else 1)
    # Whole at or below the limit, and when the rows fit one window.
    assert chart(draw_limit=n).to_plotly_json() == whole.to_plotly_json()
    few = summary.head(40)
    small = figures.impact_figure(few, draw_limit=10) if build == "impact" else figures.bar_figure(few, draw_limit=10)
    assert "meta" not in small.data[0].to_plotly_json() and len(small.data[0].y) == 40


def test_bar_and_scatter_windows_hold_the_same_features():
    """One window size for all four charts, so that a page of the scatter is a page of the bars."""
    dataset = _synthetic(n_images=60, n_features=130)
    summary = feature_summary(dataset, confidence=0.2)
    points = scatter_points(dataset, confidence=0.2, features=summary["feature"])
    scatter = figures.scatter_figure(points, feature_order=summary["feature"])
    bars = figures.bar_figure(summary)
    assert figures.SCATTER_WINDOW == figures.FEATURE_WINDOW == bars.layout.meta["window"]
    assert scatter.layout.meta["window"] == bars.layout.meta["window"]
    ticks = _ticks(scatter)
    assert ticks == list(bars.data[0].y)
    for x_range, y_range in zip(_page_ranges(scatter, "xaxis"), _page_ranges(bars)):
        assert np.mean(x_range) == pytest.approx(np.mean(y_range))  # the same centre: the same features


def test_bar_charts_send_values_as_typed_arrays_and_label_them_on_a_matching_axis():
    """Values as base64 typed arrays; their labels are the tick labels of a right-hand y axis that
    pans with the rows (laid out only in range), not a text per bar (laid out for every bar)."""
    summary = feature_summary(_synthetic(n_images=60, n_features=130), confidence=0.2)
    summary.loc[summary.index[3], "impact"] = np.nan  # an undefined value gets an empty label
    for value, fig in (
        ("avg_ctr_with", figures.bar_figure(summary)),
        ("avg_ctr_without", figures.bar_figure(summary, value="avg_ctr_without")),
        ("impact", figures.impact_figure(summary)),
    ):
        bar = json.loads(fig.to_json())["data"][0]
        assert isinstance(bar["x"], dict) and "bdata" in bar["x"]
        assert not {"text", "texttemplate"} & set(bar)
        values = fig.layout.yaxis2
        assert (values.overlaying, values.matches, values.side) == ("y", "y", "right")
        assert list(values.tickvals) == list(values.categoryarray) == list(summary["feature"])
        x = summary[value].to_numpy() * 100
        if value == "impact":
            expected = ["" if np.isnan(v) else f"{v:+.2f} pp".replace("-", "−") for v in x]
            shown = [t.split(">", 1)[1].removesuffix("</span>") if t else t for t in values.ticktext]
            colors = [t.split('"')[1] for t in values.ticktext if t]
            assert set(colors) <= {f"color:{figures.COLORS[c]}" for c in ("positive", "negative")}
        else:
            expected, shown = [f"{v:.2f}%" for v in x], list(values.ticktext)
        assert shown == expected
        assert fig.data[1].yaxis == "y2" and len(fig.data[1].x) == 0  # only makes Plotly draw the axis


def test_bar_figure_labels_ctr_in_percent(reference_dataset):
    summary = feature_summary(reference_dataset, confidence=0.3)
    fig = figures.bar_figure(summary)
    assert fig.layout.xaxis.ticksuffix == "%"
    assert "(%)" in fig.layout.xaxis.title.text
    assert fig.layout.yaxis2.ticktext[0] == f"{summary['avg_ctr_with'].iloc[0] * 100:.2f}%"


def test_impact_figure_numbers_and_colours(reference_dataset):
    summary = feature_summary(reference_dataset, confidence=0.3)
    fig = figures.impact_figure(summary)
    bar = fig.data[0]
    assert list(bar.y) == list(summary["feature"])
    assert np.array_equal(bar.x, summary["impact"].to_numpy() * 100.0)
    positive_rgb = figures.rgba_color(figures.COLORS["positive"], 1).rsplit(",", 1)[0]
    negative_rgb = figures.rgba_color(figures.COLORS["negative"], 1).rsplit(",", 1)[0]
    for impact, color in zip(summary["impact"], bar.marker.color):
        assert color.startswith(positive_rgb if impact >= 0 else negative_rgb)


def test_impact_figure_draws_error_bars_from_the_interval_columns(reference_dataset):
    """The false-coverage-rate interval where the summary has it (it agrees with q), else the per-test one."""
    summary = feature_summary(reference_dataset, confidence=0.0)
    x = summary["impact"].to_numpy() * 100.0
    for frame, low, high in (
        (summary, "ci_low_fcr", "ci_high_fcr"),
        (summary.drop(columns=ANSWER_COLUMNS), "ci_low", "ci_high"),
    ):
        error = figures.impact_figure(frame).data[0].error_x
        assert np.allclose(x + np.asarray(error.array), summary[high] * 100.0, equal_nan=True)
        assert np.allclose(x - np.asarray(error.arrayminus), summary[low] * 100.0, equal_nan=True)


def test_impact_figure_without_interval_columns_has_no_error_bars(reference_dataset):
    summary = feature_summary(reference_dataset, confidence=0.0)[
        ["feature", "n_with", "n_without", "avg_ctr_with", "avg_ctr_without", "impact"]
    ]
    fig = figures.impact_figure(summary)
    assert fig.data[0].error_x.array is None
    assert [t.type for t in fig.data] == ["bar", "scatter"] and len(fig.data[1].x) == 0  # the value axis's
    assert fig.layout.yaxis2.ticktext[0].endswith(f">{summary['impact'].iloc[0] * 100:+.2f} pp</span>")


def test_impact_figure_fades_features_that_are_not_significant(reference_dataset):
    summary = feature_summary(reference_dataset, confidence=0.0)
    assert summary["significant"].any() and not summary["significant"].all()
    fig = figures.impact_figure(summary)
    for significant, color in zip(summary["significant"], fig.data[0].marker.color):
        assert color.endswith(",1)") == bool(significant)


def test_impact_figure_and_table_follow_the_analysis_significant_column(reference_dataset):
    """Significance is decided once, by the analysis: the chart and the table read its columns."""
    # A frame without the answer's columns (a notebook's older one): colour and label follow ``significant``.
    summary = feature_summary(reference_dataset, confidence=0.0).drop(columns=ANSWER_COLUMNS)
    flipped = summary.assign(significant=~summary["significant"])  # disagrees with q < 0.05 on every row
    fig = figures.impact_figure(flipped)
    for significant, color in zip(flipped["significant"], fig.data[0].marker.color):
        assert color.endswith(",1)") == bool(significant)
    # The table needs the answer's columns (a frame without them is refused, naming them) ...
    with pytest.raises(ValueError, match="lacks the columns verdict, lift_pct"):
        views.table_rows(flipped)
    # ... and labels the rows by ``significant`` too.
    full = feature_summary(reference_dataset, confidence=0.0)
    flipped = full.assign(significant=~full["significant"])
    labels = [row["result"] for row in views.table_rows(flipped)]
    assert labels == ["significant" if s else "not significant" for s in flipped["significant"]]
    assert not hasattr(figures, "SIGNIFICANCE_LEVEL")


def test_impact_figure_tells_too_few_images_from_not_significant(reference_dataset):
    summary = feature_summary(reference_dataset, confidence=0.3, min_n=40)
    classes = figures.significance_classes(summary)
    assert set(classes) == {"significant", "not significant", "too few images"}
    fig = figures.impact_figure(summary)
    colors, shapes = fig.data[0].marker.color, fig.data[0].marker.pattern.shape
    for cls, color, shape in zip(classes, colors, shapes):
        assert (color == figures.COLORS["low_n"]) is (cls == "too few images")
        assert (shape == "/") is (cls == "too few images")
        assert color.endswith(",1)") is (cls == "significant")
    # Without low_n rows, no hatching is drawn at all.
    assert (
        figures.impact_figure(feature_summary(reference_dataset, confidence=0.0, min_n=2)).data[0].marker.pattern.shape
        is None
    )


def test_impact_figure_hover_shows_counts_interval_p_and_q(reference_dataset):
    summary = feature_summary(reference_dataset, confidence=0.3, min_n=40).drop(columns=ANSWER_COLUMNS)
    fig = figures.impact_figure(summary)
    assert fig.data[0].hovertemplate == "%{hovertext}<extra></extra>"
    for text, (_, row) in zip(fig.data[0].hovertext, summary.iterrows()):
        assert text.startswith(f"<b>{row['feature']}</b> · ")
        assert f"Impact: {row['impact'] * 100:+.3f} pp".replace("-", figures.MINUS) in text
        assert f"CTR with: {row['avg_ctr_with'] * 100:.3f}% ({row['n_with']:,} images)" in text
        assert f"CTR without: {row['avg_ctr_without'] * 100:.3f}% ({row['n_without']:,} images)" in text
        assert f"p = {figures.format_p(row['p_value'])} · q = {figures.format_p(row['q_value'])}" in text
        if row["low_n"]:
            assert "95% interval" not in text and "p = – · q = –" in text
        else:
            interval = f"95% interval: {row['ci_low'] * 100:+.3f} pp to {row['ci_high'] * 100:+.3f} pp"
            assert interval.replace("-", figures.MINUS) in text  # the typographic minus, as everywhere on the page


def test_impact_figure_hover_escapes_feature_names():
    summary = pd.DataFrame({"feature": ["<b>x</b> & y"], "impact": [0.001]})
    assert figures.impact_figure(summary).data[0].hovertext[0].startswith("<b>&lt;b&gt;x&lt;/b&gt; &amp; y</b>")


@pytest.mark.parametrize(
    "value, text",
    [
        (0.5, "0.5"),
        (1.0, "1"),
        (0.0344, "0.034"),
        (0.00123, "0.0012"),
        (0.001, "0.001"),
        (0.000054163, "5.4 × 10⁻⁵"),
        (9.3e-39, "9.3 × 10⁻³⁹"),
        (0.0, "< 10⁻³⁰⁰"),
        (float("nan"), "–"),
        (None, "–"),
    ],
)
def test_format_p_keeps_two_significant_digits(value, text):
    assert figures.format_p(value) == text


def test_format_ctr_and_pp():
    assert figures.format_ctr(0.011723) == "1.172%"
    assert figures.format_pp(-0.0034012) == "\u22120.340 pp" and figures.format_pp(0.00242) == "+0.242 pp"
    assert figures.format_ctr(float("nan")) == figures.format_pp(None) == "–"


# -- empty states --------------------------------------------------------------------------------


EMPTY_SUMMARY = pd.DataFrame(columns=["feature", "n_with", "n_without", "avg_ctr_with", "avg_ctr_without", "impact"])
EMPTY_POINTS = pd.DataFrame(columns=["image", "feature", "confidence", "ctr"])


@pytest.mark.parametrize(
    "build",
    [
        lambda: figures.scatter_figure(EMPTY_POINTS),
        lambda: figures.scatter_figure(None),
        lambda: figures.bar_figure(EMPTY_SUMMARY),
        lambda: figures.bar_figure(EMPTY_SUMMARY, value="avg_ctr_without"),
        lambda: figures.impact_figure(EMPTY_SUMMARY),
        lambda: figures.empty_figure("Nothing here"),
    ],
)
def test_builders_return_an_explanatory_empty_figure(build):
    fig = build()
    assert figures.is_empty_figure(fig)
    assert len(fig.data) == 0
    assert fig.layout.annotations[0].text
    assert fig.layout.xaxis.visible is False


def test_scatter_figure_with_no_point_of_the_ordered_features_is_empty():
    points = scatter_points(_synthetic(), confidence=0.2)
    assert figures.is_empty_figure(figures.scatter_figure(points, feature_order=["f5"]))


def test_empty_figure_shows_the_message():
    fig = figures.empty_figure("No CTR yet for acme / vision.")
    assert fig.layout.annotations[0].text == "No CTR yet for acme / vision."
    assert figures.is_empty_figure(fig.to_plotly_json())


# -- validity ------------------------------------------------------------------------------------


def _all_figures(dataset):
    summary = feature_summary(dataset, confidence=0.0)
    points = scatter_points(dataset, confidence=0.0, features=summary["feature"])
    return [
        figures.scatter_figure(
            points, feature_order=summary["feature"], means=summary.set_index("feature")["avg_ctr_with"]
        ),
        figures.scatter_figure(points, webgl=True, width=2000),
        figures.bar_figure(summary, label_px=120),
        figures.bar_figure(summary, value="avg_ctr_without", feature_labels=False, title=""),
        figures.impact_figure(summary),
        figures.impact_figure(summary[["feature", "n_with", "n_without", "avg_ctr_with", "avg_ctr_without", "impact"]]),
        figures.empty_figure("Nothing"),
    ]


def test_builders_produce_figures_that_plotly_validates(reference_dataset):
    # The builders skip plotly.py's slow validation; a validating Figure raises on any bad property.
    for fig in _all_figures(reference_dataset):
        go.Figure(fig.to_plotly_json())


# -- purity --------------------------------------------------------------------------------------


def test_figures_import_only_pandas_numpy_plotly_and_each_other():
    own = {"dashboard.figures"} | {f"dashboard.figures.{path.stem}" for path in FIGURE_MODULES}
    for path in FIGURE_MODULES:
        tree = ast.parse(path.read_text())
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                modules.add(node.module)
        outside = {m for m in modules if m not in own and m != "data.analysis"}  # its constants, pure
        assert {m.split(".")[0] for m in outside} <= {"__future__", "math", "numpy", "pandas", "plotly"}, path.name


def test_figures_work_in_a_notebook_without_a_server(reference_dataset):
    fig = figures.impact_figure(feature_summary(reference_dataset, confidence=0.3))
    assert fig.layout.title.text == figures.TITLES["impact"]
    fig.update_layout(title_text="Impact at 0.3")  # still editable, and validated, afterwards
    with pytest.raises(ValueError):
        fig.update_layout(no_such_property=1)
    for built in _all_figures(reference_dataset):
        assert "Plotly.newPlot" in built.to_html(include_plotlyjs=False)  # what fig.show() renders


# -- names are text, never markup ----------------------------------------------------------

LINK = '<a href="https://evil.example/">x</a>'
BOLD_IMAGE = "<b>big</b> & <i>bold</i>.png"


def _markup_dataset() -> Dataset:
    images = [BOLD_IMAGE if i == 0 else f"img_{i}" for i in range(12)]
    conf = np.array([[0.9 if (i + j) % 2 else 0.1 for j in range(3)] for i in range(12)])
    ctr = pd.Series(np.linspace(0.01, 0.03, 12), index=images)
    return Dataset.from_matrix(images, [LINK, "plain", "a&b<c"], conf, ctr)


# Data, not labels: Plotly never renders these as markup (the categories' labels are ticktext).
_DATA_KEYS = {"x", "y", "categoryarray", "tickvals", "customdata", "meta"}


def _strings(obj):
    """Every string inside a figure's JSON that Plotly may draw as a label."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key not in _DATA_KEYS:
                yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


def test_escape_label_leaves_no_markup():
    assert figures.escape_label(LINK) == '&lt;a href="https://evil.example/"&gt;x&lt;/a&gt;'
    assert figures.escape_label("a&amp;b") == "a&amp;amp;b"


def test_figures_show_names_as_escaped_text_in_labels_ticks_and_hovers():
    dataset = _markup_dataset()
    summary = feature_summary(dataset, confidence=0.5, min_n=2)
    points = scatter_points(dataset, confidence=0.5, features=summary["feature"])
    scatter = figures.scatter_figure(
        points, feature_order=summary["feature"], means=summary.set_index("feature")["avg_ctr_with"]
    )
    bars = [
        figures.bar_figure(summary),
        figures.impact_figure(summary),
        figures.bar_figure(summary, value="avg_ctr_without"),
    ]
    assert figures.escape_label(LINK) in _ticks(scatter) and "a&amp;b&lt;c" in _ticks(scatter)
    assert scatter.data[0].text is None  # image names reach the page only as the hover panel's text
    for fig in bars:
        assert list(fig.layout.yaxis.tickvals) == list(summary["feature"])  # the data keep the real names
        assert list(fig.layout.yaxis.ticktext) == [figures.escape_label(f) for f in summary["feature"]]
        assert "%{y}" not in fig.data[0].hovertemplate
        assert all(LINK not in h and "<c" not in h for h in fig.data[0].hovertext)
    for fig in [scatter, *bars]:
        data = json.loads(fig.to_json())
        rendered = [s for s in _strings({"layout": data["layout"], "data": data["data"]})]
        # Only the builders' own tags remain: no name-borne <a>, <i> or stray <c.
        assert not any("<a " in s or "<i>" in s or "<c" in s for s in rendered)


def test_empty_figure_message_is_text():
    fig = figures.empty_figure(f"No build for {LINK} / x.\nSend one.")
    assert fig.layout.annotations[0].text == f"No build for {figures.escape_label(LINK)} / x.<br>Send one."


def _wide_points(n_features: int, n_images: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    conf = rng.random((n_images, n_features))
    dataset = Dataset.from_matrix(
        [f"img_{i}" for i in range(n_images)],
        [f"f{j}" for j in range(n_features)],
        conf,
        pd.Series(rng.random(n_images) / 50, index=[f"img_{i}" for i in range(n_images)]),
    )
    return scatter_points(dataset, confidence=0.5)


def test_scatter_figure_sends_compact_typed_arrays_without_strings_per_point():
    """x as uint8 codes up to 256 features (else int16) and CTR as float32, base64-encoded; no per-point strings."""
    points = _wide_points(120)
    fig = figures.scatter_figure(points)
    trace = json.loads(fig.to_json())["data"][0]
    for key, dtype in (("x", "u1"), ("y", "f4")):
        assert trace[key]["dtype"] == dtype
    decoded = {
        key: np.frombuffer(base64.b64decode(trace[key]["bdata"]), dtype="<" + trace[key]["dtype"]) for key in ("x", "y")
    }
    assert np.array_equal(decoded["x"], points["feature"].cat.codes.to_numpy())
    assert np.array_equal(decoded["y"], (points["ctr"].to_numpy() * 100).astype(np.float32))
    assert not {"text", "hovertext", "customdata"} & set(trace)
    assert len(fig.to_json()) < 12 * len(points) + 20_000


def test_scatter_figure_shows_a_window_of_many_features_with_paging():
    """Beyond the window the x range shows that many features; slider steps page along all of them."""
    points = _wide_points(120)
    fig = figures.scatter_figure(points, window=50)
    assert list(fig.layout.xaxis.range) == [-0.6, 49.6]
    assert len(fig.layout.xaxis.ticktext) == 120  # labels exist for every feature, drawn only in range
    assert fig.layout.dragmode == "pan" and fig.layout.yaxis.fixedrange is True
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["1–50", "51–100", "101–120"]
    assert steps[1].args[0]["xaxis.range"] == [49.4, 99.6]
    assert steps[2].args[0]["xaxis.range"] == [69.4, 119.6]  # the last page is full, ending at the last
    assert len(fig.data[0].x) == len(points)  # every point is drawn, not only the window's
    narrow = figures.scatter_figure(points, window=200)
    assert list(narrow.layout.xaxis.range) == [-0.6, 119.6] and not narrow.layout.sliders
