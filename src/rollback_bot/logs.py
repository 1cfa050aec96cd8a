"""The process's one logging setup: level, text or JSON lines, ids of what is being handled.

``cli.main`` calls :func:`setup_logging` once. ``LOG_FORMAT=json`` writes one object per
line (``time``, ``level``, ``logger``, ``message``, and ``incident``/``rollback`` while
one is being handled) for a log shipper to index without parsing prose. The JSON
formatter is a few lines over ``json.dumps`` rather than python-json-logger: the field
set is fixed and small, and a dependency would buy only configuration we do not need.

The ids travel in a context variable set by :func:`log_context` where the runner and the
rollback service work on one rollback, so no call site has to pass them to each log call.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO

from rollback_bot.redaction import MARK, redact_text

LogFormat = Literal["text", "json"]

# The ids of what the current thread is working on; each scheduler or request thread
# starts with an empty mapping (threads do not inherit context variables).
_IDS: ContextVar[Mapping[str, int]] = ContextVar("rollback_bot_log_ids", default={})  # noqa: B039
ID_FIELDS = ("incident", "rollback")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(ids)s"

# Third-party loggers that talk at INFO about plumbing: Alembic's nine lines per command
# (plugins, SQLite impl, "Will assume non-transactional DDL") say nothing an operator
# acts on, so they are heard only with -v.
CHATTY_LOGGERS = ("alembic",)

# Bolt's RequestVerification logs a rejected request at INFO with its whole body, which
# carries response_url and trigger_id: capabilities to post as the app for a while.
BOLT_VERIFICATION_LOGGER = "slack_bolt.RequestVerification"
_BOLT_REJECTION_PREFIX = "Invalid request signature detected"


@contextmanager
def log_context(*, incident: int | None = None, rollback: int | None = None) -> Iterator[None]:
    """Tag every log record made inside the block with these ids (None: leave as is)."""
    given = {"incident": incident, "rollback": rollback}
    ids = {**_IDS.get(), **{k: v for k, v in given.items() if v is not None}}
    token = _IDS.set(ids)
    try:
        yield
    finally:
        _IDS.reset(token)


def current_ids() -> Mapping[str, int]:
    return _IDS.get()


class ContextIdsFilter(logging.Filter):
    """Copy the current ids onto each record (an explicit ``extra={"rollback": 7}`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _IDS.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        present = [(n, getattr(record, n)) for n in ID_FIELDS if getattr(record, n, None)]
        record.ids = "".join(f" [{n}={v}]" for n, v in present)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ids only when there are any, the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ID_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class RedactingFormatter(logging.Formatter):
    """The whole formatted line, traceback included, with secrets replaced by ``[redacted]``.

    At DEBUG the libraries log request and response bodies (a ConfigMap's values, a
    header); so the last step before the stream hides the configured secrets themselves
    and every value that looks like one (``rollback_bot.redaction``).
    """

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._inner = inner
        # Short values would blank ordinary words; real tokens and secrets are long.
        self._secrets = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        line = redact_text(self._inner.format(record))
        for secret in self._secrets:
            line = line.replace(secret, MARK)
        return line


class BoltRejectionFilter(logging.Filter):
    """Make bolt's signature-failure record one line that names no signature nor body."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(_BOLT_REJECTION_PREFIX):
            record.msg = "rejected a Slack request: invalid signature or stale timestamp"
            record.args = ()
        return True


def quiet_bolt_rejections() -> None:
    """Install :class:`BoltRejectionFilter` on bolt's verification logger (idempotent).

    Bolt copies level and filters onto that logger when an ``App`` is built, but only
    when it has no filters of its own, so ours stays in place.
    """
    logger = logging.getLogger(BOLT_VERIFICATION_LOGGER)
    if not any(isinstance(f, BoltRejectionFilter) for f in logger.filters):
        logger.addFilter(BoltRejectionFilter())


def default_level(*, serving: bool, verbose: bool) -> str:
    """INFO for the server and for -v; a CLI command is otherwise quiet unless it fails."""
    return "INFO" if serving or verbose else "WARNING"


def setup_logging(
    *,
    level: str | None,
    log_format: LogFormat,
    serving: bool,
    verbose: bool = False,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Configure the root logger once for this process; ``level`` None takes the default.

    ``secrets``: the configured tokens, hidden from every line whatever logged them.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextIdsFilter())
    json_lines = log_format == "json"
    inner = JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(RedactingFormatter(inner, secrets))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel((level or default_level(serving=serving, verbose=verbose)).upper())
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    quiet_bolt_rejections()
