"""Parsing Alertmanager, Grafana and generic alert payloads into one model."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollback_bot.alerts.model import Alert, AlertPayloadError, label_fingerprint
from rollback_bot.alerts.payloads import parse_alertmanager, parse_generic, parse_grafana

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def alertmanager_body() -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "rollback_bot",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "service": "checkout"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "HighErrorRate",
                    "service": "checkout",
                    "severity": "Critical",
                },
                "annotations": {"runbook_url": "https://rb.example/checkout", "value": "0.25"},
                "startsAt": "2026-03-01T11:58:02.123456789Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": "c0ffee0123456789",
            },
            {
                "status": "resolved",
                "labels": {"alertname": "HighErrorRate", "service": "cart"},
                "annotations": {},
                "startsAt": "2026-03-01T13:00:00+02:00",
                "endsAt": "2026-03-01T11:59:00.5Z",
                "generatorURL": "",
                "fingerprint": "",
            },
        ],
    }


def grafana_body() -> dict[str, Any]:
    return {
        "receiver": "rollback-bot",
        "status": "firing",
        "orgId": 1,
        "groupKey": "{}/{}:{}",
        "title": "[FIRING:1] LatencyHigh",
        "state": "alerting",
        "message": "latency is high",
        "version": "1",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "LatencyHigh", "service": "search", "team": "core"},
                "annotations": {"runbook": "https://rb.example/search", "summary": "slow"},
                "startsAt": "2026-03-01T11:50:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "values": {"B": 0.93, "C": 1, "D": None},
                "generatorURL": "https://grafana.example/alerting/grafana/abc/view",
                "fingerprint": "57c6d9296de2ad39",
                "silenceURL": "https://grafana.example/alerting/silence/new",
                "dashboardURL": "https://grafana.example/d/xyz",
                "panelURL": "https://grafana.example/d/xyz?viewPanel=2",
            }
        ],
    }


# --- Alertmanager ----------------------------------------------------------------


def test_alertmanager_firing_alert_is_normalized() -> None:
    first, _ = parse_alertmanager(alertmanager_body(), received_at=RECEIVED)

    assert first.source == "alertmanager"
    assert first.fingerprint == "c0ffee0123456789"
    assert first.name == "HighErrorRate"
    assert first.status == "firing" and first.firing
    assert first.severity == "critical"
    assert first.starts_at == datetime(2026, 3, 1, 11, 58, 2, 123456, tzinfo=UTC)
    assert first.ends_at is None
    assert first.value == 0.25
    assert first.links == {
        "runbook": "https://rb.example/checkout",
        "generator": "http://prometheus.example/graph",
        "alertmanager": "http://alertmanager.example:9093",
    }
    assert first.service_hint == "checkout"


def test_alertmanager_resolved_alert_with_offset_and_no_fingerprint() -> None:
    _, second = parse_alertmanager(alertmanager_body(), received_at=RECEIVED)

    assert second.status == "resolved" and not second.firing
    assert second.starts_at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert second.starts_at.utcoffset() == timedelta(0)
    assert second.ends_at == datetime(2026, 3, 1, 11, 59, 0, 500000, tzinfo=UTC)
    assert second.fingerprint == label_fingerprint(second.labels)
    assert second.severity == "warning"
    assert second.value is None
    assert "generator" not in second.links  # empty URL is no link


def test_alertmanager_missing_ends_at_and_starts_at_are_tolerated() -> None:
    body = alertmanager_body()
    del body["alerts"][0]["endsAt"]
    del body["alerts"][0]["startsAt"]

    first = parse_alertmanager(body, received_at=RECEIVED)[0]

    assert first.ends_at is None
    assert first.starts_at == RECEIVED


def test_alertmanager_unparseable_value_annotation_is_ignored() -> None:
    body = alertmanager_body()
    body["alerts"][0]["annotations"]["value"] = "25%"

    assert parse_alertmanager(body, received_at=RECEIVED)[0].value is None


def test_alertmanager_empty_group_is_no_alerts() -> None:
    body = alertmanager_body()
    body["alerts"] = []

    assert parse_alertmanager(body) == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.update(alerts={}), "alerts: expected a list, got an object"),
        (lambda b: b.pop("alerts"), "alerts: required"),
        (lambda b: b.update(version="3"), "version: unsupported webhook version '3'"),
        (lambda b: b["alerts"].append("x"), "alerts[2]: expected an object, got a string"),
        (
            lambda b: b["alerts"][1].update(labels=[]),
            "alerts[1].labels: expected an object, got a list",
        ),
        (lambda b: b["alerts"][1].pop("labels"), "alerts[1].labels: required"),
        (
            lambda b: b["alerts"][0]["labels"].pop("alertname"),
            "alerts[0].labels.alertname: required",
        ),
        (
            lambda b: b["alerts"][0]["labels"].update(team={"a": 1}),
            "alerts[0].labels.team: expected a string, got an object",
        ),
        (
            lambda b: b["alerts"][0].update(status="pending"),
            "alerts[0].status: expected 'firing' or 'resolved', got 'pending'",
        ),
        (
            lambda b: b["alerts"][0].update(startsAt="2026-03-01T11:58:02"),
            "alerts[0].startsAt: timestamp has no timezone",
        ),
        (
            lambda b: b["alerts"][0].update(startsAt="yesterday"),
            "alerts[0].startsAt: expected an RFC 3339 timestamp",
        ),
        (
            lambda b: b["alerts"][0].update(endsAt="2026-02-30T00:00:00Z"),
            "alerts[0].endsAt: invalid timestamp",
        ),
        (
            lambda b: b["alerts"][0].update(fingerprint=7),
            "alerts[0].fingerprint: expected a string, got a number",
        ),
    ],
)
def test_alertmanager_errors_name_the_field(mutate: Any, message: str) -> None:
    body = alertmanager_body()
    mutate(body)

    with pytest.raises(AlertPayloadError) as caught:
        parse_alertmanager(body, received_at=RECEIVED)

    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("body", [None, [], "text", 3])
def test_non_object_body_is_a_payload_error(body: object) -> None:
    for parse in (parse_alertmanager, parse_grafana, parse_generic):
        with pytest.raises(AlertPayloadError, match=r"^\(body\): expected an object"):
            parse(body)


# --- Grafana -----------------------------------------------------------------------


def test_grafana_alert_keeps_values_and_links() -> None:
    [alert] = parse_grafana(grafana_body(), received_at=RECEIVED)

    assert alert.source == "grafana"
    assert alert.name == "LatencyHigh"
    assert alert.fingerprint == "57c6d9296de2ad39"
    assert alert.values == {"B": 0.93, "C": 1.0}  # D had no data
    assert alert.value is None
    assert alert.ends_at is None
    assert alert.links == {
        "runbook": "https://rb.example/search",
        "dashboard": "https://grafana.example/d/xyz",
        "panel": "https://grafana.example/d/xyz?viewPanel=2",
        "silence": "https://grafana.example/alerting/silence/new",
        "generator": "https://grafana.example/alerting/grafana/abc/view",
    }
    assert alert.annotations["summary"] == "slow"


def test_grafana_values_must_be_numbers() -> None:
    body = grafana_body()
    body["alerts"][0]["values"]["B"] = "high"

    with pytest.raises(AlertPayloadError, match=r"^alerts\[0\]\.values\.B: expected a number"):
        parse_grafana(body)


def test_grafana_alert_status_falls_back_to_group_status() -> None:
    body = grafana_body()
    del body["alerts"][0]["status"]
    body["status"] = "resolved"

    assert parse_grafana(body)[0].status == "resolved"


# --- generic -----------------------------------------------------------------------


def test_generic_defaults_and_labels() -> None:
    [alert] = parse_generic(
        {"service": "checkout", "name": "ErrorSpike", "labels": {"region": "eu", "shard": 3}},
        received_at=RECEIVED,
    )

    assert alert.source == "generic"
    assert alert.status == "firing"
    assert alert.severity == "warning"
    assert alert.labels == {
        "region": "eu",
        "shard": "3",
        "service": "checkout",
        "alertname": "ErrorSpike",
        "severity": "warning",
    }
    assert alert.starts_at == RECEIVED
    assert alert.value is None and alert.values == {}
    assert alert.service_hint == "checkout"


def test_generic_value_status_and_runbook() -> None:
    [alert] = parse_generic(
        {
            "service": "checkout",
            "name": "ErrorSpike",
            "severity": "CRITICAL",
            "status": "resolved",
            "value": "0.07",
            "annotations": {"runbook_url": "https://rb.example/x"},
        },
        received_at=RECEIVED,
    )

    assert alert.severity == "critical"
    assert alert.status == "resolved"
    assert alert.value == 0.07
    assert alert.values == {"value": 0.07}
    assert alert.links == {"runbook": "https://rb.example/x"}


def test_generic_fingerprint_is_deterministic_and_label_sensitive() -> None:
    body = {"service": "checkout", "name": "ErrorSpike", "labels": {"a": "1", "b": "2"}}
    reordered = {"labels": {"b": "2", "a": "1"}, "name": "ErrorSpike", "service": "checkout"}
    other = {"service": "cart", "name": "ErrorSpike", "labels": {"a": "1", "b": "2"}}

    one = parse_generic(body, received_at=RECEIVED)[0].fingerprint
    two = parse_generic(reordered, received_at=RECEIVED + timedelta(hours=1))[0].fingerprint
    three = parse_generic(other, received_at=RECEIVED)[0].fingerprint

    assert one == two
    assert one != three


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "X"}, "service: required"),
        ({"service": "", "name": "X"}, "service: required"),
        ({"service": "s"}, "name: required"),
        ({"service": 5, "name": "X"}, "service: expected a string, got a number"),
        ({"service": "s", "name": "X", "value": True}, "value: expected a number, got a boolean"),
        ({"service": "s", "name": "X", "value": "lots"}, "value: expected a number, got 'lots'"),
        ({"service": "s", "name": "X", "value": [1]}, "value: expected a number, got a list"),
        ({"service": "s", "name": "X", "status": "ok"}, "status: expected 'firing' or 'resolved'"),
        ({"service": "s", "name": "X", "labels": "a=b"}, "labels: expected an object"),
        (
            {"service": "s", "name": "X", "labels": {"service": "t"}},
            "labels.service: 't' contradicts 's'",
        ),
        ({"service": "s", "name": "X", "annotations": {"n": None}}, "annotations.n: expected"),
    ],
)
def test_generic_errors_name_the_field(body: dict[str, Any], message: str) -> None:
    with pytest.raises(AlertPayloadError) as caught:
        parse_generic(body, received_at=RECEIVED)

    assert str(caught.value).startswith(message)
    assert caught.value.path == message.split(":")[0]


# --- timestamps --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01t12:00:00z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01T12:00:00.1Z", datetime(2026, 3, 1, 12, 0, 0, 100000, tzinfo=UTC)),
        ("2026-03-01T12:00:00.999999999Z", datetime(2026, 3, 1, 12, 0, 0, 999999, tzinfo=UTC)),
        ("2026-03-01T14:00:00+02:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01T07:30:00-0430", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01 12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        (1772366400, datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("0001-01-01T00:00:00+01:00", None),
        ("", None),
        (None, None),
    ],
)
def test_ends_at_formats(text: object, expected: datetime | None) -> None:
    body = {"service": "s", "name": "X", "endsAt": text}

    assert parse_generic(body, received_at=RECEIVED)[0].ends_at == expected


def test_received_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_generic({"service": "s", "name": "X"}, received_at=datetime(2026, 1, 1))


def test_received_at_default_is_now() -> None:
    before = datetime.now(UTC)
    [alert] = parse_generic({"service": "s", "name": "X"})
    assert before <= alert.starts_at <= datetime.now(UTC)


# --- identity ------------------------------------------------------------------------


def test_payload_hash_is_stable_across_redelivery_and_changes_with_content() -> None:
    first = parse_alertmanager(alertmanager_body(), received_at=RECEIVED)
    again = parse_alertmanager(copy.deepcopy(alertmanager_body()), received_at=RECEIVED)
    changed_body = alertmanager_body()
    changed_body["alerts"][0]["annotations"]["value"] = "0.3"
    changed = parse_alertmanager(changed_body, received_at=RECEIVED)

    assert [a.payload_hash() for a in first] == [a.payload_hash() for a in again]
    assert first[0].payload_hash() != first[1].payload_hash()
    assert first[0].payload_hash() != changed[0].payload_hash()


def test_payload_hash_ignores_receipt_time_only_when_the_sender_gave_no_start() -> None:
    body = {"service": "s", "name": "X", "value": 1}
    later = RECEIVED + timedelta(minutes=5)
    first = parse_generic(body, received_at=RECEIVED)[0]
    retried = parse_generic(body, received_at=later)[0]
    dated = {**body, "startsAt": "2026-03-01T11:00:00Z"}
    moved = {**body, "startsAt": "2026-03-01T11:01:00Z"}

    assert first.start_inferred and first.starts_at != retried.starts_at
    assert first.payload_hash() == retried.payload_hash()
    assert not parse_generic(dated, received_at=RECEIVED)[0].start_inferred
    assert (
        parse_generic(dated, received_at=RECEIVED)[0].payload_hash()
        == parse_generic(dated, received_at=later)[0].payload_hash()
        != parse_generic(moved, received_at=RECEIVED)[0].payload_hash()
    )


def test_payload_hash_handles_non_finite_values() -> None:
    nan = parse_generic({"service": "s", "name": "X", "value": "NaN"}, received_at=RECEIVED)[0]
    inf = parse_generic({"service": "s", "name": "X", "value": "+Inf"}, received_at=RECEIVED)[0]

    assert nan.value is not None and math.isnan(nan.value)
    assert nan.as_dict()["value"] == "nan"
    assert nan.payload_hash() != inf.payload_hash()


def test_alert_is_frozen_and_hashable() -> None:
    [alert] = parse_generic({"service": "s", "name": "X"}, received_at=RECEIVED)

    with pytest.raises(AttributeError):
        alert.name = "Y"  # type: ignore[misc]
    assert {alert, alert} == {alert}
    assert isinstance(alert, Alert)


label_dicts = st.dictionaries(
    st.text(min_size=1, max_size=8), st.text(max_size=8), min_size=1, max_size=6
)


@given(label_dicts, st.randoms())
def test_label_fingerprint_ignores_order(labels: dict[str, str], rnd: Any) -> None:
    items = list(labels.items())
    rnd.shuffle(items)

    assert label_fingerprint(dict(items)) == label_fingerprint(labels)
    assert len(label_fingerprint(labels)) == 16


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
alert_keys = st.sampled_from(
    ["status", "labels", "annotations", "startsAt", "endsAt", "fingerprint", "values", "value"]
)
fuzzed_alert = st.dictionaries(alert_keys, json_values)
fuzzed_body = (
    st.fixed_dictionaries(
        {"alerts": st.lists(fuzzed_alert, max_size=3)},
        optional={
            "version": json_values,
            "status": json_values,
            "externalURL": json_values,
            "service": json_values,
            "name": json_values,
            "value": json_values,
        },
    )
    | json_values
)


@given(fuzzed_body)
def test_any_json_either_parses_or_raises_payload_error(body: object) -> None:
    for parse in (parse_alertmanager, parse_grafana, parse_generic):
        try:
            alerts = parse(body, received_at=RECEIVED)
        except AlertPayloadError as exc:
            assert exc.path and str(exc).startswith(exc.path)
        else:
            for alert in alerts:
                assert alert.starts_at.tzinfo is not None
                assert alert.status in ("firing", "resolved")
                assert all(isinstance(v, str) for v in alert.labels.values())


def test_timezone_other_than_utc_is_normalized() -> None:
    tz = timezone(timedelta(hours=5, minutes=30))
    [alert] = parse_generic(
        {"service": "s", "name": "X", "startsAt": "2026-03-01T17:30:00+05:30"},
        received_at=datetime(2026, 3, 1, 18, tzinfo=tz),
    )
    assert alert.starts_at == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert alert.starts_at.tzinfo == UTC
