"""Pure validation of write payloads: plain Python objects in, store-ready batches or problems out.

The validators return ``(result, problems)``: ``result`` is None exactly when ``problems`` is
not empty. Problems are named by their place, e.g.
``image "img_12" feature "azure_x": value must be a number in [0, 1], got "high"``, and are
capped at ``MAX_PROBLEMS`` with a final ``... and N more problems`` line.
"""

from __future__ import annotations

import json
import math
from itertools import compress, repeat

import pandas as pd

from data.batches import FeatureBatch, ctr_frame
from data.names import is_normal_name, name_length_problem, normal_name
from data.window import parse_day

MAX_PROBLEMS = 50

FEATURES_LAYOUT = '{"<image>": {"<feature>": <confidence in [0, 1]>, ...}, ...}'
CTR_LAYOUT = '{"<image>": <ctr in [0, 1]>, ...} or {"<image>": {"clicks": <int >= 0>, "impressions": <int > 0>}, ...}'
_COUNT_KEYS = ("clicks", "impressions")
# The largest count every JSON client reads exactly (a double's integer range); it also fits the
# store's 64-bit integer columns on SQLite and PostgreSQL and pandas' Int64.
MAX_COUNT = 2**53 - 1
_NUMBER_TYPES = frozenset((int, float))
_at_most_one = (1.0).__ge__
_at_least_zero = (0.0).__le__


class Problems:
    """Collects problem messages, keeping the first ``limit`` and counting the rest."""

    def __init__(self, limit: int = MAX_PROBLEMS):
        self.limit = limit
        self.count = 0
        self._kept: list[str] = []

    def add(self, message: str) -> None:
        """Record one problem."""
        self.count += 1
        if len(self._kept) < self.limit:
            self._kept.append(message)

    def __bool__(self) -> bool:
        return self.count > 0

    def report(self) -> list[str]:
        """The kept messages, plus a line counting those left out."""
        hidden = self.count - len(self._kept)
        return self._kept + ([f"... and {hidden} more problems"] if hidden else [])


class _NonFinite:
    """What NaN, Infinity and -Infinity parse to, so that validation names them by place."""

    __slots__ = ("literal",)

    def __init__(self, literal: str):
        self.literal = literal


class _ObjectWithDuplicates(dict):
    """A JSON object that repeated a key; being a dict subclass, it fails the fast path's checks."""

    duplicates: list[str]


def _object_pairs(pairs):
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    # json.loads would silently keep the last value of a repeated name; that hides a client bug.
    flagged = _ObjectWithDuplicates(obj)
    seen: set = set()
    flagged.duplicates = [k for k, _ in pairs if k in seen or seen.add(k)]
    return flagged


def parse_json_body(raw: bytes) -> tuple[object, list[str]]:
    """Decode a request body as strict UTF-8 JSON (a leading BOM is allowed); NaN/Infinity stay visible."""
    if not raw or raw.isspace():
        return None, ["body is empty: expected a JSON object"]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [f"body is not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}"]
    try:
        return json.loads(text, parse_constant=_NonFinite, object_pairs_hook=_object_pairs), []
    except json.JSONDecodeError as exc:
        return None, [f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
    except (ValueError, RecursionError) as exc:
        # Over-long integer literals raise ValueError, absurd nesting RecursionError.
        return None, [f"body is not valid JSON: {exc}"]


def validate_target(business, source, *, labels=("Business header", "Image-Source header")) -> list[str]:
    """Problems with the (business, source) a write is for: each must be a non-blank string."""
    problems = []
    for value, label in zip((business, source), labels):
        if value is None:
            problems.append(f"{label} is missing")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"{label} must not be empty")
        elif "\x00" in value:  # PostgreSQL's text cannot hold it: refused on every engine
            problems.append(f"{label} must not contain the NUL character (\\u0000)")
        elif too_long := name_length_problem(value):
            problems.append(f"{label}: {too_long}")
    return problems


def target_names(business, source) -> tuple:
    """The (business, source) of a write as stored: each name in Unicode NFC (None stays None)."""
    return tuple(normal_name(v) if isinstance(v, str) else v for v in (business, source))


def show(value) -> str:
    """A short rendering of a received value for a problem message, as JSON would spell it."""
    if isinstance(value, _NonFinite):
        return value.literal
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return f"an object with {_count(len(value), 'key')}"
    if isinstance(value, list):
        return f"a list of {_count(len(value), 'item')}"
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _quoted(name) -> str:
    return json.dumps(name, ensure_ascii=False) if isinstance(name, str) else show(name)


