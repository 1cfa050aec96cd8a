"""What ``serve`` checks before it says it is up: refuse on what cannot work, warn on risks.

Each problem is one line naming the setting and what to do; ``serve`` prints them all
and exits 2, never a traceback. Warnings (open alert endpoints, channels the bot cannot
see) are printed and logged, and the bot starts anyway.
"""

from __future__ import annotations

import os
from pathlib import Path

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from rollback_bot.catalog import Catalog
from rollback_bot.config import Settings

IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def settings_problems(settings: Settings, *, socket_mode: bool) -> list[str]:
    problems = []
    if not settings.slack_bot_token.get_secret_value():
        problems.append(
            "SLACK_BOT_TOKEN is not set: the bot cannot post to Slack (the Bot User OAuth "
            "Token, xoxb-..., from the app's OAuth & Permissions page)"
        )
    if socket_mode and not settings.slack_app_token.get_secret_value():
        problems.append(
            "SLACK_APP_TOKEN is not set: --socket-mode needs an app-level token (xapp-...) "
            "with connections:write, from the app's Basic Information page"
        )
    if not socket_mode and not settings.slack_signing_secret.get_secret_value():
        problems.append(
            "SLACK_SIGNING_SECRET is not set: every request to /slack/events would be refused "
            "(the Signing Secret from the app's Basic Information page)"
        )
    kube = kubeconfig_problem(settings.kubeconfig)
    if kube:
        problems.append(kube)
    if settings.leader_election:
        from rollback_bot.leadership import election_settings

        try:
            election_settings(settings)
        except ValueError as exc:
            problems.append(f"LEADER_ELECTION_LEASE_DURATION and the others: {exc}")
    return problems


def kubeconfig_problem(kubeconfig: str | None = None) -> str | None:
    """Why the Kubernetes client configuration cannot be read, if it cannot."""
    named = kubeconfig or os.environ.get("KUBECONFIG")
    if named:
        for part in filter(None, named.split(os.pathsep)):
            try:
                Path(part).expanduser().read_bytes()
            except OSError as exc:
                return (
                    f"KUBECONFIG {part} cannot be read ({exc.strerror}): point it at a kubeconfig"
                )
        return None
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        if not IN_CLUSTER_TOKEN.is_file():
            return (
                f"running in a pod but {IN_CLUSTER_TOKEN} is missing: mount the service "
                "account token (automountServiceAccountToken) or set KUBECONFIG"
            )
        return None
    default = Path("~/.kube/config").expanduser()
    if not default.is_file():
        return (
            f"no Kubernetes configuration: KUBECONFIG is not set, {default} does not exist "
            "and this is not a pod: set KUBECONFIG to a kubeconfig file"
        )
    return None


def open_alerts_warning(settings: Settings) -> str | None:
    if settings.alert_webhook_token.get_secret_value():
        return None
    return (
        "WARNING: ALERT_WEBHOOK_TOKEN is not set: /alerts/alertmanager, /alerts/grafana and "
        "/alerts/generic accept alerts from anyone who can reach this port (alerts can start "
        "automatic rollbacks); set it and send it as a bearer token"
    )


def channel_warnings(slack: WebClient, catalog: Catalog) -> list[str]:
    """Ask Slack about every channel the catalog names; warn on the ones it cannot see.

    Without the channels:read/groups:read scopes Slack answers ``missing_scope``: that
    is one warning, not a failure, since posting may still work.
    """
    channels: dict[str, str] = {}
    if catalog.fallback_channel:
        channels[catalog.fallback_channel] = "fallback_channel"
    for i, service in enumerate(catalog.services):
        channels.setdefault(service.channel, f"services[{i}].channel ({service.name})")
    warnings: list[str] = []
    for channel, where in channels.items():
        try:
            info = slack.conversations_info(channel=channel).get("channel") or {}
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            if error == "missing_scope":
                return [
                    *warnings,
                    "WARNING: cannot check the catalog's channels: the bot token lacks the "
                    "channels:read / groups:read scopes (see slack-app-manifest.yaml)",
                ]
            warnings.append(
                f"WARNING: {where}: Slack does not show channel {channel} to the bot ({error}): "
                "check the id, and invite the bot to private channels"
            )
            continue
        except Exception as exc:  # Slack unreachable: readiness reports it; start anyway
            return [*warnings, f"WARNING: cannot check the catalog's channels: {exc}"]
        if info.get("is_archived"):
            warnings.append(f"WARNING: {where}: channel {channel} is archived")
        elif info.get("is_private") and not info.get("is_member", True):
            warnings.append(
                f"WARNING: {where}: the bot is not in private channel {channel}: invite it"
            )
    return warnings
