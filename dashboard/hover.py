"""What the browser needs to link a hovered scatter point to its image, without asking the server."""

from __future__ import annotations

from urllib.parse import quote

import numpy as np
import pandas as pd

# Shown in the hovered-image panel until a point is hovered; the browser gets it with the lookup.
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


def hover_lookup(points: pd.DataFrame, shown: pd.DataFrame, *, token: str, urls_for=None, counts=None) -> dict:
    """What the browser needs to link a hovered point to its image without asking the server.

    ``point_image[i]`` is the image of scatter point *i*; each image lists the codes (bar rows
    and scatter x) of its features with their confidences. ``urls_for(images)`` gives picture
    URLs; ``counts`` maps image to (clicks, impressions).
    """
    codes = points["feature"].cat.codes.to_numpy(dtype=np.int64)
    image_of_point, images = pd.factorize(points["image"], sort=False)
    ctr = points["ctr"].to_numpy(dtype=np.float64)
    first = np.zeros(len(images), dtype=np.int64)
    first[image_of_point[::-1]] = np.arange(len(points))[::-1]
    order = np.lexsort((codes, image_of_point))
    bounds = np.cumsum(np.bincount(image_of_point, minlength=len(images)))[:-1]
    conf = np.round(points["confidence"].to_numpy(dtype=np.float64), 4)
    lookup = {
        "token": token,
        "features": shown["feature"].astype(str).tolist(),
        "impact": [None if not np.isfinite(v) else v * 100.0 for v in shown["impact"].to_numpy(dtype=np.float64)],
        "images": [str(i) for i in images],
        "ctr": (ctr[first] * 100.0).tolist(),
        "point_image": image_of_point.tolist(),
        "image_codes": [c.tolist() for c in np.split(codes[order], bounds)],
        "image_conf": [c.tolist() for c in np.split(conf[order], bounds)],
        "urls": urls_for(list(images)) if urls_for else None,
        "hint": HOVER_HINT,  # the panel's text once the pointer leaves the points
    }
    if counts is not None:
        lookup["clicks"] = [counts.get(i, (None, None))[0] for i in images]
        lookup["impressions"] = [counts.get(i, (None, None))[1] for i in images]
    return lookup