def is_unicode_text(text: str) -> bool:
    """False when ``text`` holds a lone surrogate (a JSON ``\\ud800`` escape), which no encoding can store,
    or a NUL, which PostgreSQL's text cannot (refused on every engine, so a body means the same on each)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _name_problem(name) -> str | None:
    if not isinstance(name, str):
        return f"name must be a string, got {show(name)}"
    if not name.strip():
        return "name must not be empty"
    if "\x00" in name:
        return "name must not contain the NUL character (\\u0000)"
    if not is_unicode_text(name):
        return "name must be Unicode text, got a lone surrogate (an unpaired \\ud800-\\udfff escape)"
    return name_length_problem(name)


def _entries(doc, layout: str, problems: Problems):
    """Yield (place, image, value) per image of a body, recording body and image-name problems."""
    if not isinstance(doc, dict):
        problems.add(f"body must be a JSON object {layout}, got {show(doc)}")
    elif not doc:
        problems.add(f"body has no images: expected {layout}")
    else:
        yield from _named(doc, "image", problems)


def _named(mapping: dict, label: str, problems: Problems):
    """Yield (place, name, value) per entry, recording repeated and blank names."""
    for name in getattr(mapping, "duplicates", ()):
        problems.add(f"{label} {_quoted(name)}: appears more than once")
    seen: set = set()
    for name, value in mapping.items():
        place = f"{label} {_quoted(name)}"
        bad_name = _name_problem(name)
        if bad_name:
            problems.add(f"{place}: {bad_name}")
        elif (name := normal_name(name)) in seen:
            problems.add(
                f"{place}: appears more than once once written in Unicode NFC (e.g. an accent sent both composed and decomposed)"
            )
        seen.add(name)
        yield place, name, value


def _is_number(value) -> bool:
    return type(value) in _NUMBER_TYPES


def _is_confidence(value) -> bool:
    return type(value) in _NUMBER_TYPES and 0 <= value <= 1


# -- features ------------------------------------------------------------------------------


def validate_features(doc) -> tuple[FeatureBatch | None, list[str]]:
    """A FeatureBatch from ``{image: {feature: confidence}}``, or every problem found.

    Features missing from an image, and zero values, mean 0 and are not kept as values. The
    feature list is the union over images in first-seen order; an image with ``{}`` is kept.
    """
    if type(doc) is dict and doc:
        batch = _features_fast(doc)
        if batch is not None:
            return batch, []
    return features_checked(doc)


def _features_fast(doc: dict) -> FeatureBatch | None:
    """The happy path at C speed (maps over whole rows); None means "look closer"."""
    features: dict[str, int] = {}
    values: list[tuple[int, int, float]] = []
    extend = values.extend
    feature_index = features.__getitem__
    only_numbers = _NUMBER_TYPES.issuperset
    for i, (image, row) in enumerate(doc.items()):
        if (
            type(row) is not dict
            or type(image) is not str
            or not image.strip()
            or not is_unicode_text(image)
            or not is_normal_name(image)
        ):
            return None
        if not row:
            continue
        confidences = row.values()
        # bool is not in _NUMBER_TYPES; NaN fails both range checks.
        if not (
            only_numbers(map(type, confidences))
            and all(map(_at_most_one, confidences))
            and all(map(_at_least_zero, confidences))
        ):
            return None
        names = row.keys()
        if not features.keys() >= names:
            for name in names:
                if name not in features:
                    if (
                        type(name) is not str
                        or not name.strip()
                        or not is_unicode_text(name)
                        or not is_normal_name(name)
                    ):
                        return None
                    features[name] = len(features)
        extend(zip(repeat(i), map(feature_index, compress(names, confidences)), compress(confidences, confidences)))
    return FeatureBatch(list(doc), list(features), values)


def features_checked(doc) -> tuple[FeatureBatch | None, list[str]]:
    """The same result as validate_features, one value at a time, naming every problem."""
    problems = Problems()
    features: dict[str, int] = {}
    images: list[str] = []
    values = []
    for i, (place, image, row) in enumerate(_entries(doc, FEATURES_LAYOUT, problems)):
        images.append(image)
        if not isinstance(row, dict):
            problems.add(f"{place}: must be an object of feature -> confidence, got {show(row)}")
            continue
        for where, feature, value in _named(row, f"{place} feature", problems):
            j = features.setdefault(feature, len(features))
            if not _is_confidence(value):
                problems.add(f"{where}: value must be a number in [0, 1], got {show(value)}")
            elif value:
                values.append((i, j, value))
    if problems:
        return None, problems.report()
    return FeatureBatch(images, list(features), values), []


# -- CTR -----------------------------------------------------------------------------------


def validate_ctr(doc) -> tuple[pd.DataFrame | None, list[str]]:
    """A CTR frame (image, ctr, clicks, impressions) from either accepted layout, or every problem.

    One body uses one layout: plain CTRs, or click and impression counts (ctr = clicks /
    impressions, both counts kept).
    """
    problems = Problems()
    rates: dict[str, float] = {}
    counts: dict[str, tuple[int, int]] = {}
    for place, image, value in _entries(doc, CTR_LAYOUT, problems):
        if _is_number(value):
            if 0 <= value <= 1:
                rates[image] = float(value)
            else:
                problems.add(f"{place}: CTR must be a number in [0, 1], got {show(value)}")
        elif isinstance(value, dict):
            pair = _counts(value, place, problems)
            if pair:
                counts[image] = pair
        else:
            problems.add(
                f'{place}: expected a CTR in [0, 1] or {{"clicks": <int>, "impressions": <int>}}, got {show(value)}'
            )
    if rates and counts:
        problems.add(
            f"body mixes plain CTRs (e.g. image {_quoted(next(iter(rates)))}) with click and "
            f"impression counts (e.g. image {_quoted(next(iter(counts)))}): use one layout for every image"
        )
    if problems:
        return None, problems.report()
    if counts:
        clicks, impressions = zip(*counts.values())
        return ctr_frame(list(counts), [c / n for c, n in counts.values()], list(clicks), list(impressions)), []
    return ctr_frame(list(rates), list(rates.values())), []


def _counts(value: dict, place: str, problems: Problems, least_impressions: int = 1) -> tuple[int, int] | None:
    """(clicks, impressions) from one counts object, or None after recording problems."""
    before = problems.count
    for name in getattr(value, "duplicates", ()):
        problems.add(f"{place}: {_quoted(name)} appears more than once")
    for key in value:
        if key not in _COUNT_KEYS:
            problems.add(f'{place}: unexpected key {_quoted(key)}, expected only "clicks" and "impressions"')
    for key, lowest in zip(_COUNT_KEYS, (0, least_impressions)):
        if key not in value:
            problems.add(f'{place}: "{key}" is missing')
        elif type(value[key]) is not int or value[key] < lowest:
            problems.add(f'{place} "{key}": must be a whole number >= {lowest}, got {show(value[key])}')
        elif value[key] > MAX_COUNT:
            problems.add(
                f'{place} "{key}": out of range, must be at most {MAX_COUNT} (2**53 - 1), got {show(value[key])}'
            )
    if problems.count > before:
        return None
    clicks, impressions = value["clicks"], value["impressions"]
    if clicks > impressions:
        problems.add(f"{place}: clicks ({clicks}) must not exceed impressions ({impressions})")
        return None
    return clicks, impressions


# -- dated metrics -------------------------------------------------------------------------

METRICS_LAYOUT = '{"<image>": {"<YYYY-MM-DD>": {"clicks": <int >= 0>, "impressions": <int >= 0>}, ...}, ...}'


def validate_metrics(doc, *, allow_empty: bool = False) -> tuple[pd.DataFrame | None, list[str]]:
    """Dated metrics (image, day, clicks, impressions) from ``{image: {day: {clicks, impressions}}}``, or every problem.

    Days are ISO dates (``2026-03-01``); clicks and impressions whole numbers >= 0, clicks at most
    impressions (a day without impressions is kept: the image was not shown). ``allow_empty``
    accepts ``{}`` (PUT: remove the dataset's dated metrics).
    """
    problems = Problems()
    rows: list[tuple[str, str, int, int]] = []
    if allow_empty and isinstance(doc, dict) and not doc:
        return pd.DataFrame(rows, columns=["image", "day", "clicks", "impressions"]), []
    for place, image, days in _entries(doc, METRICS_LAYOUT, problems):
        if not isinstance(days, dict):
            problems.add(
                f'{place}: must be an object of day -> {{"clicks": ..., "impressions": ...}}, got {show(days)}'
            )
            continue
        if not days:
            problems.add(f"{place}: has no days")
        for name in getattr(days, "duplicates", ()):
            problems.add(f"{place} day {_quoted(name)}: appears more than once")
        for day, value in days.items():
            where = f"{place} day {_quoted(day)}"
            try:
                day = parse_day(day, "day").isoformat()
            except ValueError:
                problems.add(f"{where}: must be a date written YYYY-MM-DD, got {show(day)}")
                continue
            if not isinstance(value, dict):
                problems.add(f'{where}: expected {{"clicks": <int>, "impressions": <int>}}, got {show(value)}')
                continue
            pair = _counts(value, where, problems, least_impressions=0)
            if pair:
                rows.append((image, day, *pair))
    if problems:
        return None, problems.report()
    return pd.DataFrame(rows, columns=["image", "day", "clicks", "impressions"]), []


def image_name_problem(name) -> str | None:
    """Why ``name`` cannot name an image (the rule of the features PUT), or None when it can."""
    return _name_problem(name)
