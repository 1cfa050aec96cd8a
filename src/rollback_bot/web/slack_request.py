"""Slack HTTP requests into bolt, with one parsing fix.

slack-bolt (1.x) reads any form body containing the letters ``payload`` as an
interactivity request and looks for a ``payload`` field; a slash command whose text
says "payload" (``/rollback note INC-7 the payload service died``) then arrives as an
empty body and is dropped as "Unhandled request". :class:`FormRequest` parses such a body
as the form it is, also in the copy bolt makes for lazy listeners. The raw body (which
the signature covers) is untouched.

Bolt hands each lazy listener ``deepcopy(request.to_copyable())``. For an HTTP request the
copyable is already its own: a copy of the body parsed for the acknowledgement (the
listeners only read it; parsing it again cost as much as the copy) and copies of the
query and the headers; its context holds the standard properties (ids, the token, the
per-request Web API client) by reference. Deep-copying it again (the Web API client with
it) cost more CPU than the rest of a click's acknowledgement, so that copy's
``__deepcopy__`` is itself.
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
        if self.mode != "http":  # Socket Mode: the body is a shared dict; bolt copies it
            return FormRequest(
                body=self.body,
                query=self.query,
                headers=self.headers,
                context=self.context.to_copyable(),
                mode=self.mode,
            )
        return _OwnCopy.of(self)


class _OwnCopy(FormRequest):
    """A request rebuilt from its parts: nothing in it is shared that a copy would save."""

    @classmethod
    def of(cls, request: BoltRequest) -> _OwnCopy:
        """What ``BoltRequest.__init__`` would build from the raw parts, without parsing again."""
        copy = cls.__new__(cls)
        copy.raw_body = request.raw_body
        copy.body = dict(request.body)
        copy.query = {name: list(values) for name, values in request.query.items()}
        copy.headers = {name: list(values) for name, values in request.headers.items()}
        copy.content_type = request.content_type
        copy.context = request.context.to_copyable()
        copy.lazy_only = request.lazy_only
        copy.lazy_function_name = request.lazy_function_name
        copy.mode = request.mode
        return copy

    def __deepcopy__(self, memo: dict[int, Any]) -> _OwnCopy:
        return self


def bolt_request(req: Request) -> BoltRequest:
    return FormRequest(
        body=req.get_data(as_text=True),
        query=req.query_string.decode("utf-8"),
        headers=req.headers,
    )
