"""Field types the senders' payload models share, and pydantic's errors in our words.

The payload models declare structure with pydantic; these annotated types hold the
rules real senders need and pydantic's own coercions would get wrong: label values may
be numbers or booleans (they become their text), timestamps are RFC 3339 with any
fraction length or Unix seconds and Go's zero time means "unset", a number may arrive
as text (Prometheus writes samples that way) but a boolean is never a number.

Every problem becomes one ``AlertPayloadError`` whose message starts with the field path
(``alerts[3].labels: expected an object, got a list``), so the HTTP layer can always
answer 4xx: Alertmanager retries 5xx forever, and a payload that is wrong today is wrong
on every retry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainValidator, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from rollback_bot.alerts.model import DEFAULT_SEVERITY, AlertPayloadError, AlertStatus
from rollback_bot.alerts.payloads.body import MAX_INT

# pydantic's error type for the problems our validators find; its message is ours.
FIELD_ERROR = "alert_field"

_TIMESTAMP = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<frac>\d+))?(?P<tz>[Zz]|[+-]\d{2}:?\d{2})?$"
)

# Annotation keys that carry a runbook link, in order of preference.
RUNBOOK_KEYS = ("runbook_url", "runbook")
DASHBOARD_KEYS = ("dashboard_url", "dashboardURL", "dashboard")

Model = TypeVar("Model", bound=BaseModel)


class Payload(BaseModel):
    """Base of every payload model: unknown keys are the sender's business, not an error."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def problem(message: str) -> PydanticCustomError:
    return PydanticCustomError(FIELD_ERROR, message)


def kind(value: object) -> str:
    """How a JSON value is named in an error: "a string", "an object", "null"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# -- validators -----------------------------------------------------------------------------


def _optional_text(raw: object) -> str | None:
    """A string, stripped; empty or absent is None."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise problem(f"expected a string, got {kind(raw)}")
    return raw.strip() or None


def _required_text(raw: object) -> str:
    value = _optional_text(raw)
    if not value:
        raise problem("required (a non-empty string)")
    return value


def _label_value(raw: object) -> str:
    """Label and annotation values: strings; finite numbers and booleans become their text."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and math.isfinite(raw):
        return str(raw)
    if isinstance(raw, int) and -MAX_INT < raw < MAX_INT:
        return str(raw)
    raise problem(f"expected a string, got {kind(raw)}")


def _present(raw: object) -> object:
    # An explicit null where an object belongs reads "required", as a missing key does.
    if raw is None:
        raise problem("required")
    return raw


def parse_status(raw: object) -> AlertStatus:
    if not isinstance(raw, str):
        raise problem(f"expected 'firing' or 'resolved', got {kind(raw)}")
    status = raw.strip().lower()
    if status == "firing":
        return "firing"
    if status == "resolved":
        return "resolved"
    raise problem(f"expected 'firing' or 'resolved', got {raw!r}")


def parse_number(raw: object) -> float | None:
    """A number, or a numeric string (Prometheus writes sample values as text)."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise problem("expected a number, got a boolean")
    if isinstance(raw, int | float):
        try:
            return float(raw)
        except OverflowError:
            raise problem("number too large") from None
    if isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            raise problem(f"expected a number, got {raw[:100]!r}") from None
    raise problem(f"expected a number, got {kind(raw)}")


def _timestamp(raw: object) -> datetime | None:
    """RFC 3339 (any fraction length, ``Z`` or offset) or Unix seconds; None when unset."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise problem("expected a timestamp, got a boolean")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise problem(f"expected a timestamp, got {raw!r}")
        try:
            moment = datetime.fromtimestamp(raw, UTC)
        except (OverflowError, OSError, ValueError):
            raise problem(f"timestamp out of range: {raw!r}") from None
        return _in_range(moment, raw)
    if not isinstance(raw, str):
        raise problem(f"expected a timestamp, got {kind(raw)}")
    match = _TIMESTAMP.match(raw.strip())
    if match is None:
        raise problem(f"expected an RFC 3339 timestamp, got {raw!r}")
    if match["tz"] is None:
        raise problem(f"timestamp has no timezone: {raw!r}")
    if match["date"].startswith("0001-"):
        return None  # Go's zero time: the sender means "not set"
    # Python keeps microseconds; Go senders write nanoseconds.
    frac = (match["frac"] or "")[:6].ljust(6, "0")
    tz = "+00:00" if match["tz"] in ("Z", "z") else match["tz"]
    if len(tz) == 5:
        tz = f"{tz[:3]}:{tz[3:]}"
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}.{frac}{tz}")
        moment = parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise problem(f"invalid timestamp {raw!r} ({exc})") from None
    return _in_range(moment, raw)


# A moment outside these years is a sender's bug, and beyond 9999 no arithmetic on it works.
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def _in_range(moment: datetime, raw: object) -> datetime:
    if not _EARLIEST <= moment < _LATEST:
        raise problem(f"timestamp out of range (1970 to 8999): {raw!r}")
    return moment


def _no_data_is_empty(raw: object) -> object:
    return {} if raw is None else raw


# -- the annotated types the models use ------------------------------------------------------
OptionalText = Annotated[str | None, PlainValidator(_optional_text)]
RequiredText = Annotated[str, PlainValidator(_required_text)]
LabelValue = Annotated[str, PlainValidator(_label_value)]
Labels = Annotated[dict[str, LabelValue], BeforeValidator(_present)]
Status = Annotated[AlertStatus, PlainValidator(parse_status)]
Number = Annotated[float | None, PlainValidator(parse_number)]
# Grafana refId -> number; null (no data for that query) is kept here, dropped by the caller.
Values = Annotated[dict[str, Number], BeforeValidator(_no_data_is_empty)]
Timestamp = Annotated[datetime | None, PlainValidator(_timestamp)]


# -- from a payload to alerts ----------------------------------------------------------------
def validate(model: type[Model], body: object) -> Model:
    """``model`` from ``body``, or the first problem as ``AlertPayloadError``."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise AlertPayloadError(field_path(first["loc"]), _describe(first)) from None


def checked(path: str, check: Callable[[object], Any], raw: object) -> Any:
    """Run one of the validators above outside a model (a value taken from elsewhere)."""
    try:
        return check(raw)
    except PydanticCustomError as exc:
        raise AlertPayloadError(path, exc.message()) from None


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("alerts", 3, "labels")`` -> ``alerts[3].labels``; the body itself is ``(body)``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(body)"


def _describe(error: ErrorDetails) -> str:
    got = kind(error.get("input"))
    match error["type"]:
        case "missing":
            return "required"
        case "model_type" | "model_attributes_type" | "dict_type":
            return f"expected an object, got {got}"
        case "list_type":
            return f"expected a list, got {got}"
        case _:
            # Ours (FIELD_ERROR) carry their own message; anything else keeps pydantic's.
            return error["msg"]


def severity(raw: str | None) -> str:
    return raw.strip().lower() if raw and raw.strip() else DEFAULT_SEVERITY


def runbook_link(annotations: Mapping[str, str]) -> dict[str, str]:
    """The links an alert's annotations carry: its runbook, and its dashboard beside it."""
    found: dict[str, str] = {}
    for name, keys in (("runbook", RUNBOOK_KEYS), ("dashboard", DASHBOARD_KEYS)):
        url = next((annotations[k] for k in keys if annotations.get(k)), None)
        if url and url.strip():
            found[name] = url.strip()
    return found


def received(received_at: datetime | None) -> datetime:
    """The receipt time in UTC (now when not given); a naive time is a caller's bug."""
    if received_at is None:
        return datetime.now(UTC)
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    return received_at.astimezone(UTC)
