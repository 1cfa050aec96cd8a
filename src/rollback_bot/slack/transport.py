"""A Web API client that keeps its HTTP connection to Slack open between calls.

slack_sdk's ``WebClient`` opens a new connection (and, over HTTPS, a new TLS session)
for every call through ``urllib``; the bot makes a call for nearly every click and
message, so that connection set-up was a good part of the work behind each click.
This client sends the same requests over one kept-alive ``http.client`` connection
per thread (a connection carries one request at a time), so everything slack_sdk does
around the request — building it from the arguments, the retry handlers for 429s,
5xx and dropped connections, turning the answer into a ``SlackResponse`` or a
``SlackApiError`` — stays slack_sdk's, unchanged.

A connection Slack closed while idle is found out on the next call and that call is
sent once more on a fresh connection. Through a proxy (``proxy=`` or the
``HTTPS_PROXY`` environment variables) the client falls back to slack_sdk's urllib
path. Unlike urllib it follows no redirects (the Web API answers where it is asked; a
3xx reads as the HTTP error it is). Nothing here logs a request or its headers (the token
is one of them).
"""

from __future__ import annotations

import http.client
import io
import ssl
import threading
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

from slack_sdk import WebClient

# A kept-alive connection the server closed in the meantime fails in one of these ways
# before any answer was read.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class KeptAliveWebClient(WebClient):
    """``WebClient`` over one kept-alive connection per thread and origin."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if self.proxy or not url.lower().startswith(("http://", "https://")):
            return super()._perform_urllib_http_request_internal(url, req)
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = dict(req.header_items())
        conn = self._connection(parts.scheme.lower(), parts.netloc)
        reused = conn.sock is not None
        try:
            response = self._send(conn, req.get_method(), target, req.data, headers)
        except _STALE:
            conn.close()
            if not reused:
                raise
            # Slack (or a proxy on the way) closed the idle connection: nothing was read,
            # so the request is sent once more, on a new connection.
            response = self._send(conn, req.get_method(), target, req.data, headers)
        status, message, body = response
        if not 200 <= status < 300:
            # As urllib does: slack_sdk reads the status, headers and body of the error.
            raise HTTPError(
                url, status, http.client.responses.get(status, ""), message, io.BytesIO(body)
            )
        if message.get_content_type() == "application/gzip":
            return {"status": status, "headers": message, "body": body}
        charset = message.get_content_charset() or "utf-8"
        return {"status": status, "headers": message, "body": body.decode(charset)}

    def _send(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        target: str,
        data: Any,
        headers: dict[str, str],
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        try:
            conn.request(method, target, body=data, headers=headers)
        except _STALE:
            raise
        except OSError as exc:  # as urllib reports a failure to connect or send
            conn.close()
            raise URLError(exc) from exc
        try:
            response = conn.getresponse()
            body = response.read()
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        return response.status, response.msg, body

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str], http.client.HTTPConnection] | None
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        conn = pool.get((scheme, netloc))
        if conn is None:
            if scheme == "https":
                context = self.ssl or ssl.create_default_context()
                conn = http.client.HTTPSConnection(netloc, timeout=self.timeout, context=context)
            else:
                conn = http.client.HTTPConnection(netloc, timeout=self.timeout)
            pool[(scheme, netloc)] = conn
        return conn
