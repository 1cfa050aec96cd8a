"""Hostile bytes at the bot's HTTP endpoints get a 4xx with a reason, never a 5xx.

Alertmanager retries a 5xx forever, so a payload the bot cannot use must be
answered 4xx; the fuzz below runs in CI with a bounded number of examples.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.slack.signing import signature
from sandbox.stack import SIGNING_SECRET, LoopbackStack
from tests.e2e.conftest import CATALOG, FAST_SLACK, alertmanager_payload

TOKEN = "fuzz-token"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackStack]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'bot.db'}"
    with LoopbackStack(
        slack_channel_rate=FAST_SLACK,
        catalog=CATALOG,
        database_url=url,
        ready_delay=0.05,
        alert_token=TOKEN,
    ) as s:
        yield s


def _post(stack: LoopbackStack, source: str, body: bytes) -> requests.Response:
    return stack.http.post(
        f"{stack.url}/alerts/{source}",
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        timeout=30,
    )


def _assert_answered(resp: requests.Response) -> None:
    assert resp.status_code < 500, resp.text[:500]
    if resp.status_code >= 400:
        assert resp.json()["error"], resp.text[:500]


GEN = b'{"service":"checkout",'
HUGE = int("9" * 400)
_LEAF = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "9999-12-31T23:59:59-01:00", "NaN", ""]),
    st.sampled_from([HUGE, -HUGE, 2**63, 10**19, 1e308, -0.0, True, None]),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)
_TREE = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = ["labels", "annotations", "startsAt", "endsAt", "status", "fingerprint", "value"]


def _mutated(base: dict[str, Any], where: list[tuple[str, Any]]) -> dict[str, Any]:
    body = json.loads(json.dumps(base))
    alert = body["alerts"][0]
    for key, value in where:
        if key in ("alertname", "service", "severity") and isinstance(alert["labels"], dict):
            alert["labels"][key] = value
        elif key in ("alertname", "service", "severity"):
            alert["labels"] = {key: value}
        else:
            alert[key] = value
    return body


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    source=st.sampled_from(["alertmanager", "grafana", "generic"]),
    changes=st.lists(
        st.tuples(st.sampled_from([*_FIELDS, "alertname", "service", "severity"]), _TREE),
        max_size=4,
    ),
    whole=st.none() | _TREE,
)
def test_fuzzed_alert_payloads_get_no_5xx(
    fuzzed: LoopbackStack,
    source: str,
    changes: list[tuple[str, Any]],
    whole: Any,
) -> None:
    if whole is not None:
        body: Any = whole
    elif source == "generic":
        body = {"service": "checkout", "name": "HighErrorRate", "severity": "warning"}
        body.update(dict(changes))
    else:
        body = _mutated(alertmanager_payload(), changes)
    _assert_answered(_post(fuzzed, source, json.dumps(body).encode()))


@pytest.mark.parametrize(
    ("what", "body"),
    [
        ("lone surrogate", GEN + b'"name":"X\\ud800"}'),
        ("lone surrogate in a key", GEN + b'"name":"X","labels":{"\\udfff":"a"}}'),
        ("400-digit label", GEN + b'"name":"X","labels":{"a":' + b"9" * 400 + b"}}"),
        ("400-digit value", b'{"service":"checkout","name":"X","value":' + b"9" * 400 + b"}"),
        ("5000-digit value", b'{"service":"checkout","name":"X","value":' + b"9" * 5000 + b"}"),
        ("far future", b'{"service":"checkout","name":"X","startsAt":"9999-12-31T23:59:59-01:00"}'),
        ("NaN", b'{"service":"checkout","name":"X","value":NaN}'),
        ("50,000 deep", b"[" * 50_000 + b"]" * 50_000),
        ("50,000 deep object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        ("not UTF-8", b'{"service":"checkout","name":"\xff"}'),
        ("100 KB reason", GEN + b'"name":"X","startsAt":"' + b"x" * 100_000 + b'"}'),
    ],
)
def test_each_known_shape_is_a_4xx_with_a_reason(
    fuzzed: LoopbackStack, what: str, body: bytes
) -> None:
    resp = _post(fuzzed, "generic", body)
    assert 400 <= resp.status_code < 500, (what, resp.status_code, resp.text[:300])
    assert resp.json()["error"] and len(resp.json()["error"]) <= 1000


def test_a_nul_in_an_alert_is_dropped_not_refused(fuzzed: LoopbackStack) -> None:
    body = {"service": "checkout", "name": "Nul\x00Alert", "annotations": {"summary": "a\x00b"}}
    resp = _post(fuzzed, "generic", json.dumps(body).encode())
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("stamp", ["abc", "1e9", "", "-1", "0x10", "12.5", "9" * 40])
def test_a_signed_slack_request_with_a_broken_timestamp_is_refused(
    fuzzed: LoopbackStack, stamp: str
) -> None:
    body = b"command=%2Frollback&text=help&user_id=U0ALICE&channel_id=C0ALERTS"
    sig = "v0=" + "0" * 64
    if stamp.isascii() and stamp.lstrip("-").isdigit():
        sig = signature(SIGNING_SECRET, body, int(stamp))
    resp = fuzzed.driver.raw(
        body,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sig,
        },
    )
    assert 400 <= resp.status_code < 500, (stamp, resp.status_code, resp.text[:200])
