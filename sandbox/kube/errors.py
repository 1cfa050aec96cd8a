"""Kubernetes `Status` failures as exceptions.

Clients (kubectl, the official Python client, the bot) branch on the HTTP code and the
`reason` of a `Status` body, and kubectl prints its `message` verbatim. Raising these
from anywhere in the emulator keeps those three in agreement with a real API server.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failure answered as a `meta/v1 Status` object."""

    def __init__(
        self, code: int, reason: str, message: str, *, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(qualified: str, name: str) -> dict[str, Any]:
    plural, _, group = qualified.partition(".")
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = plural
    return details


def not_found(qualified: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified} "{name}" not found', details=_details(qualified, name)
    )


def already_exists(qualified: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified} "{name}" already exists',
        details=_details(qualified, name),
    )


def conflict(qualified: str, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return ApiError(409, "Conflict", message, details=_details(qualified, name))


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """`causes` are (field, message) pairs, as the API server's field errors."""
    qualified_kind = f"{kind}.{group}" if group else kind
    texts = [f"{field}: {msg}" for field, msg in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [
        {"reason": _cause_reason(msg), "message": msg, "field": field} for field, msg in causes
    ]
    return ApiError(
        422, "Invalid", f'{qualified_kind} "{name}" is invalid: {joined}', details=details
    )


def _cause_reason(message: str) -> str:
    if message.startswith("Required value"):
        return "FieldValueRequired"
    if message.startswith("Unsupported value"):
        return "FieldValueNotSupported"
    return "FieldValueInvalid"


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message, details={})


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        f'application/strategic-merge-patch+json; got "{content_type}"',
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def page_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={})


def injected(status: int) -> ApiError:
    """A server-side failure chosen by a test through the fault-injection API."""
    reasons = {
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
        429: "TooManyRequests",
    }
    reason = reasons.get(status, "InternalError")
    return ApiError(
        status,
        reason,
        "Internal error occurred: injected fault",
        details={"causes": [{"message": "injected fault"}]},
    )
