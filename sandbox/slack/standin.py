"""SlackStandIn: the loopback Slack that the bot talks to in tests, demos and benchmarks.

It ties together the workspace state, the HTTP server (Web API, upload URLs,
response_urls, admin routes), the Socket Mode websocket and the fault plan,
and gives tests one object to start, inspect, script and stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sandbox.slack.blocks import buttons
from sandbox.slack.calls import Call, CallLog
from sandbox.slack.faults import FaultPlan
from sandbox.slack.http_server import Backend, StandInHTTPServer
from sandbox.slack.socket_mode import SocketModeServer
from sandbox.slack.workspace import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID, Workspace


class SlackStandIn:
    team_id = TEAM_ID
    app_id = APP_ID
    bot_user_id = BOT_USER_ID
    bot_id = BOT_ID

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-sandbox",
        app_token: str = "xapp-sandbox",
        users: dict[str, dict[str, Any]] | None = None,
        usergroups: dict[str, list[str]] | None = None,
        channels: dict[str, dict[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        trigger_ttl: float = 3.0,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.workspace = Workspace(
            bot_token=bot_token,
            app_token=app_token,
            users=users,
            usergroups=usergroups,
            channels=channels,
            trigger_ttl=trigger_ttl,
        )
        self._calls = CallLog()
        self._faults = FaultPlan()
        self._backend = Backend(self.workspace, self._calls, self._faults)
        self._address = (host, port)
        self._http: StandInHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._socket = SocketModeServer(app_id=APP_ID)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> SlackStandIn:
        if self._http is not None:
            raise RuntimeError("already started")
        self._backend.stopping.clear()
        self._http = StandInHTTPServer(self._address, self._backend)
        self.workspace.public_url = f"http://127.0.0.1:{self.port}/"
        self.workspace.socket_url = self._socket.issue_url
        self._http_thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="slack-standin-http",
            daemon=True,
        )
        self._http_thread.start()
        self._socket.start()
        return self

    def stop(self) -> None:
        """Stop both servers and wait for every thread they started."""
        self._backend.stopping.set()
        self._socket.stop()
        if self._http is not None:
            self._http.shutdown()
            self._http.abort_open_connections()
            self._http.server_close()
        if self._http_thread is not None:
            self._http_thread.join()
        self._http = self._http_thread = None

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("not started")
        return int(self._http.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def url(self) -> str:
        """The Web API base (what SLACK_API_URL is set to); slack_sdk appends method names."""
        return f"{self.root_url}api/"

    @property
    def socket_port(self) -> int:
        return self._socket.port

    # -- recorded traffic -----------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        return self._calls.all()

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (a kept-alive client makes many calls on one)."""
        return self._backend.connections

    def drop_connections(self) -> None:
        """Hang up on every open client connection, as Slack does with idle ones."""
        if self._http is not None:
            self._http.abort_open_connections()

    def calls_for(self, method: str) -> list[Call]:
        return self._calls.for_method(method)

    def count_calls(self, method: str) -> int:
        return self._calls.count(method)

    def clear_calls(self) -> None:
        self._calls.clear()

    def wait_for_call(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
    ) -> Call:
        return self._calls.wait_for(method, predicate, timeout)

    # -- workspace state ------------------------------------------------------------------

    def messages(self, channel: str) -> list[dict[str, Any]]:
        return self.workspace.messages(channel)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        return self.workspace.find_message(channel, ts)

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        return self.workspace.thread(channel, ts)

    def post_as_user(
        self, user: str, channel: str, text: str, *, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """Post a person's message (not the bot's): what a message shortcut is used on."""
        return self.workspace.post_as_user(user, channel, text, thread_ts=thread_ts)

    def buttons(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The buttons of a stored message, each with its `block_id`."""
        found = self.workspace.find_message(channel, ts)
        return buttons(found.get("blocks")) if found else []

    def ephemerals(self, user: str | None = None) -> list[dict[str, Any]]:
        return self.workspace.ephemerals(user)

    @property
    def responses(self) -> list[dict[str, Any]]:
        return self.workspace.responses

    @property
    def uploads(self) -> list[dict[str, Any]]:
        return self.workspace.uploads

    @property
    def views(self) -> list[dict[str, Any]]:
        return self.workspace.views

    def view(self, view_id: str) -> dict[str, Any] | None:
        return self.workspace.view(view_id)

    def new_response_url(
        self,
        *,
        channel: str | None = None,
        user_id: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        return self.workspace.new_response_url(
            channel=channel, user_id=user_id, message_ts=message_ts
        )

    def new_trigger_id(self, *, user_id: str | None = None) -> str:
        return self.workspace.new_trigger_id(user_id=user_id)

    # -- scripted misbehaviour ------------------------------------------------------------

    def inject(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int = 1,
        count: int = 1,
        error: str | None = None,
    ) -> None:
        """Make the next `count` calls to `method` ("*" for any) fail."""
        self._faults.inject(
            method, status=status, retry_after=retry_after, count=count, error=error
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_latency(self, seconds: float) -> None:
        self._backend.latency = max(0.0, seconds)

    # -- Socket Mode ----------------------------------------------------------------------

    def socket_send(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        timeout: float = 5.0,
        *,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> dict[str, Any]:
        """Push an envelope to the connected Socket Mode client; returns its ack."""
        return self._socket.send(
            envelope_type,
            payload,
            timeout=timeout,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )

    def socket_connected(self, timeout: float = 5.0) -> bool:
        return self._socket.connected(timeout)

    @property
    def socket_connection_count(self) -> int:
        return self._socket.connection_count

    @property
    def socket_connects(self) -> int:
        """How many Socket Mode connections were ever accepted (reconnects included)."""
        return self._socket.connects

    def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        self._socket.disconnect_all(reason)
