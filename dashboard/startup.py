"""Start-up work that waits for the database instead of stopping the worker.

A worker that cannot reach its database at start-up (an outage, a restart during one, a cold
start before the database) still boots and serves: /healthz and the data routes answer 503
until the work (schema, demo data) has been done, which a background thread retries with a
growing pause. Gunicorn's master exits when a worker fails to boot, so raising here would turn
an outage into a shutdown that outlives it.
"""

from __future__ import annotations

import logging
import threading

from data.errors import StorageUnavailable

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 5.0
STARTING = "database not ready"


class Startup:
    """Runs ``work()`` now and, until it succeeds, again in a background thread with backoff."""

    def __init__(self, work, *, first_retry: float = FIRST_RETRY_SECONDS, max_retry: float = MAX_RETRY_SECONDS):
        self._work = work
        self._first_retry = first_retry
        self._max_retry = max_retry
        self._done = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cause = STARTING
        self.result = None
        self._failure: str | None = None  # the last failure's kind and message, logged in full once
        self._repeats = 0

    @property
    def ready(self) -> bool:
        """True once the start-up work has succeeded."""
        return self._done.is_set()

    def start(self) -> Startup:
        """Try once in this thread; on failure go on retrying in a daemon thread. Never raises."""
        if not self._attempt():
            self._thread = threading.Thread(target=self._retry, name="startup-retry", daemon=True)
            self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the work has succeeded (or ``timeout`` passed); True when it has."""
        return self._done.wait(timeout)

    def stop(self) -> None:
        """Stop retrying (for tests that build many apps)."""
        self._stop.set()

    def unavailable(self) -> StorageUnavailable:
        """The error that data routes raise until start-up has succeeded."""
        return StorageUnavailable(self.cause)

    def _attempt(self) -> bool:
        try:
            self.result = self._work()
        except StorageUnavailable as exc:
            # The detail names the server (host, port, database): the log may say it, answers must not.
            self.cause = exc.cause
            log.warning("start-up waits for the database: %s", exc)
            return False
        except Exception as exc:
            self.cause = "start-up failed"
            # A failure that is not the database's (a bug, a bad setting) may repeat at every
            # retry: its traceback is logged the first time, then one line a retry, until another
            # failure (logged in full) or success.
            failure = f"{type(exc).__name__}: {exc}"
            if failure != self._failure:
                self._failure, self._repeats = failure, 0
                log.exception("start-up failed; retrying")
            else:
                self._repeats += 1
                log.error("start-up failed again (%d times in a row): %s; retrying", self._repeats + 1, failure)
            return False
        self._done.set()
        return True

    def _retry(self) -> None:
        pause = self._first_retry
        while not self._stop.wait(pause):
            if self._attempt():
                log.info("start-up done: the database is ready")
                return
            pause = min(pause * 2, self._max_retry)
