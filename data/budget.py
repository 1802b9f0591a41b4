"""What one request may cost: a time budget, checked between chunks of work.

The edges (a web request, a page callback) open a budget with ``limit``; long computations in
``data/`` call ``check`` on ``current()`` between chunks of features. A notebook or the CLI opens
none, so their work is unbounded. The work stops with ``BudgetExceeded`` once the deadline has
passed, or as soon as the work done so far shows it cannot fit (``fits`` False: the same request
would be refused again on an idle server), and with ``ClientGone`` once the caller says nobody is
waiting for the answer any more. Pure Python, no I/O of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

# A cancellation callback may cost a system call: ask it at most this often.
CANCEL_INTERVAL = 0.1
# Stop early, before the deadline, once the CPU time projected for the whole job is this many
# times the budget and at least this share of the budget has been spent on it: such a request
# cannot fit whatever the load.
HOPELESS_FACTOR = 2.0
HOPELESS_AFTER = 0.1


class BudgetExceeded(Exception):
    """The work would take longer than the request's budget.

    ``fits`` says whether it could fit on a less busy server (retry later) or not at this
    budget at all (ask for less, or raise the budget); ``needed`` is the projected CPU seconds
    of the whole job (None when unknown).
    """

    def __init__(self, message: str, *, seconds: float, fits: bool, needed: float | None = None):
        super().__init__(message)
        self.seconds = seconds
        self.fits = fits
        self.needed = needed


class ClientGone(Exception):
    """Nobody waits for the answer any more: the work was abandoned."""


class Budget:
    """A deadline ``seconds`` from now (None: no deadline) and an optional cancellation check."""

    def __init__(self, seconds: float | None = None, cancelled: Callable[[], bool] | None = None, *, clock=None):
        if seconds is not None and not seconds > 0:
            raise ValueError("a budget must be a positive number of seconds")
        self.seconds = seconds
        self.cancelled = cancelled
        self._clock = clock or time.monotonic
        self._cpu = time.thread_time
        self.started = self._clock()
        self._cpu_started = self._cpu()
        self._asked = -float("inf")

    @property
    def elapsed(self) -> float:
        """Seconds since the budget was opened."""
        return self._clock() - self.started

    def check(self, done: float = 0.0, total: float = 0.0, what: str = "the statistics") -> None:
        """Raise ClientGone or BudgetExceeded if the work should stop; ``done`` of ``total`` units are finished."""
        now = self._clock()
        if self.cancelled is not None and now - self._asked >= CANCEL_INTERVAL:
            self._asked = now
            if self.cancelled():
                raise ClientGone(f"{what}: the client went away")
        if self.seconds is None:
            return
        # This thread's CPU time: what the work itself costs, whatever else the cores run.
        # (BLAS threads are not counted, so the projection errs toward "fits".)
        cpu = self._cpu() - self._cpu_started
        needed = cpu * total / done if 0 < done < total else None
        hopeless = needed is not None and needed > HOPELESS_FACTOR * self.seconds
        if hopeless and cpu >= HOPELESS_AFTER * self.seconds:
            raise self._exceeded(what, needed, fits=False)
        if now - self.started > self.seconds:
            raise self._exceeded(what, needed, fits=needed is None or needed <= self.seconds)

    def _exceeded(self, what: str, needed: float | None, *, fits: bool) -> BudgetExceeded:
        estimate = f" (about {needed:.0f} s of computation)" if needed is not None else ""
        return BudgetExceeded(
            f"{what} would take longer than the {self.seconds:g} s budget of a request{estimate}",
            seconds=self.seconds,
            fits=fits,
            needed=needed,
        )


UNLIMITED = Budget()
_current: ContextVar[Budget] = ContextVar("request_budget", default=UNLIMITED)


def current() -> Budget:
    """The budget of the work running now (unlimited unless an edge opened one)."""
    return _current.get()


def start(budget: Budget) -> Token:
    """Make ``budget`` current until ``end(token)``: for request hooks that cannot use ``with``."""
    return _current.set(budget)


def end(token: Token) -> None:
    """Restore the budget that was current before ``start``."""
    _current.reset(token)


@contextmanager
def limit(budget: Budget) -> Iterator[Budget]:
    """Run the block under ``budget``."""
    token = start(budget)
    try:
        yield budget
    finally:
        end(token)
