"""Start-up work retried in the background: what it logs when it keeps failing."""

from __future__ import annotations

import logging

from dashboard.startup import Startup
from data.errors import StorageUnavailable


def _failing(failures):
    """Work that raises each of ``failures`` in turn, then returns "done"."""
    pending = list(failures)

    def work():
        if pending:
            raise pending.pop(0)
        return "done"

    return work


def test_a_repeated_start_up_failure_logs_its_traceback_once_then_a_line_a_retry(caplog):
    failures = [KeyError("schema")] * 4 + [ValueError("bad setting"), ValueError("bad setting")]
    startup = Startup(_failing(failures), first_retry=0.01, max_retry=0.01)
    with caplog.at_level(logging.INFO, logger="dashboard.startup"):
        startup.start()
        assert startup.wait(timeout=30) and startup.result == "done"
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR]
    with_traceback = [r for r in failed if r.exc_info]
    # One traceback per kind of failure; each repeat a line that counts it.
    assert [r.exc_info[0] for r in with_traceback] == [KeyError, ValueError]
    repeats = [r.getMessage() for r in failed if not r.exc_info]
    assert repeats == [
        "start-up failed again (2 times in a row): KeyError: 'schema'; retrying",
        "start-up failed again (3 times in a row): KeyError: 'schema'; retrying",
        "start-up failed again (4 times in a row): KeyError: 'schema'; retrying",
        "start-up failed again (2 times in a row): ValueError: bad setting; retrying",
    ]


def test_the_database_not_ready_is_a_warning_without_traceback_and_names_its_cause(caplog):
    startup = Startup(_failing([StorageUnavailable("database unreachable", "host db:5432")]), first_retry=60)
    with caplog.at_level(logging.INFO, logger="dashboard.startup"):
        startup.start()
    try:
        assert not startup.ready and startup.cause == "database unreachable"
        assert startup.unavailable().cause == "database unreachable"  # what data routes answer: no host
        [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]  # not another test's late INFO
        assert record.levelno == logging.WARNING and not record.exc_info and "db:5432" in record.getMessage()
    finally:
        startup.stop()
