"""The app under a real gunicorn with several workers, for start-up, concurrency and crash tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = "worker ready"
# The project's gunicorn settings plus a hook that says when a worker has loaded the app.
CONFIG = f"""
exec(open({str(ROOT / "gunicorn.conf.py")!r}).read())


def post_worker_init(worker):
    worker.log.info("{READY} %s", worker.pid)
"""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """A running gunicorn master: its process, port and log file."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path):
        self.process = process
        self.port = port
        self.log = log

    def output(self) -> str:
        """Everything gunicorn has logged so far."""
        return self.log.read_text(errors="replace")

    def wait_ready(self, workers: int, timeout: float = 180) -> bool:
        """True once ``workers`` workers have loaded the app; False if the master exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.output().count(READY) >= workers:
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.2)
        return False

    def worker_pids(self) -> list[int]:
        """The pids of the workers that said they were ready."""
        return [int(line.rsplit(" ", 1)[1]) for line in self.output().splitlines() if READY in line]


@contextmanager
def gunicorn(folder: Path, database_url: str, *, workers: int = 3, threads: int = 4, **env):
    """Run ``gunicorn app:server`` on a free loopback port; stop it (and its workers) afterwards."""
    port = free_port()
    config = folder / f"gunicorn_{port}.py"
    config.write_text(CONFIG)
    log = folder / f"gunicorn_{port}.log"
    environ = {**os.environ, "DATABASE_URL": database_url, "DEMO_DATA": "0", **{k: str(v) for k, v in env.items()}}
    environ.pop("INGEST_TOKEN", None)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "app:server", "-c", str(config), "--bind", f"127.0.0.1:{port}"]
            + ["--workers", str(workers), "--threads", str(threads), "--timeout", "300"],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Gunicorn(process, port, log)
    try:
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
