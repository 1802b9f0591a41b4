"""Helpers shared by the test files: loading a wide frame, dense matrices, the pandas reference summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.batches import FeatureBatch, ctr_frame

CORE_COLUMNS = ["feature", "n_with", "n_without", "prevalence_pct", "avg_ctr_with", "avg_ctr_without", "impact"]


def load_frame(store, frame: pd.DataFrame, business: str, source: str, *, ctr: bool = True) -> None:
    """Store a wide frame (image_name, ctr, one column per feature) as a build, and its CTRs unless ``ctr`` is False."""
    store.add_build(business, source, FeatureBatch.from_wide(frame))
    if ctr:
        store.replace_ctr(business, source, ctr_frame(frame["image_name"], frame["ctr"]))


def dense_batch(batch: FeatureBatch) -> np.ndarray:
    """A batch's values as a dense image x feature matrix."""
    matrix = np.zeros((len(batch.images), len(batch.features)))
    for i, j, c in batch.values:
        matrix[i, j] = c
    return matrix


def dense_doc(doc: dict, images, features) -> np.ndarray:
    """The confidences of a PUT /api/features body as an image x feature matrix in the given order."""
    return np.array([[doc[i].get(f, 0.0) for f in features] for i in images], dtype=np.float64)


def pandas_summary(frame: pd.DataFrame, threshold: float, min_pct: float = 0.0, max_pct: float = 100.0) -> pd.DataFrame:
    """The original dashboard's numbers, feature by feature, in plain pandas (independent of data.analysis)."""
    known = frame["ctr"].notna()
    rows = []
    for feature in frame.columns.drop(["image_name", "ctr"]):
        present = frame[feature] > threshold
        prevalence = 100 * int(present.sum()) / len(frame)
        with_ctr = frame.loc[present & known, "ctr"]
        without_ctr = frame.loc[~present & known, "ctr"]
        if not (min_pct <= prevalence <= max_pct) or len(with_ctr) == 0:
            continue
        rows.append(
            {
                "feature": feature,
                "n_with": len(with_ctr),
                "n_without": len(without_ctr),
                "prevalence_pct": prevalence,
                "avg_ctr_with": with_ctr.mean(),
                "avg_ctr_without": without_ctr.mean(),
                "impact": with_ctr.mean() - without_ctr.mean(),
            }
        )
    expected = pd.DataFrame(rows, columns=CORE_COLUMNS)
    expected = expected.astype(
        {"feature": object, "n_with": "int64", "n_without": "int64"} | {c: "float64" for c in CORE_COLUMNS[3:]}
    )
    # Highest impact first, undefined impact last, ties by name.
    expected["_undefined"] = expected["impact"].isna()
    expected = expected.sort_values(["_undefined", "impact", "feature"], ascending=[True, False, True])
    return expected.drop(columns="_undefined").reset_index(drop=True)


def refined_get(client, url: str, query: dict):
    """GET a read of the API as it answers once every null it draws behind a provisional answer
    (a new time window's, ``data/refine.py``) is stored: asked again after the app's refiner is done."""
    answer = client.get(url, query_string=query)
    if answer.status_code == 200 and answer.get_json().get("provisional"):
        refiner = client.application.extensions["feature_store"].cache.refiner
        assert refiner.wait(120), "the full null was not drawn"
        answer = client.get(url, query_string=query)
        assert answer.get_json()["provisional"] is False
    return answer


def chart_rows(trace, attribute: str):
    """Every row's values of a bar chart's trace attribute (``"x"``, ``"y"``, ``"marker.color"``): from
    the trace's meta when the chart is drawn in part (``dashboard.figures.bars`` ``draw_limit``)."""
    meta = trace.meta if hasattr(trace, "meta") else trace.get("meta")
    if isinstance(meta, dict) and "full" in meta:
        return meta["full"][attribute]
    value = trace
    for key in attribute.split("."):
        value = value[key]
    return value
