"""The page's CSV downloads and their file names: the summary or the scatter points under a view's filters.

Pure (no Dash, no Flask, no store): the page's download buttons and GET /api/summary.csv and
/api/points.csv build their files here, and the tests check names and contents directly.
"""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

from data.analysis import POINT_COLUMNS, SUMMARY_COLUMNS, feature_summary, scatter_points
from data.filters import Filters


def slugify(text, *, max_length: int = 60, fallback: str = "dataset") -> str:
    """A file-name-safe slug: accents folded, lower case, anything but letters and digits -> '-'.

    Letters of other scripts are kept (a browser saves them fine); quotes, slashes, dots and
    control characters never survive, so the result cannot leave the download folder.
    """
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    slug = re.sub(r"[\W_]+", "-", text).strip("-")
    slug = slug[:max_length].rstrip("-")
    return slug or fallback


def download_filename(business: str, source: str, build_id: int, filters: Filters, kind: str) -> str:
    """``northwind-outfitters_vision_build-2_conf-0.50_prev-2-100_mean_summary.csv``."""
    parts = [
        slugify(business),
        slugify(source, fallback="source"),
        f"build-{int(build_id)}",
        f"conf-{filters.confidence:.2f}",
        f"prev-{filters.min_pct:g}-{filters.max_pct:g}",
        filters.weighting,
    ]
    if filters.window is not None:  # a file of a window says which (none: every day, as before windows)
        parts.append(f"days-{filters.window.label()}")
    parts.append(kind)
    return "_".join(parts) + ".csv"


# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_safe_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it rather than runs it: ``'`` before a formula start unless a plain number."""
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _to_csv(frame: pd.DataFrame) -> str:
    """``frame`` as CSV with names neutralised: floats exact, NaN empty, CRLF rows.

    CRLF (RFC 4180) rather than LF: Python's csv writer quotes a cell holding any character of
    the line terminator, so a name with a bare CR is quoted instead of splitting its row.
    """
    frame = frame.copy()
    for column in frame.columns:
        dtype = frame[column].dtype
        if (
            pd.api.types.is_object_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(dtype)
        ):
            cells = [csv_safe_cell(v) if isinstance(v, str) else v for v in frame[column]]
            frame[column] = pd.Series(cells, index=frame.index, dtype=object)
    return frame.to_csv(index=False, lineterminator="\r\n")


def summary_csv(summary: pd.DataFrame) -> str:
    """The summary's columns as CSV, floats written exactly (shortest round-trip repr), NaN empty."""
    return _to_csv(summary[SUMMARY_COLUMNS])


def points_csv(points: pd.DataFrame) -> str:
    """The scatter points (image, feature, confidence, ctr) as CSV, floats written exactly."""
    return _to_csv(points[POINT_COLUMNS])


CSV_KINDS = ("summary", "points")


def csv_download(
    dataset,
    *,
    business: str,
    source: str,
    build_id: int,
    filters: Filters,
    kind: str,
    cache=None,
) -> tuple[str, str]:
    """``(file name, CSV text)`` of a dataset's summary or scatter points under ``filters``.

    The page's download buttons and GET /api/summary.csv and /api/points.csv all call this, so
    a file has the same name and rows whichever way it was fetched (``cache``: the app's
    AnalysisCache). Raises WeightingUnavailable.
    """
    summary = feature_summary(dataset, filters, cache=cache, wait=True)  # a file keeps exact p-values
    if kind == "summary":
        content = summary_csv(summary)
    else:
        content = points_csv(scatter_points(dataset, filters, features=summary["feature"]))
    name = download_filename(business, source, build_id, filters, kind)
    return name, content
