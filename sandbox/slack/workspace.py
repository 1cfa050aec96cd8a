"""A simulated Slack workspace: its directory, channels, views and files.

The stand-in's HTTP layer only decodes requests; every Slack rule the bot can
trip over (unknown channel, stale trigger_id, update of a missing message,
hash conflicts, file uploads that were never sent) is decided here, so the
answers match what Slack itself would return for the same mistake.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from sandbox.slack.blocks import MAX_VIEW_BLOCKS, InvalidBlocks, validate_blocks

TEAM_ID = "T0SANDBOX"
APP_ID = "A0ROLLBACK"
BOT_USER_ID = "U0ROLLBACK"
BOT_ID = "B0ROLLBACK"
MAX_TEXT = 40000
MAX_VIEW_STACK = 3
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60

DEFAULT_USERS: dict[str, dict[str, Any]] = {
    "U0ALICE": {"name": "alice", "real_name": "Alice"},
    "U0BOB": {"name": "bob", "real_name": "Bob"},
    "U0CAROL": {"name": "carol", "real_name": "Carol"},
}
DEFAULT_USERGROUPS: dict[str, list[str]] = {"S0ONCALL": ["U0ALICE"], "S0SRE": ["U0BOB"]}

Args = dict[str, Any]
Result = dict[str, Any]


class SlackError(Exception):
    """A Web API failure: answered as `{"ok": false, "error": <code>}`."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class Workspace:
    """Thread-safe state plus one handler per implemented Web API method."""

    def __init__(
        self,
        *,
        bot_token: str,
        app_token: str,
        users: dict[str, dict[str, Any]] | None,
        usergroups: dict[str, list[str]] | None,
        channels: dict[str, dict[str, Any]] | None,
        trigger_ttl: float,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.users = copy.deepcopy(DEFAULT_USERS if users is None else users)
        self.usergroups = copy.deepcopy(DEFAULT_USERGROUPS if usergroups is None else usergroups)
        # None means an open workspace: any channel id the bot names exists.
        self.channels = None if channels is None else copy.deepcopy(channels)
        self.trigger_ttl = trigger_ttl
        self.public_url = ""  # set by the server once bound; upload and response URLs use it
        self.socket_url: Callable[[], str] | None = None
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._last_ts_us = 0
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._responses: list[dict[str, Any]] = []
        self._uploads: list[dict[str, Any]] = []
        self._pending_files: dict[str, dict[str, Any]] = {}
        self._view_log: list[dict[str, Any]] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._view_stacks: dict[str, list[str]] = {}
        self._triggers: dict[str, dict[str, Any]] = {}
        self._response_urls: dict[str, dict[str, Any]] = {}
        self.handlers: dict[str, Callable[[Args], Result]] = {
            "api.test": self.api_test,
            "auth.test": self.auth_test,
            "apps.connections.open": self.apps_connections_open,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.delete": self.chat_delete,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.getPermalink": self.chat_get_permalink,
            "views.open": self.views_open,
            "views.update": self.views_update,
            "views.push": self.views_push,
            "usergroups.users.list": self.usergroups_users_list,
            "users.info": self.users_info,
            "conversations.info": self.conversations_info,
            "files.getUploadURLExternal": self.files_get_upload_url_external,
            "files.completeUploadExternal": self.files_complete_upload_external,
        }

    # -- authentication -------------------------------------------------------------------

    def authorize(self, method: str, token: str | None) -> None:
        if method == "api.test":
            return
        if not token:
            raise SlackError("not_authed")
        wanted, other = (
            (self.app_token, self.bot_token)
            if method == "apps.connections.open"
            else (self.bot_token, self.app_token)
        )
        if token == wanted:
            return
        raise SlackError("not_allowed_token_type" if token == other else "invalid_auth")

    def call(self, method: str, args: Args) -> Result:
        handler = self.handlers.get(method)
        if handler is None:
            raise SlackError("unknown_method")
        with self._lock:
            return {"ok": True, **handler(args)}

    # -- identifiers ----------------------------------------------------------------------

    def _next_ts(self) -> str:
        with self._lock:
            self._last_ts_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
            us = self._last_ts_us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}0{next(self._ids):08X}"

    def new_trigger_id(self, *, user_id: str | None = None) -> str:
        trigger_id = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger_id] = {
                "created": time.monotonic(),
                "user": user_id,
                "used": False,
            }
        return trigger_id

    def new_response_url(
        self,
        *,
        channel: str | None = None,
        user_id: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        token = f"{next(self._ids)}/{secrets.token_hex(12)}"
        with self._lock:
            self._response_urls[token] = {
                "channel": channel,
                "user": user_id,
                "message_ts": message_ts,
                "uses": 0,
                "created": time.monotonic(),
            }
        return f"{self.public_url}hooks/{TEAM_ID}/{token}"

    # -- read side for tests --------------------------------------------------------------

    def messages(self, channel: str) -> list[dict[str, Any]]:
        with self._lock:
            stored = self._messages.get(self._lookup_channel(channel) or channel, [])
            top = [m for m in stored if m.get("thread_ts") in (None, m["ts"]) or m.get("broadcast")]
            return copy.deepcopy(top)

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        with self._lock:
            stored = self._messages.get(self._lookup_channel(channel) or channel, [])
            return copy.deepcopy([m for m in stored if m.get("thread_ts") == ts and m["ts"] != ts])

    def find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._lock:
            for message in self._messages.get(self._lookup_channel(channel) or channel, []):
                if message["ts"] == ts:
                    return copy.deepcopy(message)
        return None

    def ephemerals(self, user: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy([e for e in self._ephemerals if user in (None, e["user"])])

    @property
    def responses(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy([r["body"] for r in self._responses])

    @property
    def uploads(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._uploads)

    @property
    def views(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._view_log)

    def view(self, view_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._views.get(view_id)
            return copy.deepcopy(found) if found is not None else None

    # -- directory ------------------------------------------------------------------------

    def _lookup_channel(self, channel: str) -> str | None:
        """The channel id `channel` names, or None when Slack would not know it."""
        if not channel:
            return None
        if channel in self.users:
            return "D" + channel[1:]  # a DM with that user
        if self.channels is None:
            return channel
        if channel in self.channels:
            return channel
        name = channel.lstrip("#")
        for channel_id, info in self.channels.items():
            if info.get("name") == name:
                return channel_id
        return None

    def _channel(self, args: Args, key: str = "channel") -> str:
        channel_id = self._lookup_channel(str(args.get(key) or ""))
        if channel_id is None:
            raise SlackError("channel_not_found")
        return channel_id

    def _user(self, user_id: Any) -> dict[str, Any]:
        if not isinstance(user_id, str) or user_id not in self.users:
            raise SlackError("user_not_found")
        info = self.users[user_id]
        real_name = info.get("real_name", info.get("name", user_id))
        return {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": info.get("name", user_id.lower()),
            "real_name": real_name,
            "deleted": False,
            "is_bot": False,
            "tz": "UTC",
            **info,
            "profile": {
                "real_name": real_name,
                "display_name": info.get("name", ""),
                **info.get("profile", {}),
            },
        }

    # -- Web API methods ------------------------------------------------------------------

    def api_test(self, args: Args) -> Result:
        return {"args": {k: v for k, v in args.items() if k != "token"}}

    def auth_test(self, args: Args) -> Result:
        return {
            "url": "https://sandbox.slack.com/",
            "team": "Sandbox",
            "user": "rollback-bot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def apps_connections_open(self, args: Args) -> Result:
        if self.socket_url is None:
            raise SlackError("internal_error")
        return {"url": self.socket_url()}

    def chat_post_message(self, args: Args) -> Result:
        channel = self._channel(args)
        content = _message_content(args, required=True)
        ts = self._next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "ts": ts,
            "channel": channel,
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": "",
            "blocks": [],
            "updated": 0,
            **content,
        }
        thread_ts = args.get("thread_ts")
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
            message["broadcast"] = _truthy(args.get("reply_broadcast"))
            self._note_reply(channel, str(thread_ts), ts)
        self._messages.setdefault(channel, []).append(message)
        return {"channel": channel, "ts": ts, "message": _public(message)}

    def post_as_user(
        self, user: str, channel: str, text: str, *, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """A person's message (as if typed in the client), for shortcuts to be used on."""
        if user not in self.users:
            raise SlackError("user_not_found")
        channel_id = self._lookup_channel(channel)
        if channel_id is None:
            raise SlackError("channel_not_found")
        with self._lock:
            ts = self._next_ts()
            message: dict[str, Any] = {
                "type": "message",
                "ts": ts,
                "channel": channel_id,
                "user": user,
                "team": TEAM_ID,
                "text": text,
                "updated": 0,
            }
            if thread_ts:
                message["thread_ts"] = thread_ts
                message["broadcast"] = False
                self._note_reply(channel_id, thread_ts, ts)
            self._messages.setdefault(channel_id, []).append(message)
            return copy.deepcopy(message)

    def chat_get_permalink(self, args: Args) -> Result:
        channel = self._channel(args)
        message = self._stored(channel, args.get("message_ts"))
        ts = str(message["ts"]).replace(".", "")
        link = f"https://sandbox.slack.com/archives/{channel}/p{ts}"
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            link += f"?thread_ts={thread_ts}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def _note_reply(self, channel: str, thread_ts: str, ts: str) -> None:
        for parent in self._messages.get(channel, []):
            if parent["ts"] == thread_ts:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = ts

    def _stored(self, channel: str, ts: Any) -> dict[str, Any]:
        for message in self._messages.get(channel, []):
            if message["ts"] == ts:
                return message
        raise SlackError("message_not_found")

    def chat_update(self, args: Args) -> Result:
        channel = self._channel(args)
        message = self._stored(channel, args.get("ts"))
        message.update(_message_content(args, required=True))
        message["updated"] += 1
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return {
            "channel": channel,
            "ts": message["ts"],
            "text": message["text"],
            "message": _public(message),
        }

    def chat_delete(self, args: Args) -> Result:
        channel = self._channel(args)
        message = self._stored(channel, args.get("ts"))
        self._messages[channel].remove(message)
        return {"channel": channel, "ts": message["ts"]}

    def chat_post_ephemeral(self, args: Args) -> Result:
        channel = self._channel(args)
        user = args.get("user")
        if not user:
            raise SlackError("user_not_found")
        self._user(user)
        ephemeral = {
            "channel": channel,
            "user": user,
            "ts": self._next_ts(),
            "thread_ts": args.get("thread_ts"),
            "text": "",
            "blocks": [],
            **_message_content(args, required=True),
        }
        self._ephemerals.append(ephemeral)
        return {"message_ts": ephemeral["ts"]}

    def _consume_trigger(self, trigger_id: Any) -> dict[str, Any]:
        trigger = self._triggers.get(trigger_id) if isinstance(trigger_id, str) else None
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger["used"]:
            raise SlackError("exchanged_trigger_id")
        if time.monotonic() - trigger["created"] > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        trigger["used"] = True
        return trigger

    def _build_view(self, args: Args, *, view_id: str, previous: str | None) -> dict[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            raise SlackError("invalid_arguments")
        if view["type"] == "modal" and not isinstance(view.get("title"), dict):
            raise SlackError("invalid_arguments")
        try:
            validate_blocks(view.get("blocks"), max_blocks=MAX_VIEW_BLOCKS)
        except InvalidBlocks as exc:
            raise SlackError("invalid_arguments") from exc
        return {
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            **view,
            "id": view_id,
            "team_id": TEAM_ID,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
            "app_installed_team_id": TEAM_ID,
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "previous_view_id": previous,
            "root_view_id": view_id,
        }

    def _log_view(self, op: str, view: dict[str, Any], trigger_id: Any, user: Any) -> None:
        self._views[view["id"]] = view
        self._view_log.append(
            {
                "op": op,
                "view_id": view["id"],
                "trigger_id": trigger_id,
                "user": user,
                "view": copy.deepcopy(view),
                "at": time.time(),
            }
        )

    def views_open(self, args: Args) -> Result:
        trigger = self._consume_trigger(args.get("trigger_id"))
        view = self._build_view(args, view_id=self._next_id("V"), previous=None)
        self._view_stacks[trigger["user"] or ""] = [view["id"]]
        self._log_view("open", view, args.get("trigger_id"), trigger["user"])
        return {"view": copy.deepcopy(view)}

    def views_push(self, args: Args) -> Result:
        trigger = self._consume_trigger(args.get("trigger_id"))
        stack = self._view_stacks.setdefault(trigger["user"] or "", [])
        if len(stack) >= MAX_VIEW_STACK:
            raise SlackError("push_limit_reached")
        previous = stack[-1] if stack else None
        view = self._build_view(args, view_id=self._next_id("V"), previous=previous)
        if stack:
            view["root_view_id"] = stack[0]
        stack.append(view["id"])
        self._log_view("push", view, args.get("trigger_id"), trigger["user"])
        return {"view": copy.deepcopy(view)}

    def views_update(self, args: Args) -> Result:
        current = self._find_view(args)
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view = self._build_view(args, view_id=current["id"], previous=current["previous_view_id"])
        view["root_view_id"] = current["root_view_id"]
        self._log_view("update", view, None, None)
        return {"view": copy.deepcopy(view)}

    def _find_view(self, args: Args) -> dict[str, Any]:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if view_id and view_id in self._views:
            return self._views[view_id]
        if external_id:
            for view in self._views.values():
                if view.get("external_id") == external_id:
                    return view
        raise SlackError("not_found")

    def usergroups_users_list(self, args: Args) -> Result:
        group = args.get("usergroup")
        if group not in self.usergroups:
            raise SlackError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def users_info(self, args: Args) -> Result:
        return {"user": self._user(args.get("user"))}

    def conversations_info(self, args: Args) -> Result:
        channel_id = self._channel(args)
        info = (self.channels or {}).get(channel_id, {})
        is_im = channel_id.startswith("D")
        return {
            "channel": {
                "id": channel_id,
                "name": info.get("name", channel_id.lower()),
                "is_channel": not is_im and not info.get("is_private", False),
                "is_im": is_im,
                "is_private": bool(info.get("is_private", False)),
                "is_archived": False,
                "is_member": True,
                **info,
            }
        }

    def files_get_upload_url_external(self, args: Args) -> Result:
        filename, length = args.get("filename"), args.get("length")
        if not filename or length in (None, ""):
            raise SlackError("invalid_arguments")
        file_id = self._next_id("F")
        self._pending_files[file_id] = {
            "filename": filename,
            "length": int(length),
            "content": None,
        }
        return {"upload_url": f"{self.public_url}upload/v1/{file_id}", "file_id": file_id}

    def receive_upload(self, file_id: str, content: bytes) -> bool:
        """Step two of an upload: the bytes POSTed to the upload URL."""
        with self._lock:
            pending = self._pending_files.get(file_id)
            if pending is None:
                return False
            pending["content"] = content
            return True

    def files_complete_upload_external(self, args: Args) -> Result:
        files = args.get("files")
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        channel = self._channel(args, "channel_id") if args.get("channel_id") else None
        completed = []
        for entry in files:
            file_id = entry.get("id") if isinstance(entry, dict) else None
            pending = self._pending_files.get(file_id) if isinstance(file_id, str) else None
            if pending is None or pending["content"] is None:
                raise SlackError("file_not_found")
            completed.append((entry, pending))
        shared = []
        for entry, pending in completed:
            del self._pending_files[entry["id"]]
            upload = {
                "file_id": entry["id"],
                "filename": pending["filename"],
                "title": entry.get("title") or pending["filename"],
                "content": pending["content"],
                "length": pending["length"],
                "channel_id": channel,
                "thread_ts": args.get("thread_ts"),
                "initial_comment": args.get("initial_comment"),
            }
            self._uploads.append(upload)
            shared.append(_file_object(upload))
        if channel is not None:
            self._share_files(channel, args, shared)
        return {"files": shared}

    def _share_files(self, channel: str, args: Args, shared: list[dict[str, Any]]) -> None:
        """Slack announces shared files with a message in the channel or thread."""
        share = {"channel": channel, "text": args.get("initial_comment") or ""}
        if args.get("thread_ts"):
            share["thread_ts"] = args["thread_ts"]
        ts = self._next_ts()
        message = {
            "type": "message",
            "ts": ts,
            "channel": channel,
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "text": share["text"],
            "blocks": [],
            "files": shared,
            "updated": 0,
        }
        if "thread_ts" in share:
            message["thread_ts"] = share["thread_ts"]
            self._note_reply(channel, share["thread_ts"], ts)
        self._messages.setdefault(channel, []).append(message)

    # -- response_url ---------------------------------------------------------------------

    def post_response(self, token: str, body: Any) -> tuple[int, str]:
        """A POST to a response_url: HTTP status and body Slack would answer."""
        with self._lock:
            hook = self._response_urls.get(token)
            if hook is None:
                return 404, "no_active_hooks"
            if time.monotonic() - hook["created"] > RESPONSE_URL_TTL:
                return 404, "expired_url"
            if hook["uses"] >= RESPONSE_URL_USES:
                return 404, "used_url"
            if not isinstance(body, dict):
                return 400, "invalid_payload"
            hook["uses"] += 1
            self._responses.append({"hook": dict(hook), "body": copy.deepcopy(body)})
            try:
                self._apply_response(hook, body)
            except SlackError as exc:
                return 400, exc.error
        return 200, "ok"

    def _apply_response(self, hook: dict[str, Any], body: dict[str, Any]) -> None:
        channel, message_ts = hook["channel"], hook["message_ts"]
        if channel is None:
            return
        if message_ts is not None and _truthy(body.get("delete_original")):
            self.chat_delete({"channel": channel, "ts": message_ts})
        elif message_ts is not None and _truthy(body.get("replace_original")):
            self.chat_update({**body, "channel": channel, "ts": message_ts})
        elif body.get("response_type") == "in_channel":
            self.chat_post_message({**body, "channel": channel})
        elif hook["user"] is not None:
            self.chat_post_ephemeral({**body, "channel": channel, "user": hook["user"]})


def _truthy(value: Any) -> bool:
    return value is True or value in ("true", "1", 1)


def _message_content(args: Args, *, required: bool) -> dict[str, Any]:
    """text/blocks/attachments/metadata from a request, validated like Slack does."""
    content: dict[str, Any] = {}
    if args.get("text") is not None:
        text = str(args["text"])
        if len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        content["text"] = text
    if args.get("blocks") is not None:
        try:
            validate_blocks(args["blocks"])
        except InvalidBlocks as exc:
            raise SlackError("invalid_blocks") from exc
        content["blocks"] = args["blocks"]
    for key in ("attachments", "metadata"):
        if args.get(key) is not None:
            content[key] = args[key]
    if required and not (
        content.get("text") or content.get("blocks") or content.get("attachments")
    ):
        raise SlackError("no_text")
    return content


def _public(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as Slack returns it (without the stand-in's bookkeeping)."""
    hidden = ("channel", "updated", "broadcast")
    return copy.deepcopy({k: v for k, v in message.items() if k not in hidden})


def _file_object(upload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": upload["file_id"],
        "name": upload["filename"],
        "title": upload["title"],
        "size": len(upload["content"]),
        "mimetype": "application/octet-stream",
    }
