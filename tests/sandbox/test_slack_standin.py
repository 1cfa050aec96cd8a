"""The Slack stand-in as slack_sdk and slack_bolt see it: Web API, faults, uploads,
response_urls, Socket Mode, request signing and the driver that plays Slack."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from sandbox.slack import SlackDriver, SlackStandIn, sign_request

BOT = "xoxb-sandbox"
APP = "xapp-sandbox"
SECRET = "sandbox-signing-secret"
BUTTON_BLOCKS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "checkout is failing"}},
    {
        "type": "actions",
        "block_id": "alert-actions",
        "elements": [
            {
                "type": "button",
                "action_id": "rollback",
                "text": {"type": "plain_text", "text": "Roll back"},
                "style": "danger",
                "value": "checkout",
            }
        ],
    },
]


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn() as running:
        yield running


@pytest.fixture
def web(standin: SlackStandIn) -> WebClient:
    return WebClient(token=BOT, base_url=standin.url)


def _error(call: Any) -> str:
    with pytest.raises(SlackApiError) as info:
        call()
    return str(info.value.response["error"])


def _poll(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# -- Web API ------------------------------------------------------------------------------


def test_token_checks(standin: SlackStandIn, web: WebClient) -> None:
    assert web.auth_test()["user_id"] == standin.bot_user_id
    bad = WebClient(token="xoxb-wrong", base_url=standin.url)
    assert _error(lambda: bad.chat_postMessage(channel="C1", text="x")) == "invalid_auth"
    app_level = WebClient(token=APP, base_url=standin.url)
    assert _error(lambda: app_level.auth_test()) == "not_allowed_token_type"
    assert _error(lambda: web.apps_connections_open(app_token=BOT)) == "not_allowed_token_type"
    assert _error(lambda: WebClient(base_url=standin.url).auth_test()) == "not_authed"
    assert [c["ok"] for c in standin.calls_for("auth.test")] == [True, False, False]


def test_messages_threads_and_updates(standin: SlackStandIn, web: WebClient) -> None:
    first = web.chat_postMessage(channel="C0ALERTS", text="alert", blocks=BUTTON_BLOCKS)
    second = web.chat_postMessage(channel="C0ALERTS", text="second")
    assert float(second["ts"]) > float(first["ts"])
    reply = web.chat_postMessage(channel="C0ALERTS", text="progress", thread_ts=first["ts"])
    web.chat_update(channel="C0ALERTS", ts=first["ts"], text="rolled back", blocks=[])

    top = standin.messages("C0ALERTS")
    assert [m["ts"] for m in top] == [first["ts"], second["ts"]]
    assert top[0]["text"] == "rolled back" and top[0]["blocks"] == [] and top[0]["updated"] == 1
    assert top[0]["reply_count"] == 1
    assert [m["ts"] for m in standin.thread("C0ALERTS", first["ts"])] == [reply["ts"]]
    posted = standin.wait_for_call("chat.postMessage", lambda c: c["args"].get("blocks"))
    assert posted["args"]["blocks"][1]["block_id"] == "alert-actions"

    assert _error(lambda: web.chat_update(channel="C0ALERTS", ts="1.000001", text="x")) == (
        "message_not_found"
    )
    assert (
        _error(lambda: web.api_call("chat.postMessage", json={"channel": "C0ALERTS"})) == "no_text"
    )
    duplicate = [BUTTON_BLOCKS[1], {**BUTTON_BLOCKS[1], "block_id": "other"}]
    assert _error(lambda: web.chat_postMessage(channel="C0ALERTS", text="x", blocks=duplicate)) == (
        "invalid_blocks"
    )


def test_ephemeral_and_directory() -> None:
    users = {"U0ALICE": {"name": "alice", "real_name": "Alice"}}
    with SlackStandIn(
        users=users, usergroups={"S0SRE": ["U0ALICE"]}, channels={"C0OPS": {"name": "ops"}}
    ) as standin:
        web = WebClient(token=BOT, base_url=standin.url)
        assert web.usergroups_users_list(usergroup="S0SRE")["users"] == ["U0ALICE"]
        assert _error(lambda: web.usergroups_users_list(usergroup="S0NOPE")) == "no_such_subteam"
        assert web.users_info(user="U0ALICE")["user"]["real_name"] == "Alice"
        assert _error(lambda: web.users_info(user="U0MALLORY")) == "user_not_found"
        assert web.conversations_info(channel="C0OPS")["channel"]["name"] == "ops"
        assert _error(lambda: web.conversations_info(channel="C0NOPE")) == "channel_not_found"
        assert _error(lambda: web.chat_postMessage(channel="C0NOPE", text="x")) == (
            "channel_not_found"
        )
        assert web.chat_postMessage(channel="#ops", text="by name")["channel"] == "C0OPS"
        web.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="only you")
        assert [e["text"] for e in standin.ephemerals("U0ALICE")] == ["only you"]
        assert standin.ephemerals("U0BOB") == []


def test_rate_limit_is_retried_after_retry_after(standin: SlackStandIn) -> None:
    web = WebClient(
        token=BOT,
        base_url=standin.url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    standin.inject("chat.postMessage", status=429, retry_after=1)
    assert web.chat_postMessage(channel="C1", text="eventually")["ok"]
    limited, accepted = standin.calls_for("chat.postMessage")
    assert (limited["status"], limited["ok"]) == (429, False)
    assert (accepted["status"], accepted["ok"]) == (200, True)
    assert accepted["at"] - limited["at"] >= 1.0  # the SDK honoured Retry-After
    assert len(standin.messages("C1")) == 1


def test_rate_limit_without_retry_handler_surfaces_header(standin: SlackStandIn) -> None:
    web = WebClient(token=BOT, base_url=standin.url, retry_handlers=[])
    standin.inject("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as info:
        web.chat_postMessage(channel="C1", text="x")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"


def test_server_errors_and_api_errors_are_consumed_in_order(
    standin: SlackStandIn, web: WebClient
) -> None:
    web = WebClient(token=BOT, base_url=standin.url, retry_handlers=[])
    standin.inject("chat.update", status=503, count=2)
    standin.inject("*", error="channel_not_found")
    for _ in range(2):
        with pytest.raises(SlackApiError) as info:
            web.chat_update(channel="C1", ts="1.1", text="x")
        assert info.value.response.status_code == 503
    assert _error(lambda: web.auth_test()) == "channel_not_found"
    assert web.auth_test()["ok"]


def test_latency_delays_answers(standin: SlackStandIn, web: WebClient) -> None:
    standin.set_latency(0.3)
    started = time.monotonic()
    assert web.auth_test()["ok"]
    assert time.monotonic() - started >= 0.3
    standin.set_latency(0)


def test_admin_routes(standin: SlackStandIn, web: WebClient) -> None:
    root = standin.root_url + "_sandbox/"
    assert requests.post(root + "faults", json={"method": "auth.test", "error": "x"}).ok
    assert _error(lambda: web.auth_test()) == "x"
    web.chat_postMessage(channel="C1", text="hello")
    calls = requests.get(root + "calls").json()["calls"]
    assert [c["method"] for c in calls] == ["auth.test", "chat.postMessage"]
    assert calls[1]["args"] == {"channel": "C1", "text": "hello"}
    assert requests.post(root + "latency", json={"seconds": 0.05}).json()["seconds"] == 0.05
    minted = requests.post(root + "trigger-ids", json={"user_id": "U0ALICE"}).json()
    assert web.views_open(trigger_id=minted["trigger_id"], view=_modal())["ok"]


# -- files, views, response_urls ----------------------------------------------------------


def test_file_upload_is_recorded(standin: SlackStandIn, web: WebClient) -> None:
    parent = web.chat_postMessage(channel="C1", text="rollback started")
    done = web.files_upload_v2(
        channel="C1",
        thread_ts=parent["ts"],
        content=b"# Postmortem\n",
        filename="postmortem.md",
        title="Postmortem",
        initial_comment="timeline attached",
    )
    (upload,) = standin.uploads
    assert upload["file_id"] == done["file"]["id"]
    assert upload["content"] == b"# Postmortem\n"
    assert (upload["filename"], upload["title"]) == ("postmortem.md", "Postmortem")
    assert (upload["channel_id"], upload["thread_ts"]) == ("C1", parent["ts"])
    (share,) = standin.thread("C1", parent["ts"])
    assert share["files"][0]["id"] == upload["file_id"]
    assert [c["method"] for c in standin.calls][-3:] == [
        "files.getUploadURLExternal",
        "file_upload",
        "files.completeUploadExternal",
    ]


def test_completing_an_upload_whose_bytes_never_arrived_fails(web: WebClient) -> None:
    started = web.files_getUploadURLExternal(filename="x.txt", length=3)
    assert _error(lambda: web.files_completeUploadExternal(files=[{"id": started["file_id"]}])) == (
        "file_not_found"
    )


def _modal(title: str = "Roll back") -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "rollback_modal",
        "title": {"type": "plain_text", "text": title},
        "blocks": [{"type": "section", "text": {"type": "plain_text", "text": "Why?"}}],
    }


def test_trigger_ids_are_single_use_and_expire(standin: SlackStandIn, web: WebClient) -> None:
    trigger = standin.new_trigger_id(user_id="U0ALICE")
    opened = web.views_open(trigger_id=trigger, view=_modal())["view"]
    assert _error(lambda: web.views_open(trigger_id=trigger, view=_modal())) == (
        "exchanged_trigger_id"
    )
    assert _error(lambda: web.views_open(trigger_id="1.2.3", view=_modal())) == (
        "invalid_trigger_id"
    )
    pushed = web.views_push(trigger_id=standin.new_trigger_id(user_id="U0ALICE"), view=_modal())
    assert pushed["view"]["previous_view_id"] == opened["id"]
    updated = web.views_update(view_id=opened["id"], hash=opened["hash"], view=_modal("Sure?"))
    assert updated["view"]["title"]["text"] == "Sure?"
    assert _error(
        lambda: web.views_update(view_id=opened["id"], hash=opened["hash"], view=_modal())
    ) == ("hash_conflict")
    assert [(v["op"], v["view_id"]) for v in standin.views] == [
        ("open", opened["id"]),
        ("push", pushed["view"]["id"]),
        ("update", opened["id"]),
    ]
    assert standin.views[0]["trigger_id"] == trigger

    with SlackStandIn(trigger_ttl=0) as strict:
        client = WebClient(token=BOT, base_url=strict.url)
        stale = strict.new_trigger_id()
        assert _error(lambda: client.views_open(trigger_id=stale, view=_modal())) == (
            "expired_trigger_id"
        )


def test_response_urls(standin: SlackStandIn, web: WebClient) -> None:
    posted = web.chat_postMessage(channel="C1", text="Approve?", blocks=BUTTON_BLOCKS)
    on_message = standin.new_response_url(channel="C1", user_id="U0BOB", message_ts=posted["ts"])
    assert WebhookClient(on_message).send(text="Approved", replace_original=True).status_code == 200
    assert standin.messages("C1")[0]["text"] == "Approved"
    assert standin.messages("C1")[0]["updated"] == 1

    plain = standin.new_response_url(channel="C1", user_id="U0BOB")
    WebhookClient(plain).send(text="working on it")
    WebhookClient(plain).send(text="posted for all", response_type="in_channel")
    assert standin.responses[-2:] == [
        {"text": "working on it"},
        {"text": "posted for all", "response_type": "in_channel"},
    ]
    assert [e["text"] for e in standin.ephemerals("U0BOB")] == ["working on it"]
    assert standin.messages("C1")[-1]["text"] == "posted for all"
    for _ in range(3):
        WebhookClient(plain).send(text="again")
    assert WebhookClient(plain).send(text="sixth").body == "used_url"
    assert WebhookClient(standin.root_url + "hooks/T0SANDBOX/9/x").send(text="?").status_code == 404


# -- lifecycle ----------------------------------------------------------------------------


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def test_stop_leaves_no_threads_or_ports() -> None:
    before = set(threading.enumerate())
    standin = SlackStandIn().start()
    http_port, ws_port = standin.port, standin.socket_port
    WebClient(token=BOT, base_url=standin.url).auth_test()
    idle = socket.create_connection(("127.0.0.1", http_port))  # a client that never sends
    with ws_connect(WebClient(base_url=standin.url).apps_connections_open(app_token=APP)["url"]):
        assert standin.socket_connected(timeout=5)
        standin.stop()
    idle.close()
    assert set(threading.enumerate()) - before == set()
    assert _refused(http_port) and _refused(ws_port)


def test_module_entry_point_prints_port_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.slack", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        word, port = process.stdout.readline().split()
        assert word == "LISTENING"
        web = WebClient(token=BOT, base_url=f"http://127.0.0.1:{port}/api/")
        assert web.auth_test()["ok"]
        process.terminate()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- Socket Mode --------------------------------------------------------------------------


def test_socket_mode_client_receives_envelope_and_acks(standin: SlackStandIn) -> None:
    received: list[SocketModeRequest] = []
    raw: list[str] = []
    client = SocketModeClient(app_token=APP, web_client=WebClient(token=BOT, base_url=standin.url))
    client.on_message_listeners.append(raw.append)

    def listener(c: Any, request: SocketModeRequest) -> None:
        received.append(request)
        c.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload={"text": "on it"})
        )

    client.socket_mode_request_listeners.append(listener)
    try:
        client.connect()
        assert standin.socket_connected(timeout=10)
        ack = standin.socket_send("slash_commands", {"command": "/rollback", "text": "help"})
        assert ack == {"envelope_id": received[0].envelope_id, "payload": {"text": "on it"}}
        assert received[0].type == "slash_commands" and received[0].accepts_response_payload
        assert received[0].payload == {"command": "/rollback", "text": "help"}
        assert json.loads(raw[0])["type"] == "hello"

        standin.socket_disconnect()  # Slack's refresh: the client must reconnect by itself
        _poll(lambda: standin.socket_connects == 2)
        event = standin.socket_send("events_api", {"type": "event_callback"}, timeout=10)
        assert event["envelope_id"] == received[1].envelope_id
        assert received[1].accepts_response_payload is False
        assert len(standin.calls_for("apps.connections.open")) == 2
    finally:
        client.close()


def test_socket_mode_rejects_unknown_or_reused_tickets(standin: SlackStandIn) -> None:
    url = WebClient(base_url=standin.url).apps_connections_open(app_token=APP)["url"]
    assert url.startswith(f"ws://127.0.0.1:{standin.socket_port}/socket-mode?")
    with ws_connect(url) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
    for bad in (url, url.replace("ticket=", "ticket=x")):
        with pytest.raises(InvalidStatus) as info:
            ws_connect(bad)
        assert info.value.response.status_code == 401


# -- signing and the driver against a real Bolt app ---------------------------------------


def test_sign_request_matches_slack_sdk_verifier() -> None:
    body = b"token=x&text=status"
    headers = sign_request(SECRET, body)
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    fixed = sign_request(SECRET, body, timestamp=1_700_000_000)
    assert fixed["X-Slack-Request-Timestamp"] == "1700000000"
    assert fixed["X-Slack-Signature"] == SignatureVerifier(SECRET).generate_signature(
        timestamp="1700000000", body=body
    )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _bolt_app(standin: SlackStandIn, seen: dict[str, Any]) -> App:
    app = App(
        signing_secret=SECRET,
        client=WebClient(token=BOT, base_url=standin.url),
        process_before_response=True,
    )

    @app.command("/rollback")
    def command(ack: Any, body: dict[str, Any], respond: Any, client: WebClient) -> None:
        ack()
        seen["command"] = body
        respond(text=f"rolling back {body['text']}")
        client.chat_postMessage(channel=body["channel_id"], text="Roll back?", blocks=BUTTON_BLOCKS)

    @app.action("rollback")
    def click(ack: Any, body: dict[str, Any], respond: Any, client: WebClient) -> None:
        ack()
        seen["click"] = body
        respond(text="Rolled back", replace_original=True)
        client.views_open(trigger_id=body["trigger_id"], view=_modal())

    @app.view("rollback_modal")
    def submit(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        seen["submit"] = body
        ack(response_action="errors", errors={"reason": "too short"})

    return app


@pytest.fixture
def bolt_url(standin: SlackStandIn) -> Iterator[tuple[str, dict[str, Any]]]:
    seen: dict[str, Any] = {}
    wsgi = SlackRequestHandler(_bolt_app(standin, seen))
    server: WSGIServer = make_server("127.0.0.1", 0, wsgi, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/slack/events", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_driver_round_trip_through_bolt(
    standin: SlackStandIn, bolt_url: tuple[str, dict[str, Any]]
) -> None:
    url, seen = bolt_url
    driver = SlackDriver(events_url=url, signing_secret=SECRET, standin=standin)

    assert driver.command("checkout", user_id="U0ALICE", channel_id="C0ALERTS").status_code == 200
    assert seen["command"]["user_name"] == "alice" and seen["command"]["trigger_id"]
    assert standin.wait_for_call("response_url")["args"] == {"text": "rolling back checkout"}
    assert [e["text"] for e in standin.ephemerals("U0ALICE")] == ["rolling back checkout"]
    (alert,) = standin.messages("C0ALERTS")

    response = driver.click(
        action_id="rollback",
        value="checkout",
        user_id="U0BOB",
        channel_id="C0ALERTS",
        message_ts=alert["ts"],
    )
    assert response.status_code == 200
    action = seen["click"]["actions"][0]
    assert (action["block_id"], action["text"]["text"]) == ("alert-actions", "Roll back")
    assert seen["click"]["message"]["text"] == "Roll back?"
    assert seen["click"]["container"]["message_ts"] == alert["ts"]
    assert standin.messages("C0ALERTS")[0]["text"] == "Rolled back"
    opened = standin.wait_for_call("views.open")
    assert opened["ok"] and standin.views[0]["user"] == "U0BOB"

    view_id = standin.views[0]["view_id"]
    submitted = driver.submit_view(
        callback_id="rollback_modal",
        user_id="U0BOB",
        private_metadata="incident-7",
        values={"reason": {"reason_input": "bad deploy"}},
        view_id=view_id,
    )
    assert submitted.json() == {"response_action": "errors", "errors": {"reason": "too short"}}
    state = seen["submit"]["view"]["state"]["values"]
    assert state == {
        "reason": {"reason_input": {"type": "plain_text_input", "value": "bad deploy"}}
    }
    assert seen["submit"]["view"]["id"] == view_id

    forged = driver.raw(b"command=/rollback", sign_request("wrong-secret", b"command=/rollback"))
    assert forged.status_code == 401
    stale_body = b"command=/rollback&text=x"
    stale = sign_request(SECRET, stale_body, timestamp=int(time.time()) - 600)
    assert driver.raw(stale_body, stale).status_code == 401


def test_bolt_socket_mode_handler_acks_with_payload(standin: SlackStandIn) -> None:
    app = App(client=WebClient(token=BOT, base_url=standin.url), signing_secret=SECRET)

    @app.command("/rollback")
    def command(ack: Any, body: dict[str, Any]) -> None:
        ack(f"help for {body['user_id']}")

    driver = SlackDriver(events_url="http://unused", signing_secret=SECRET, standin=standin)
    handler = SocketModeHandler(app, APP)
    try:
        handler.connect()
        assert standin.socket_connected(timeout=10)
        payload = driver.command_payload("help", user_id="U0ALICE", channel_id="C0ALERTS")
        ack = standin.socket_send("slash_commands", payload, timeout=10)
        assert ack["payload"] == {"text": "help for U0ALICE"}
    finally:
        handler.close()
