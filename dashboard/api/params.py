"""The query parameters of /api/summary and of the page's URL, specified once.

Each parameter has a name, a type, a range or its choices, the API's default and the page's
default. ``parse_strict`` (the API) names every problem; ``parse_lenient`` (the page's URL)
takes the page's default for each value it cannot use. Both read values by the same rules, so
a value one accepts the other accepts too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from data.analysis import WEIGHTINGS
from data.names import name_length_problem, normal_name

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
    """One query parameter: ``kind`` is "text", "number", "integer" or "choice"."""

    name: str
    kind: str
    default: object = None  # the API's
    page_default: object = None  # the page's, when a URL leaves it out or gets it wrong
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False  # by the API; the page falls back to the store's default dataset
    fold_case: bool = False

    def parse(self, raw: str | None):
        """The value ``raw`` stands for, ``MISSING`` when absent or blank; raises ParamError."""
        if raw is None or not raw.strip():
            if self.required:
                raise ParamError(f"{self.name} is required")
            return MISSING
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
        if self.kind == "integer":
            # isascii: other scripts' digits pass isdigit but are no build id anyone wrote.
            if not (text.isascii() and text.isdigit()) or _whole(text) < self.low:
                raise ParamError(f"{self.name} must be a whole number >= {self.low:g}, got {raw!r}")
            return _whole(text)
        key = text.casefold() if self.fold_case else raw
        if key not in self.choices:
            raise ParamError(f"{self.name} must be one of {', '.join(self.choices)}, got {raw!r}")
        return key


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
        Param("confidence", "number", default=0.0, page_default=0.5, low=0.0, high=1.0),
        # Features in a handful of images top and tail any impact ranking by chance alone, so the
        # page starts without those present in under 2% of the images; the API keeps them all.
        Param("min_pct", "number", default=0.0, page_default=2.0, low=0.0, high=100.0),
        Param("max_pct", "number", default=100.0, page_default=100.0, low=0.0, high=100.0),
        Param("min_n", "integer", low=2),  # default: the MIN_GROUP_SIZE setting
        Param("weighting", "choice", default="mean", page_default="mean", choices=WEIGHTINGS),
        Param("adjusted", "choice", default="0", page_default="0", choices=("0", "1")),
        Param("compare_build", "integer", low=1),  # the page's build comparison; none: off
        Param("shown", "choice", page_default="25", choices=("10", "25", "50", "all"), fold_case=True),
    )
}


def first_value(args: Mapping, name: str) -> str | None:
    """``args[name]`` as one string: the first of a list (``parse_qs``), None when absent or not text."""
    value = args.get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


def _range_problem(values: dict) -> str | None:
    low, high = values.get("min_pct"), values.get("max_pct")
    if low is not None and high is not None and low > high:
        return f"min_pct ({low:g}) must not exceed max_pct ({high:g})"
    return None


def parse_strict(args: Mapping, names: Sequence[str], defaults: Mapping | None = None) -> dict:
    """The named parameters' values (``defaults`` overriding the API's); raises QueryError naming every problem."""
    values, problems = {}, []
    for name in names:
        param = PARAMS[name]
        try:
            value = param.parse(first_value(args, name))
        except ParamError as exc:
            problems.append(str(exc))
            value = MISSING
        values[name] = (defaults or {}).get(name, param.default) if value is MISSING else value
    if problem := _range_problem(values):
        problems.append(problem)
    if problems:
        raise QueryError(problems)
    return values


def parse_lenient(args: Mapping, names: Sequence[str]) -> dict:
    """The named parameters' values, each missing or unusable one at the page's default."""
    values = {}
    for name in names:
        param = PARAMS[name]
        try:
            value = param.parse(first_value(args, name))
        except ParamError:
            value = MISSING
        values[name] = param.page_default if value is MISSING else value
    if _range_problem(values):
        values["min_pct"], values["max_pct"] = PARAMS["min_pct"].page_default, PARAMS["max_pct"].page_default
    return values
