"""Prometheus's HTTP API: instant queries (``/api/v1/query``).

The client returns every sample of the answer and says in one ``PrometheusError`` why there
is none; what a number of samples *means* belongs to the caller. The health gate fails when
any series is bad; a polled trigger rule needs exactly one number (several would make the
rule depend on which series came first, so that is an error to fix in the query).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

DEFAULT_TIMEOUT_SECONDS = 5.0


class PrometheusError(RuntimeError):
    """No usable answer; the message says why, in words for a person."""


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


class PrometheusClient:
    def __init__(
        self, *, http: requests.Session | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self._http = http or requests.Session()
        self._timeout = timeout

    def instant(self, base_url: str, query: str, *, at: datetime | None = None) -> list[Sample]:
        """The samples of an instant query (a scalar answers one sample without labels)."""
        params: dict[str, str] = {"query": query}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        url = f"{base_url.rstrip('/')}/api/v1/query"
        try:
            response = self._http.get(url, params=params, timeout=self._timeout)
        except requests.RequestException as exc:
            raise PrometheusError(
                f"Prometheus unreachable at {url}: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise PrometheusError(f"Prometheus answered HTTP {response.status_code} at {url}")
        try:
            body: Any = response.json()
        except ValueError:
            raise PrometheusError(
                f"Prometheus answered something that is not JSON at {url}"
            ) from None
        if not isinstance(body, dict):
            raise PrometheusError("Prometheus query failed: the answer is not a JSON object")
        if body.get("status") != "success":
            kind, why = body.get("errorType", "error"), body.get("error", "unknown error")
            raise PrometheusError(f"Prometheus query failed: {kind}: {why}")
        return samples(body.get("data"))


def samples(data: Any) -> list[Sample]:
    """The samples of a ``data`` object of an instant-query answer (vector or scalar)."""
    if not isinstance(data, dict):
        raise PrometheusError("Prometheus query failed: the answer has no data object")
    kind: Any = data.get("resultType")
    result: Any = data.get("result")
    try:
        if kind == "vector":
            return [
                Sample(labels=dict(item.get("metric") or {}), value=_value(item["value"]))
                for item in result
            ]
        if kind == "scalar":
            return [Sample(labels={}, value=_value(result))]
    except (TypeError, KeyError, AttributeError) as exc:
        raise PrometheusError(f"Prometheus query failed: malformed {kind} result") from exc
    raise PrometheusError(
        f"Prometheus query failed: query returned a {kind}; a vector or a scalar is needed"
    )


def _value(pair: Any) -> float:
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise PrometheusError(f"Prometheus query failed: not a sample: {pair!r:.80}")
    try:
        return float(pair[1])
    except (TypeError, ValueError):
        raise PrometheusError(f"Prometheus query failed: not a sample: {pair!r:.80}") from None
