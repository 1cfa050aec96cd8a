"""A ThreadingHTTPServer for loopback stand-ins that reports dropped clients in one line.

Clients hang up all the time in tests (a pool closed at teardown, kubectl exiting after
its last read). socketserver's default ``handle_error`` prints a full traceback for each,
which buries real failures; a reset or a broken pipe is logged as one line instead, and
anything else still gets its traceback.
"""

from __future__ import annotations

import logging
import sys
from http.server import ThreadingHTTPServer
from typing import Any

log = logging.getLogger("sandbox.httpd")

DISCONNECTS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, TimeoutError)


class QuietThreadingHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, DISCONNECTS):
            log.info("client %s dropped the connection: %s", client_address, error)
            return
        super().handle_error(request, client_address)
