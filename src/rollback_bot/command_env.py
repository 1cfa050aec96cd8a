"""The few settings the read commands need, read from the environment without pydantic.

``rollback-bot export``, ``incidents`` and ``verify-timeline`` use the database URL, the
log settings and whether a Slack token is set; importing pydantic-settings to read them
costs more than the rest of such a command. The names and their meaning are the ones
:class:`rollback_bot.config.Settings` reads (the shared contract; matched in any case, as
pydantic-settings does), and the same values are refused; a test holds both readers to
the same answers. Every other command reads the full :class:`~rollback_bot.config.Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["text", "json"]
LOG_LEVELS: tuple[LogLevel, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
DEFAULT_DATABASE_URL = "sqlite:///rollback-bot.db"
SECRET_NAMES = (
    "slack_bot_token",
    "slack_signing_secret",
    "slack_app_token",
    "alert_webhook_token",
    "metrics_token",
)


class InvalidSetting(ValueError):
    """A variable's value is refused; the message names the setting."""


@dataclass(frozen=True)
class CommandSettings:
    database_url: str = DEFAULT_DATABASE_URL
    log_level: LogLevel | None = None
    log_format: LogFormat = "text"
    has_slack_token: bool = False
    _secrets: tuple[str, ...] = field(default=(), repr=False)

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret, for the log formatter to hide (empty ones left out)."""
        return self._secrets


def read_command_settings(environ: Mapping[str, str] | None = None) -> CommandSettings:
    env = {k.lower(): v for k, v in (os.environ if environ is None else environ).items()}
    level = env.get("log_level")
    if level is not None:
        level = level.strip().upper() or None
        if level is not None and level not in LOG_LEVELS:
            raise InvalidSetting(f"log_level (LOG_LEVEL): {level!r} is not one of {LOG_LEVELS}")
    log_format = env.get("log_format", "text")
    if log_format not in LOG_FORMATS:
        raise InvalidSetting(f"log_format (LOG_FORMAT): {log_format!r} is not one of {LOG_FORMATS}")
    secrets = tuple(v for name in SECRET_NAMES if (v := env.get(name, "")))
    return CommandSettings(
        database_url=env.get("database_url", DEFAULT_DATABASE_URL),
        log_level=level,
        log_format=log_format,
        has_slack_token=bool(env.get("slack_bot_token", "")),
        _secrets=secrets,
    )
