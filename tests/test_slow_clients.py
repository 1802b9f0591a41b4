"""Slow clients against the production recipe: nginx (the README's configuration) in front of gunicorn.

Gunicorn's threaded workers give a connection a thread as soon as its first bytes arrive and
keep it while the request trickles in, so a few dozen slow connections take every thread. nginx
reads each request whole (headers and body, with timeouts) before gunicorn sees it. Everything
here runs against 127.0.0.1 only, with a bounded number of connections for a bounded time.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.servers import free_port, gunicorn

ROOT = Path(__file__).resolve().parent.parent
SLOW_CONNECTIONS = 40
SLOW_SECONDS = 12
APP_UPSTREAM = "127.0.0.1:8000"
PROXY_LISTEN = "listen 8050;"


def readme_nginx_config() -> str:
    """The nginx configuration the README's production section shows."""
    blocks = re.findall(r"```nginx\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 1, "the README shows one nginx configuration"
    return blocks[0]


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        message = "nginx is not installed (.ci/run installs Debian's nginx)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


@contextmanager
def nginx_in_front(folder: Path, upstream_port: int):
    """nginx with the README's configuration, proxying to ``upstream_port``; yields its port."""
    config = readme_nginx_config()
    assert APP_UPSTREAM in config and PROXY_LISTEN in config
    port = free_port()
    site = config.replace(APP_UPSTREAM, f"127.0.0.1:{upstream_port}").replace(PROXY_LISTEN, f"listen 127.0.0.1:{port};")
    home = folder / f"nginx_{port}"
    home.mkdir()
    temp = " ".join(f"{kind}_temp_path {home / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (home / "nginx.conf").write_text(
        f"daemon off; pid {home / 'nginx.pid'}; error_log {home / 'error.log'} info; worker_processes 1;\n"
        f"events {{ worker_connections 1024; }}\n"
        f"http {{ access_log off; {temp}\n{site}\n}}\n"
    )
    process = subprocess.Popen(
        [nginx_binary(), "-c", str(home / "nginx.conf"), "-p", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (home / "error.log").read_text(errors="replace")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def timed_get(port: int, path: str, timeout: float) -> tuple[int | None, float]:
    """(status or None on timeout/refusal, seconds) of one GET on a new connection."""
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.settimeout(max(0.1, timeout - (time.monotonic() - start)))
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            head = conn.recv(64)
        return int(head.split(b" ", 2)[1]), time.monotonic() - start
    except (OSError, IndexError, ValueError):
        return None, time.monotonic() - start


def slowloris(port: int, connections: int, seconds: float, stop: threading.Event) -> list[socket.socket]:
    """Open ``connections`` requests that each send one header line per second, never ending them."""
    socks = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(sock)

    def trickle():
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end and not stop.is_set():
            for sock in socks:
                try:
                    sock.sendall(f"X-Slow-{n}: {n}\r\n".encode())
                except OSError:
                    pass  # the server gave up on it: that is allowed
            n += 1
            stop.wait(1)

    threading.Thread(target=trickle, daemon=True).start()
    return socks


def probe_during_slowloris(port: int, probe_timeout: float) -> list[tuple[int | None, float]]:
    """Probes of /healthz and /api/version (every 0.5 s) while SLOW_CONNECTIONS trickle in."""
    stop = threading.Event()
    socks = slowloris(port, SLOW_CONNECTIONS, SLOW_SECONDS, stop)
    try:
        time.sleep(2)  # let every slow connection reach the server's workers
        results = []
        end = time.monotonic() + SLOW_SECONDS - 3
        while time.monotonic() < end:
            for path in ("/healthz", "/api/version"):
                results.append(timed_get(port, path, probe_timeout))
            time.sleep(0.5)
        return results
    finally:
        stop.set()
        for sock in socks:
            sock.close()


def test_slow_clients_do_not_delay_others_behind_nginx(tmp_path):
    """40 connections sending one header line per second: through nginx every probe answers at once;
    against gunicorn alone (measured for comparison) its threads are taken."""
    nginx_binary()
    with fresh_sqlite(tmp_path) as url, gunicorn(tmp_path, url, workers=2, threads=4) as app:
        assert app.wait_ready(2), app.output()[-2000:]
        with nginx_in_front(tmp_path, app.port) as proxy:
            proxied = probe_during_slowloris(proxy, probe_timeout=10)
        direct = probe_during_slowloris(app.port, probe_timeout=3)
    slowest = max(seconds for _, seconds in proxied)
    direct_failed = sum(status != 200 for status, _ in direct)
    print(
        f"\nbehind nginx: {len(proxied)} probes, all {sorted({s for s, _ in proxied})}, slowest {slowest * 1000:.0f} ms;"
        f" gunicorn alone: {direct_failed} of {len(direct)} probes unanswered within 3 s"
    )
    assert [status for status, _ in proxied] == [200] * len(proxied)


@contextmanager
def fresh_sqlite(folder: Path):
    yield f"sqlite:///{folder / 'features.db'}"


def test_unfinished_requests_do_not_hold_gunicorn_threads_behind_nginx(tmp_path):
    """Requests missing their final CRLF, or whose body is shorter than its Content-Length, with the
    socket left open: nginx holds them (and drops them after its timeouts); gunicorn's threads stay free."""
    nginx_binary()
    with ExitStack() as stack:
        url = stack.enter_context(fresh_sqlite(tmp_path))
        app = stack.enter_context(gunicorn(tmp_path, url, workers=1, threads=2))
        assert app.wait_ready(1), app.output()[-2000:]
        proxy = stack.enter_context(nginx_in_front(tmp_path, app.port))
        stuck = []
        for i in range(6):
            sock = socket.create_connection(("127.0.0.1", proxy), timeout=60)
            if i % 2:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Last: header\r\n")  # no final CRLF
            else:
                head = "PUT /api/ctr HTTP/1.1\r\nHost: 127.0.0.1\r\nBusiness: a\r\nImage-Source: b\r\n"
                sock.sendall(f"{head}Content-Length: 1000\r\n\r\n".encode() + b'{"a": 0.5')
            stuck.append(sock)
        time.sleep(1)
        answers = [timed_get(proxy, "/healthz", 10) for _ in range(6)]
        assert [status for status, _ in answers] == [200] * 6
        # nginx drops them after client_header_timeout / client_body_timeout, not minutes later.
        start = time.monotonic()
        for sock in stuck:
            try:
                while sock.recv(4096):
                    pass
            except OSError:
                pass
            sock.close()
        closed_after = time.monotonic() - start
        print(f"\nunfinished requests closed by nginx {closed_after + 1:.1f} s after they stalled")
        assert closed_after < 30


def raw_answer(port: int, request: bytes) -> tuple[int, str, bytes]:
    """(status, head, body) of raw request bytes sent on a new connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.decode("latin-1").lower(), body


def test_nginx_answers_its_own_errors_in_the_api_shape(tmp_path):
    """What nginx refuses itself (bad HTTP, huge header or URL, bad chunk, the app down) is JSON too."""
    import json

    nginx_binary()
    with ExitStack() as stack:
        url = stack.enter_context(fresh_sqlite(tmp_path))
        app = stack.enter_context(gunicorn(tmp_path, url, workers=1, threads=2))
        assert app.wait_ready(1), app.output()[-2000:]
        proxy = stack.enter_context(nginx_in_front(tmp_path, app.port))
        host = b"Host: 127.0.0.1\r\nConnection: close\r\n"
        cases = [
            (b"NOT HTTP AT ALL\r\n\r\n", 400),
            (b"GET /healthz HTTP/1.1\r\n" + host + b"X-Big: " + b"x" * 16_000 + b"\r\n\r\n", 431),
            (b"GET /api/version?" + b"a" * 10_000 + b" HTTP/1.1\r\n" + host + b"\r\n", 414),
            (b"PUT /api/ctr HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n", 400),
        ]
        for request, status in cases:
            got, head, body = raw_answer(proxy, request)
            assert got == status and "application/json" in head, (request[:40], got, body[:200])
            assert set(json.loads(body)) == {"error", "details"}
        os.killpg(app.process.pid, signal.SIGTERM)
        app.process.wait(timeout=30)
        got, head, body = raw_answer(proxy, b"GET /healthz HTTP/1.1\r\n" + host + b"\r\n")
        assert got == 503 and "retry-after: 10" in head and json.loads(body)["error"] == "service unavailable"
