"""Slack HTTP requests into bolt, with one parsing fix.

slack-bolt (1.x) reads any form body containing the letters ``payload`` as an
interactivity request and looks for a ``payload`` field; a slash command whose text
says "payload" (``/rollback note INC-7 the payload service died``) then arrives as an
empty body and is dropped as "Unhandled request". :class:`FormRequest` parses such a body
as the form it is, also in the copy bolt makes for lazy listeners. The raw body (which
the signature covers) is untouched.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from flask import Request
from slack_bolt import BoltContext
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context


class FormRequest(BoltRequest):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        raw = self.raw_body
        if self.body or not raw or raw.lstrip().startswith("{") or "payload" not in raw:
            return
        form = dict(parse_qsl(raw, keep_blank_values=True))
        if form and "payload" not in form:
            self.body = form
            self.context = build_context(BoltContext(kwargs.get("context") or {}), form)

    def to_copyable(self) -> BoltRequest:
        return FormRequest(
            body=self.raw_body if self.mode == "http" else self.body,
            query=self.query,
            headers=self.headers,
            context=self.context.to_copyable(),
            mode=self.mode,
        )


def bolt_request(req: Request) -> BoltRequest:
    return FormRequest(
        body=req.get_data(as_text=True),
        query=req.query_string.decode("utf-8"),
        headers=req.headers,
    )
