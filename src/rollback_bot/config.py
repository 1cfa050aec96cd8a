"""Process settings from the environment (the names in the shared contract).

Secrets are ``SecretStr`` so that printing, logging or repr-ing the settings
never reveals a token; code must call ``get_secret_value()`` on purpose.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr = SecretStr("")
    slack_signing_secret: SecretStr = SecretStr("")
    slack_app_token: SecretStr = SecretStr("")
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///rollback-bot.db"
    catalog_path: str = Field(
        default="catalog.yaml",
        validation_alias=AliasChoices("ROLLBACK_BOT_CATALOG", "catalog_path"),
    )
    alert_webhook_token: SecretStr = SecretStr("")
    # Comma-separated; empty keeps the defaults in rollback_bot.redaction.
    redact_name_patterns: str = ""
    redact_value_patterns: str = ""
    # When set, GET /metrics requires "Authorization: Bearer <METRICS_TOKEN>".
    metrics_token: SecretStr = SecretStr("")
    port: int = 3000
    # Slack allows about one message per second per channel; the outbox paces to this.
    slack_channel_rate: float = 1.0
    # Threads doing the work behind acknowledgements (fewer than the HTTP server's 16, so
    # acks win the interpreter lock in a burst; the work waits its turn).
    slack_work_threads: int = Field(default=2, ge=1)
    kubeconfig: str | None = None
    # The helm binary Helm release targets are rolled back with (HELM_BIN).
    helm_bin: str = "helm"
    # Unset: INFO for `serve`, WARNING for the other commands (quiet unless they fail).
    log_level: LogLevel | None = None
    # json: one object per line with time, level, logger, message and incident/rollback ids.
    log_format: Literal["text", "json"] = "text"

    # High availability: replicas elect a leader on a coordination.k8s.io/v1 Lease; only
    # the leader runs scheduled work. Durations in seconds, as client-go's leaderelection.
    leader_election: bool = False
    leader_election_namespace: str | None = None  # unset: POD_NAMESPACE, else "default"
    leader_election_lease_name: str = "rollback-bot"
    leader_election_lease_duration: float = 15.0
    leader_election_renew_deadline: float = 10.0
    leader_election_retry_period: float = 2.0
    pod_name: str | None = None  # the replica's identity in the Lease (else hostname-pid)
    pod_namespace: str | None = None

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret, for the log formatter to hide (empty ones left out)."""
        fields = (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.alert_webhook_token,
            self.metrics_token,
        )
        return tuple(v for f in fields if (v := f.get_secret_value()))

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        # LOG_LEVEL=debug is as good as DEBUG; an empty variable means "the default".
        if isinstance(value, str):
            return value.strip().upper() or None
        return value


def load_settings() -> Settings:
    return Settings()
