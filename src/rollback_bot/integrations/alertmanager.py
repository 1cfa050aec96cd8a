"""Alertmanager's API v2: the alerts it holds active, and silences.

The health gate asks "is any alert of this service still firing?"; the Silence button
creates a silence. Both go through this one client, so an unreachable or odd Alertmanager
is described the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import requests

DEFAULT_TIMEOUT_SECONDS = 5.0


class AlertmanagerError(RuntimeError):
    """No usable answer; the message says why, in words for a person."""


class AlertmanagerClient:
    def __init__(
        self, *, http: requests.Session | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self._http = http or requests.Session()
        self._timeout = timeout

    def firing(self, base_url: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Active, unsilenced, uninhibited alerts whose labels equal ``labels``."""
        params: list[tuple[str, str]] = [
            ("active", "true"),
            ("silenced", "false"),
            ("inhibited", "false"),
        ]
        params += [("filter", f"{k}={_quoted(v)}") for k, v in sorted(labels.items())]
        body = self._call("GET", base_url, "/api/v2/alerts", params=params)
        if not isinstance(body, list):
            raise AlertmanagerError("Alertmanager answered something that is not a list")
        # The query asks for active alerts only; the state check guards against an
        # Alertmanager that ignores the filter parameters.
        return [
            a
            for a in body
            if isinstance(a, dict) and (a.get("status") or {}).get("state", "active") == "active"
        ]

    def silence(
        self,
        base_url: str,
        labels: Mapping[str, str],
        *,
        starts: datetime,
        ends: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        """Create a silence matching ``labels`` exactly; returns its id."""
        body = {
            "matchers": matchers(labels),
            "startsAt": starts.isoformat(),
            "endsAt": ends.isoformat(),
            "createdBy": created_by,
            "comment": comment,
        }
        answer = self._call("POST", base_url, "/api/v2/silences", json=body)
        if not isinstance(answer, dict) or not answer.get("silenceID"):
            raise AlertmanagerError("Alertmanager accepted the silence but gave no silence id")
        return str(answer["silenceID"])

    def _call(self, method: str, base_url: str, path: str, **kwargs: Any) -> Any:
        url = f"{base_url.rstrip('/')}{path}"
        try:
            response = self._http.request(method, url, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise AlertmanagerError(
                f"Alertmanager unreachable at {url}: {type(exc).__name__}"
            ) from None
        if response.status_code >= 300:
            raise AlertmanagerError(f"Alertmanager answered HTTP {response.status_code} at {url}")
        try:
            return response.json()
        except ValueError:
            raise AlertmanagerError(
                f"Alertmanager answered something that is not JSON at {url}"
            ) from None


def matchers(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Equality matchers for a silence, in label order."""
    return [
        {"name": k, "value": str(v), "isRegex": False, "isEqual": True}
        for k, v in sorted(labels.items())
    ]


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
