"""The query parameters of /api/summary and of the page's URL, specified once.

Each parameter has a name, a type, a range or its choices, the API's default and the page's
default. ``parse_strict`` (the API) names every problem; ``parse_lenient`` (the page's URL and
its controls) takes the page's default for each value it cannot use. Both read values by the
same rules, so a value one accepts the other accepts too, and both hand the filter parameters
back as one ``data.filters.Filters``: the one place a query becomes the analysis' filters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from data.filters import (
    CONFIDENCE_RANGE,
    PREVALENCE_RANGE,
    SMALLEST_GROUP_SIZE,
    WEIGHTINGS,
    FilterError,
    Filters,
)
from data.names import name_length_problem, normal_name
from data.window import parse_day

MISSING = object()  # a parameter left out or blank


class QueryError(ValueError):
    """Query parameters that cannot be used; ``problems`` names each one."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class ParamError(ValueError):
    """One parameter's value cannot be used; the message says why."""


@dataclass(frozen=True)
class Param:
    """One query parameter: ``kind`` is "text", "number", "integer", "date" or "choice"."""

    name: str
    kind: str
    default: object = None  # the API's
    page_default: object = None  # the page's, when a URL leaves it out or gets it wrong
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False  # by the API; the page falls back to the store's default dataset
    fold_case: bool = False

    def parse(self, raw: str | float | None):
        """The value ``raw`` stands for, ``MISSING`` when absent or blank; raises ParamError.

        ``raw`` is a query's text, or a control's value as the browser sent it (a slider's
        number is checked as the number it is, never written out and read back).
        """
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if self.required:
                raise ParamError(f"{self.name} is required")
            return MISSING
        if not isinstance(raw, str):
            return self._typed(raw)
        text = raw.strip()
        if self.kind == "text":
            if "\x00" in raw:
                # PostgreSQL's text cannot hold it: refused on every engine, as in the written names.
                raise ParamError(f"{self.name} must not contain the NUL character (\\u0000)")
            # Names are stored in NFC and limited in length (data/names.py): read them by the same rule.
            if too_long := name_length_problem(raw):
                raise ParamError(f"{self.name}: {too_long}")
            return normal_name(raw)
        if self.kind == "number":
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            # NaN fails the comparison, so "nan" is refused along with text and out-of-range values.
            if not self.low <= value <= self.high:
                raise ParamError(f"{self.name} must be a number in [{self.low:g}, {self.high:g}], got {raw!r}")
            return value
        if self.kind == "date":
            try:
                return parse_day(text, self.name).isoformat()
            except ValueError as exc:
                raise ParamError(str(exc)) from None
        if self.kind == "integer":
            # isascii: other scripts' digits pass isdigit but are no build id anyone wrote.
            if not (text.isascii() and text.isdigit()) or _whole(text) < self.low:
                raise ParamError(f"{self.name} must be a whole number >= {self.low:g}, got {raw!r}")
            value = _whole(text)
            if self.high is not None and value > self.high:
                raise ParamError(f"{self.name} must be a whole number in [{self.low:g}, {self.high:g}], got {value}")
            return value
        key = text.casefold() if self.fold_case else raw
        if key not in self.choices:
            raise ParamError(f"{self.name} must be one of {', '.join(self.choices)}, got {raw!r}")
        return key

    def _typed(self, value):
        """A control's non-text value, checked by the same rules as its text."""
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.kind == "number" and numeric and self.low <= value <= self.high:
            return float(value)
        if (
            self.kind == "integer"
            and numeric
            and float(value).is_integer()
            and value >= self.low
            and (self.high is None or value <= self.high)
        ):
            return int(value)
        if self.kind in ("number", "integer"):
            return self.parse(repr(value))
        if self.kind == "date":
            raise ParamError(
                f"{self.name} must be a date written YYYY-MM-DD, got {value!r}"
            )  # refused, with the message its text would get
        raise ParamError(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}")


# Past any 64-bit id, and short enough for int() (which refuses over 4,300 digits).
_PAST_ANY_ID = 2**64


def _whole(digits: str) -> int:
    """The number ``digits`` writes; any number past 20 digits as one past every id (it names none)."""
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= 20 else _PAST_ANY_ID


