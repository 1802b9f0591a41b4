"""What the browser needs to link a hovered scatter point to its image, without asking the server."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping
from urllib.parse import quote

import numpy as np
import pandas as pd

from dashboard.api.gallery import thumbnail_url

# Shown in the hovered-image panel while no point is hovered (dashboard/components.py hover_panel).
HOVER_HINT = "Hover a point in the chart to see its image, its CTR and its features."


def image_urls(
    template: str | None, business: str, source: str, images, stored: Mapping[str, str] | None = None
) -> list[str] | None:
    """Each image's picture URL: its stored thumbnail (``stored`` maps image to etag) when there is
    one, else from ``template`` ({business}, {source}, {image}, each URL-quoted); None when neither gives any."""
    stored = stored or {}
    from_template = None
    if template:
        b, s = quote(str(business), safe=""), quote(str(source), safe="")
        try:
            from_template = [template.format(business=b, source=s, image=quote(str(i), safe="")) for i in images]
        except (KeyError, IndexError, ValueError):
            from_template = None
    if not stored:
        return from_template
    return [
        thumbnail_url(business, source, i, stored[i]) if i in stored else (from_template[k] if from_template else None)
        for k, i in enumerate(map(str, images))
    ]


def typed_array(values, dtype) -> dict:
    """A numeric array in Plotly's base64 typed-array form, ``{"dtype": "i4", "bdata": "..."}``."""
    array = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": array.dtype.str[1:], "bdata": base64.b64encode(array.tobytes()).decode("ascii")}


def from_typed_array(value) -> np.ndarray:
    """The numpy array of a ``typed_array`` (or of a plain list, as older lookups sent)."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]).newbyteorder("<"))
    return np.asarray(value)


# Between the names of a packed list: image names never hold a NUL (the write path refuses it).
NAME_SEPARATOR = "\x00"


def packed_names(names: list[str]) -> dict | list[str]:
    """``names`` as one zlib stream (base64) of the names joined by NUL, ``{"count", "deflate"}``,
    which the browser inflates with DecompressionStream("deflate"); the plain list when a name
    holds a NUL. Image names repeat their parts (a campaign, a template): 540 kB of names at
    10,000 images pack into 57 kB."""
    if any(NAME_SEPARATOR in n for n in names):
        return list(names)
    raw = NAME_SEPARATOR.join(names).encode("utf-8", "surrogatepass")
    return {"count": len(names), "deflate": base64.b64encode(zlib.compress(raw, 6)).decode("ascii")}


def unpacked_names(value) -> list[str]:
    """The names of a ``packed_names`` value (or of a plain list)."""
    if isinstance(value, dict):
        if not value["count"]:
            return []
        text = zlib.decompress(base64.b64decode(value["deflate"])).decode("utf-8", "surrogatepass")
        return text.split(NAME_SEPARATOR)
    return list(value)


def _counts_array(values: list):
    """Clicks or impressions per image as the smallest unsigned typed array that holds them, or the
    plain list (None where unknown) when one is missing or not a whole number."""
    if not values or any(v is None for v in values):
        return values
    array = np.asarray(values, dtype=np.float64)
    if not (np.isfinite(array).all() and (array == np.round(array)).all() and array.min() >= 0):
        return values
    if array.max() > np.iinfo(np.uint32).max:
        return values
    return typed_array(array, _index_dtype(int(array.max())))


def _index_dtype(largest: int):
    """The smallest unsigned integer type that holds ``largest`` (up to 32 bits, as the browser reads them)."""
    return next((d for d in (np.uint8, np.uint16) if largest <= np.iinfo(d).max), np.uint32)


def _image_of_point(names: pd.Series, images) -> tuple[np.ndarray, np.ndarray]:
    """Each point's image as an index into the images that have points, and those images' names.

    With ``images`` (every name the points may hold, e.g. the build's), each name is looked up
    in a table of those: 16 ms at 662k points, where ``pd.factorize`` hashes them into a growing
    table in 83 ms. The images keep the order of ``images``, else of their first point.
    """
    if images is not None:
        candidates = pd.Index(np.asarray(images, dtype=object), dtype=object)
        if candidates.is_unique:
            rows = candidates.get_indexer(names)
            if len(rows) and rows.min() >= 0:
                used = np.zeros(len(candidates), dtype=bool)
                used[rows] = True
                remap = np.cumsum(used) - 1
                return remap[rows], candidates.to_numpy()[used]
    image_of_point, uniques = pd.factorize(names, sort=False)
    return image_of_point, np.asarray(uniques, dtype=object)


def hover_lookup(
    points: pd.DataFrame,
    shown: pd.DataFrame,
    *,
    token: str,
    images=None,
    urls_for=None,
    counts=None,
    drawn_in_part: bool = False,
) -> dict:
    """What the browser needs to link a hovered point to its image without asking the server.

    Only what the scatter's own trace does not carry: ``point_image[i]`` is the image of scatter
    point *i* (an index into the lookup's ``images``, the names of the images with points), and
    ``point_conf_pct[i]`` its confidence in hundredths, both base64 typed arrays (see
    ``typed_array``) of the smallest integer type that holds them. The browser groups the points
    by image itself and reads each point's feature (the code of the bar rows, ``features``) and
    its image's CTR from the trace's x and y. Names are sent once per image and feature, the
    images' packed (``packed_names``; ``unpacked_names`` reads them), and clicks and impressions
    as typed arrays when all are whole numbers. The
    argument ``images`` lists the names the points may hold (faster than hashing every point's
    name; see ``_image_of_point``); ``urls_for(images)`` gives picture URLs; ``counts`` maps
    image to (clicks, impressions).

    With ``drawn_in_part`` (the scatter's trace holds only some features' points: see
    ``figures.scatter_figure``'s ``draw_limit``) the lookup also carries what the page needs to
    draw the rest and to link points it has not drawn: ``feature_start`` (int32, the first point
    of each feature on the scatter's x axis, the features of ``features`` that have points, and
    the number of points: the points are feature-major) and
    ``image_ctr_pct`` (float32, each image's CTR in percent, the scatter's y of its points).
    """
    image_of_point, names = _image_of_point(points["image"], images)
    names = [str(i) for i in names]
    lookup = {
        "token": token,
        "features": shown["feature"].astype(str).tolist(),
        "impact": [None if not np.isfinite(v) else v * 100.0 for v in shown["impact"].to_numpy(dtype=np.float64)],
        "images": packed_names(names),
        "point_image": typed_array(image_of_point, _index_dtype(max(len(names) - 1, 0))),
        # Hundredths fit a byte and are what the panel shows (two decimals).
        "point_conf_pct": typed_array(np.round(points["confidence"].to_numpy(dtype=np.float64) * 100), np.uint8),
        "urls": urls_for(names) if urls_for else None,
    }
    if drawn_in_part:
        # By the scatter's codes: its x axis lists only the features that have points.
        per_feature = np.bincount(points["feature"].cat.codes.to_numpy(), minlength=len(shown))
        starts = np.concatenate([[0], np.cumsum(per_feature[per_feature > 0])])
        lookup["feature_start"] = typed_array(starts, np.int32)
        ctr = np.zeros(len(names), dtype=np.float32)
        ctr[image_of_point] = (points["ctr"].to_numpy(dtype=np.float64) * 100.0).astype(np.float32)
        lookup["image_ctr_pct"] = typed_array(ctr, np.float32)
    if counts is not None:
        lookup["clicks"] = _counts_array([counts.get(i, (None, None))[0] for i in names])
        lookup["impressions"] = _counts_array([counts.get(i, (None, None))[1] for i in names])
    return lookup
