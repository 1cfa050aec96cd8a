"""One logging setup: levels by command, text or JSON lines, ids of what is being handled."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Literal

import pytest

from rollback_bot.config import Settings
from rollback_bot.logs import log_context, setup_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """setup_logging configures the process; give the next test the logging it had."""
    root = logging.getLogger()
    alembic = logging.getLogger("alembic")
    saved = root.handlers[:], root.level, alembic.level
    yield
    root.handlers, _, _ = saved
    root.setLevel(saved[1])
    alembic.setLevel(saved[2])


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_json_lines_carry_the_ids_of_the_rollback_being_handled() -> None:
    out = io.StringIO()
    setup_logging(level=None, log_format="json", serving=True, stream=out)
    log = logging.getLogger("rollback_bot.rollbacks.runner")

    log.info("before any rollback")
    with log_context(incident=3):
        with log_context(rollback=7):
            log.warning("step %d of %d", 1, 2)
        log.info("incident only")
    log.info("explicit", extra={"rollback": 9})

    entries = [json.loads(line) for line in _lines(out)]
    assert [e["message"] for e in entries] == [
        "before any rollback",
        "step 1 of 2",
        "incident only",
        "explicit",
    ]
    assert set(entries[0]) == {"time", "level", "logger", "message"}
    assert entries[1]["level"] == "WARNING"
    assert entries[1]["logger"] == "rollback_bot.rollbacks.runner"
    assert (entries[1]["incident"], entries[1]["rollback"]) == (3, 7)
    assert entries[2]["incident"] == 3 and "rollback" not in entries[2]
    assert entries[3]["rollback"] == 9 and "incident" not in entries[3]
    assert entries[0]["time"].endswith("+00:00")


def test_json_lines_keep_the_traceback_in_the_object() -> None:
    out = io.StringIO()
    setup_logging(level=None, log_format="json", serving=True, stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("x").exception("job failed")

    (line,) = _lines(out)
    entry = json.loads(line)
    assert entry["message"] == "job failed"
    assert "RuntimeError: boom" in entry["exc_info"]


def test_text_lines_name_the_ids_too() -> None:
    out = io.StringIO()
    setup_logging(level=None, log_format="text", serving=True, stream=out)
    with log_context(rollback=7):
        logging.getLogger("rollback_bot.x").info("hello")
    logging.getLogger("rollback_bot.x").info("plain")

    first, second = _lines(out)
    assert first.endswith(" INFO rollback_bot.x: hello [rollback=7]")
    assert second.endswith(" INFO rollback_bot.x: plain")


@pytest.mark.parametrize(
    ("level", "serving", "verbose", "expected"),
    [
        (None, True, False, logging.INFO),
        (None, False, False, logging.WARNING),
        (None, False, True, logging.INFO),
        ("DEBUG", False, False, logging.DEBUG),
        ("ERROR", True, True, logging.ERROR),
    ],
)
def test_level_defaults_by_command_and_log_level_wins(
    level: str | None, serving: bool, verbose: bool, expected: int
) -> None:
    setup_logging(
        level=level, log_format="text", serving=serving, verbose=verbose, stream=io.StringIO()
    )
    assert logging.getLogger().level == expected


def test_alembic_is_heard_only_with_verbose() -> None:
    out = io.StringIO()
    setup_logging(level="INFO", log_format="text", serving=True, stream=out)
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    assert out.getvalue() == ""

    setup_logging(level=None, log_format="text", serving=False, verbose=True, stream=out)
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    assert "Context impl SQLiteImpl." in out.getvalue()


def test_settings_read_log_level_and_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("LOG_FORMAT", "json")
    settings = Settings()
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")

    monkeypatch.setenv("LOG_LEVEL", "")
    monkeypatch.delenv("LOG_FORMAT")
    settings = Settings()
    assert (settings.log_level, settings.log_format) == (None, "text")

    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="log_format"):
        Settings()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_debug_lines_never_carry_a_secret(log_format: Literal["text", "json"]) -> None:
    """Whatever a library logs at DEBUG (a body, a header, a traceback), no secret is shown."""
    out = io.StringIO()
    signing = "8f2b1c9d0e7a6b5c4d3e2f1a"  # not token-shaped: hidden because it is configured
    setup_logging(level="DEBUG", log_format=log_format, serving=True, stream=out, secrets=[signing])
    noisy = logging.getLogger("rollback_bot.tests.noisy_library")
    noisy.debug("headers: %s", {"Authorization": "Bearer xoxb-1234-5678-abcdefgh"})
    noisy.debug("body: signing secret %s, data.PASSWORD=%s", signing, "ghp_" + "a" * 36)
    try:
        raise RuntimeError(f"request failed with token xapp-1-A0-123-{signing}")
    except RuntimeError:
        noisy.exception("failed")
    text = out.getvalue()
    assert "xoxb-1234" not in text and signing not in text and "ghp_aaa" not in text
    assert "xapp-1-A0" not in text
    assert text.count("[redacted]") >= 4
