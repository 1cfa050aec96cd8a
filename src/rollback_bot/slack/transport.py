"""A Web API client that keeps its HTTP connections to Slack open between calls.

slack_sdk's ``WebClient`` opens a new connection (and, over HTTPS, a new TLS session)
for every call through ``urllib``; the bot makes a call for nearly every click and
message, so that connection set-up was a good part of the work behind each click.
This client sends the same requests through urllib3's connection pool (the library the
Kubernetes client already uses), so everything slack_sdk does around the request —
building it from the arguments, the retry handlers for 429s, 5xx and dropped
connections, turning the answer into a ``SlackResponse`` or a ``SlackApiError`` — stays
slack_sdk's, unchanged.

urllib3 notices a kept connection that Slack closed while it sat idle and opens a new
one before sending, so such a call is sent once. Through a proxy (``proxy=`` or the
``HTTPS_PROXY`` environment variables) the client falls back to slack_sdk's urllib path.
Unlike urllib it follows no redirects (the Web API answers where it is asked; a 3xx
reads as the HTTP error it is). slack_sdk offers no transport to plug in for its
synchronous client, so this overrides the one method through which it sends. Nothing
here logs a request or its headers (the token is one of them).
"""

from __future__ import annotations

import io
import logging
import ssl
from http.client import HTTPMessage, responses
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request

import urllib3
from slack_sdk import WebClient

#: Connections kept per host: one per thread that calls Slack at the same time.
POOL_SIZE = 8


class _OneWrite(urllib3.connection.HTTPConnection):
    """Sends a request's header block and its body (bytes) in one write, not two.

    http.client writes the header block on its own, then the body: with ``TCP_NODELAY``
    (urllib3's default) two segments, and the kernel's work for each on both ends, which
    was the larger part of a Web API call's CPU. The bytes sent are the same.
    """

    _holding = False
    _held: bytes | None = None

    def request(self, method: str, url: str, body: Any = None, *args: Any, **kwargs: Any) -> None:
        self._holding = isinstance(body, bytes) and bool(body)
        self._held = None
        try:
            super().request(method, url, body, *args, **kwargs)
            if self._held is not None:  # the body never came: the header block alone
                super().send(self._held)
        finally:
            self._holding = False
            self._held = None

    def send(self, data: Any) -> None:
        if self._holding:
            if self._held is None:
                self._held = bytes(data)  # the header block: held for the body
                return
            data = self._held + bytes(data)
            self._holding = False
            self._held = None
        super().send(data)


class _OneWriteHTTPS(_OneWrite, urllib3.connection.HTTPSConnection):
    pass


class _Pool(urllib3.HTTPConnectionPool):
    ConnectionCls = _OneWrite


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _OneWriteHTTPS


class _EffectiveLevel(logging.LoggerAdapter):  # type: ignore[type-arg]
    """slack_sdk's logger, whose ``level`` is the level that takes effect.

    slack_sdk builds the debug message of every call (its arguments, the headers
    redacted) whenever its logger's own ``level`` is unset (0, "ask the parent"), and
    the message is then dropped unless DEBUG is on (about 8 µs a call). With the effective
    level it is built exactly when it is logged: the same records.
    """

    @property
    def level(self) -> int:
        return int(self.logger.getEffectiveLevel())


class KeptAliveWebClient(WebClient):
    """``WebClient`` over urllib3's pool of kept-alive connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._logger = _EffectiveLevel(self._logger, None)  # type: ignore[assignment]
        # The TLS context (the system's CA bundle: about 50 ms of CPU) is made here, on the
        # constructing thread, not at the first call: made lazily, the first call was the
        # channel check's, on a daemon thread, and a serve stopped while it loaded the
        # certificates crashed (SIGSEGV) in OpenSSL's clean-up at interpreter exit.
        self._pool = urllib3.PoolManager(
            maxsize=POOL_SIZE,
            ssl_context=self.ssl or ssl.create_default_context(),
            retries=False,  # slack_sdk's retry handlers decide, as for urllib
            timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),  # as urllib's
        )
        self._pool.pool_classes_by_scheme = {"http": _Pool, "https": _HTTPSPool}
        self._pools: dict[str, urllib3.HTTPConnectionPool] = {}

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        if self.proxy or not url.lower().startswith(("http://", "https://")):
            return super()._perform_urllib_http_request_internal(url, req)
        body: Any = req.data  # bytes: slack_sdk encodes the form or JSON itself
        origin, path = _split(url)
        sent = dict(req.header_items())
        try:
            response = self._host_pool(origin).urlopen(
                req.get_method(), path, body=body, headers=sent, redirect=False
            )
        except urllib3.exceptions.HTTPError as exc:  # as urllib reports a failure to connect
            raise URLError(exc) from exc
        data: bytes = response.data
        if not 200 <= response.status < 300:
            # As urllib does: slack_sdk reads the status, headers and body of the error.
            raise HTTPError(
                url, response.status, responses.get(response.status, ""), _message(response),
                io.BytesIO(data),
            )  # fmt: skip
        headers = _message(response)
        if headers.get_content_type() == "application/gzip":
            return {"status": response.status, "headers": headers, "body": data}
        charset = headers.get_content_charset() or "utf-8"
        return {"status": response.status, "headers": headers, "body": data.decode(charset)}

    def _host_pool(self, origin: str) -> urllib3.HTTPConnectionPool:
        """The host's pool from the manager, looked up once rather than on every call.

        The client talks to one host (``SLACK_API_URL``); urllib3 2 never closes a pool it
        drops from its manager, so the one kept here stays usable.
        """
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = self._pool.connection_from_url(origin)
        return pool


def _split(url: str) -> tuple[str, str]:
    """``scheme://host[:port]`` and the rest (path and query) of an absolute URL."""
    slash = url.find("/", url.index("://") + 3)
    return (url, "/") if slash < 0 else (url[:slash], url[slash:])


def _message(response: urllib3.BaseHTTPResponse) -> HTTPMessage:
    """The answer's headers as the ``HTTPMessage`` slack_sdk reads from urllib."""
    message = HTTPMessage()
    for name, value in response.headers.items():
        message[name] = value
    return message
