"""Decoding request bodies the three ways Slack clients send them.

slack_sdk posts JSON for some methods, form fields for others (with nested
structures such as `blocks` or `files` as JSON strings inside a form field)
and multipart for file uploads. The stand-in normalises all of them into one
dict so method handlers and test assertions see the same shapes.
"""

from __future__ import annotations

import json
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

# Form fields that Slack documents as JSON-encoded strings.
JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata", "channels")


def decode_args(content_type: str, body: bytes, query: str) -> dict[str, Any]:
    """The call's arguments: query string merged with the decoded body."""
    args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        decoded = json.loads(body or b"{}")
        if not isinstance(decoded, dict):
            raise ValueError("JSON body must be an object")
        args.update(decoded)
    elif kind == "multipart/form-data":
        args.update(_multipart(content_type, body))
    elif body:
        args.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return {key: _maybe_json(key, value) for key, value in args.items()}


def _maybe_json(key: str, value: Any) -> Any:
    if key in JSON_FIELDS and isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Form fields as strings; file parts as metadata (the bytes are not kept in args)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = _part_bytes(part)
        filename = part.get_filename()
        if filename is None:
            fields[name] = payload.decode("utf-8")
        else:
            fields[name] = {
                "filename": filename,
                "content_type": part.get_content_type(),
                "size": len(payload),
            }
    return fields


def multipart_file(content_type: str, body: bytes) -> bytes | None:
    """The first file part of a multipart body (Slack's upload URLs accept either form)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    for part in message.iter_parts():
        if part.get_filename() is not None:
            return _part_bytes(part)
    return None


def _part_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""