PARAMS = {
    p.name: p
    for p in (
        Param("business", "text", required=True),
        Param("source", "text", required=True),
        Param("build_id", "integer", low=1),  # none: the current build
        Param("from_build", "integer", low=1, required=True),  # /api/drift's two builds
        Param("to_build", "integer", low=1, required=True),
        Param(
            "confidence",
            "number",
            default=Filters.confidence,
            page_default=0.5,
            low=CONFIDENCE_RANGE[0],
            high=CONFIDENCE_RANGE[1],
        ),
        # Features in a handful of images top and tail any impact ranking by chance alone, so the
        # page starts without those present in under 2% of the images; the API keeps them all.
        Param(
            "min_pct",
            "number",
            default=Filters.min_pct,
            page_default=2.0,
            low=PREVALENCE_RANGE[0],
            high=PREVALENCE_RANGE[1],
        ),
        Param(
            "max_pct",
            "number",
            default=Filters.max_pct,
            page_default=100.0,
            low=PREVALENCE_RANGE[0],
            high=PREVALENCE_RANGE[1],
        ),
        Param("min_n", "integer", low=SMALLEST_GROUP_SIZE),  # default: the MIN_GROUP_SIZE setting
        Param("weighting", "choice", default=Filters.weighting, page_default="mean", choices=WEIGHTINGS),
        # The window of dated metrics (inclusive days; either end open): Filters' date_from and date_to.
        Param("from", "date"),
        Param("to", "date"),
        Param("adjusted", "choice", default="0", page_default="0", choices=("0", "1")),
        Param("compare_build", "integer", low=1),  # the page's build comparison; none: off
        Param("shown", "choice", page_default="25", choices=("10", "25", "50", "all"), fold_case=True),
    )
}


def first_value(args: Mapping, name: str) -> str | float | None:
    """``args[name]`` as one value: the first of a list (``parse_qs``), None when absent or neither text nor a number."""
    value = args.get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


# Query parameters named otherwise in Filters (``from`` is a Python keyword).
FILTER_ALIASES = {"from": "date_from", "to": "date_to"}


def _pop_filters(values: dict, defaults: Mapping) -> Filters:
    """The filter parameters among ``values`` (removed from it) as one Filters; the others from ``defaults``."""
    for param, name in FILTER_ALIASES.items():
        if param in values:
            values[name] = values.pop(param)
    given = {name: values.pop(name) for name in Filters.names() if name in values}
    given.update({name: defaults[name] for name in Filters.names() if given.get(name) is None and name in defaults})
    # None: no default here (min_n without the MIN_GROUP_SIZE setting), so the Filters' own.
    return Filters(**{name: value for name, value in given.items() if value is not None})


def parse_strict(args: Mapping, names: Sequence[str], defaults: Mapping | None = None) -> dict:
    """The named parameters' values (``defaults`` overriding the API's); raises QueryError naming every problem.

    When ``names`` hold any filter parameter, those come back as one ``filters`` value instead.
    """
    defaults = defaults or {}
    values, problems = {}, []
    for name in names:
        param = PARAMS[name]
        try:
            value = param.parse(first_value(args, name))
        except ParamError as exc:
            problems.append(str(exc))
            value = MISSING
        values[name] = defaults.get(name, param.default) if value is MISSING else value
    if any(name in Filters.names() for name in names):
        try:
            values["filters"] = _pop_filters(values, defaults)
        except FilterError as exc:  # what no one parameter shows: min_pct above max_pct
            problems.extend(exc.problems)
    if problems:
        raise QueryError(problems)
    return values


def parse_with_own(args: Mapping, shared: Sequence[str], own: Mapping[str, Param], defaults=None) -> dict:
    """``parse_strict``'s values of the ``shared`` parameters, and beside them a route's ``own``
    (parameters outside PARAMS), each at its default when left out; raises QueryError naming every
    problem of both."""
    problems = []
    try:
        values = parse_strict(args, shared, defaults)
    except QueryError as exc:
        values, problems = {}, list(exc.problems)
    for name, param in own.items():
        try:
            value = param.parse(first_value(args, name))
        except ParamError as exc:
            problems.append(str(exc))
            continue
        values[name] = param.default if value is MISSING else value
    if problems:
        raise QueryError(problems)
    return values


def parse_lenient(args: Mapping, names: Sequence[str], defaults: Mapping | None = None) -> dict:
    """The named parameters' values, each missing or unusable one at the page's default (or ``defaults``').

    As ``parse_strict``, the filter parameters come back as one ``filters`` value; a prevalence
    range or window whose ends cross falls back to the page's whole default range.
    """
    defaults = defaults or {}
    values = {}
    for name in names:
        param = PARAMS[name]
        try:
            value = param.parse(first_value(args, name))
        except ParamError:
            value = MISSING
        values[name] = defaults.get(name, param.page_default) if value is MISSING else value
    if any(name in Filters.names() for name in names):
        try:
            values["filters"] = _pop_filters(dict(values), defaults)
        except FilterError:
            # Ends that cross (a prevalence range, a window) fall back to the whole range.
            values["min_pct"], values["max_pct"] = PARAMS["min_pct"].page_default, PARAMS["max_pct"].page_default
            values.update({name: None for name in FILTER_ALIASES if name in values})
            values["filters"] = _pop_filters(dict(values), defaults)
        for name in FILTER_ALIASES:
            values.pop(name, None)
        for name in Filters.names():
            values.pop(name, None)
    return values
