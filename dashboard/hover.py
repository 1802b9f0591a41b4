"""What the browser needs to link a hovered scatter point to its image, without asking the server."""

from __future__ import annotations

import base64
from urllib.parse import quote

import numpy as np
import pandas as pd

# Shown in the hovered-image panel while no point is hovered (dashboard/components.py hover_panel).
HOVER_HINT = "Hover a point in the chart to see its image, its CTR and its features."


def image_urls(template: str | None, business: str, source: str, images) -> list[str] | None:
    """Each image's picture URL from ``template`` ({business}, {source}, {image}, each URL-quoted)."""
    if not template:
        return None
    b, s = quote(str(business), safe=""), quote(str(source), safe="")
    try:
        return [template.format(business=b, source=s, image=quote(str(i), safe="")) for i in images]
    except (KeyError, IndexError, ValueError):
        return None


def typed_array(values, dtype) -> dict:
    """A numeric array in Plotly's base64 typed-array form, ``{"dtype": "i4", "bdata": "..."}``."""
    array = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": array.dtype.str[1:], "bdata": base64.b64encode(array.tobytes()).decode("ascii")}


def from_typed_array(value) -> np.ndarray:
    """The numpy array of a ``typed_array`` (or of a plain list, as older lookups sent)."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]).newbyteorder("<"))
    return np.asarray(value)


def _index_dtype(largest: int):
    return np.int16 if largest <= np.iinfo(np.int16).max else np.int32


def _by_image_then_code(image_of_point: np.ndarray, codes: np.ndarray, n_images: int, n_codes: int) -> np.ndarray:
    """The order ``np.lexsort((codes, image_of_point))`` gives (ties in row order), by two stable sorts.

    Each key is sorted as the smallest integer type that holds it, and NumPy sorts 16-bit keys
    by radix: 16 ms instead of lexsort's 67 at 662k points (10,000 images x 1,000 features).
    """
    by_code = np.argsort(codes.astype(_index_dtype(n_codes)), kind="stable")
    return by_code[np.argsort(image_of_point.astype(_index_dtype(n_images))[by_code], kind="stable")]


def hover_lookup(points: pd.DataFrame, shown: pd.DataFrame, *, token: str, urls_for=None, counts=None) -> dict:
    """What the browser needs to link a hovered point to its image without asking the server.

    ``point_image[i]`` is the image of scatter point *i*. Image *j*'s features (codes of the bar
    rows and scatter x) and their confidences in hundredths are ``image_codes`` and
    ``image_conf_pct`` from ``image_start[j]`` to ``image_start[j + 1]``. Every per-point array is a base64 typed array
    (see ``typed_array``); names are sent once per image and feature. ``urls_for(images)``
    gives picture URLs; ``counts`` maps image to (clicks, impressions).
    """
    codes = points["feature"].cat.codes.to_numpy(dtype=np.int64)
    image_of_point, images = pd.factorize(points["image"], sort=False)
    ctr = points["ctr"].to_numpy(dtype=np.float64)
    first = np.zeros(len(images), dtype=np.int64)
    first[image_of_point[::-1]] = np.arange(len(points))[::-1]
    # pd.factorize hashes each name once (85 ms at 662k points); np.unique sorts the strings (4x slower).
    order = _by_image_then_code(image_of_point, codes, len(images), int(codes.max(initial=0)))
    start = np.zeros(len(images) + 1, dtype=np.int64)
    np.cumsum(np.bincount(image_of_point, minlength=len(images)), out=start[1:])
    lookup = {
        "token": token,
        "features": shown["feature"].astype(str).tolist(),
        "impact": [None if not np.isfinite(v) else v * 100.0 for v in shown["impact"].to_numpy(dtype=np.float64)],
        "images": [str(i) for i in images],
        "ctr": typed_array(ctr[first] * 100.0, np.float32),
        "point_image": typed_array(image_of_point, _index_dtype(len(images))),
        "image_start": typed_array(start, np.int32),
        "image_codes": typed_array(codes[order], _index_dtype(len(shown))),
        # Hundredths fit a byte and are what the panel shows (two decimals).
        "image_conf_pct": typed_array(np.round(points["confidence"].to_numpy(dtype=np.float64)[order] * 100), np.uint8),
        "urls": urls_for(list(images)) if urls_for else None,
    }
    if counts is not None:
        lookup["clicks"] = [counts.get(i, (None, None))[0] for i in images]
        lookup["impressions"] = [counts.get(i, (None, None))[1] for i in images]
    return lookup
