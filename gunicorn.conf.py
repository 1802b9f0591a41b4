"""Gunicorn settings, read when gunicorn starts in this folder (or with ``--config gunicorn.conf.py``).

Gunicorn answers requests it cannot parse (a header over ``limit_request_field_size``, a
malformed request line or chunk) itself, before the app runs, with an HTML page. API clients
expect the API's error shape, so those answers are JSON too.
"""

import json

from gunicorn import util


def json_write_error(sock, status_int, reason, mesg):
    """Gunicorn's error answer in the API's shape: ``{"error": ..., "details": [...]}``."""
    body = json.dumps({"error": reason.lower(), "details": [mesg] if mesg else []}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


# The workers look the writer up on the module at each error, so replacing it here covers them all.
util.write_error = json_write_error
