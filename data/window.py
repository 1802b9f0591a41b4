"""A time window over dated metrics: inclusive first and last days, either open.

``Window()`` is every stored day. The read API takes one as ``from``/``to`` (``data/filters.py``
holds them as ``date_from``/``date_to``); the store sums each image's clicks and impressions
over its days (``data/metrics_queries.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class WindowError(ValueError):
    """Window bounds that cannot be used; ``problems`` names each one."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_day(value, name: str = "day") -> date:
    """A ``datetime.date`` from a date or ``YYYY-MM-DD`` text; raises ValueError naming ``name``."""
    if isinstance(value, date):
        return value if type(value) is date else date(value.year, value.month, value.day)
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{name} must be a date written YYYY-MM-DD, got {value!r}")


def iso_day(value, name: str = "day", problems: list[str] | None = None) -> str | None:
    """``value`` (a date, ISO text or None) as ISO text or None; a bad value is added to ``problems`` (or raised)."""
    if value is None:
        return None
    try:
        return parse_day(value, name).isoformat()
    except ValueError as exc:
        if problems is None:
            raise
        problems.append(str(exc))
        return None


@dataclass(frozen=True)
class Window:
    """Days ``start`` to ``end`` inclusive (ISO text); None leaves that end open."""

    start: str | None = None
    end: str | None = None

    def __post_init__(self):
        problems: list[str] = []
        object.__setattr__(self, "start", iso_day(self.start, "from", problems))
        object.__setattr__(self, "end", iso_day(self.end, "to", problems))
        if not problems and self.start and self.end and self.start > self.end:
            problems.append(f"from ({self.start}) must not be after to ({self.end})")
        if problems:
            raise WindowError(problems)

    @property
    def is_everything(self) -> bool:
        """Whether the window is every stored day (both ends open)."""
        return self.start is None and self.end is None

    def as_dict(self) -> dict:
        """``{"from": ..., "to": ...}`` as the API states the window (None: open)."""
        return {"from": self.start, "to": self.end}

    def label(self) -> str:
        """A file-name part: ``2026-01-01_2026-01-31``, an open end written ``start`` or ``end``."""
        return f"{self.start or 'start'}_{self.end or 'end'}"


# The recent windows analysts look at first (the page's presets): their null tables are drawn
# when dated metrics land, so that choosing one is as quick as a slider move.
RECENT_DAYS = (7, 30, 90)


def recent(days: int, first_day, last_day) -> Window:
    """The last ``days`` days up to ``last_day``, not before ``first_day`` (the data's extent)."""
    first, last = parse_day(first_day, "first day"), parse_day(last_day, "last day")
    return Window(max(last - timedelta(days=days - 1), first).isoformat(), last.isoformat())


def recent_windows(first_day, last_day) -> list[Window]:
    """``recent`` for each of RECENT_DAYS, without repeats (a short extent gives one window several times)."""
    return list(dict.fromkeys(recent(days, first_day, last_day) for days in RECENT_DAYS))
