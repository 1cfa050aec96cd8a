"""One Prometheus client, one Alertmanager client: what an answer means, in one place."""

from __future__ import annotations

from typing import Any

import pytest

from rollback_bot.alerts.poller import QueryError, instant_value
from rollback_bot.integrations.alertmanager import matchers
from rollback_bot.integrations.prometheus import PrometheusError, Sample, samples


def _vector(*values: str) -> dict[str, Any]:
    return {
        "resultType": "vector",
        "result": [{"metric": {"pod": f"p{i}"}, "value": [1.0, v]} for i, v in enumerate(values)],
    }


def test_a_vector_answers_every_sample_with_its_labels() -> None:
    assert samples(_vector("0.5", "2")) == [
        Sample(labels={"pod": "p0"}, value=0.5),
        Sample(labels={"pod": "p1"}, value=2.0),
    ]


def test_a_scalar_is_one_sample_without_labels() -> None:
    assert samples({"resultType": "scalar", "result": [1.0, "3"]}) == [Sample({}, 3.0)]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"resultType": "matrix", "result": []}, "query returned a matrix"),
        ({"resultType": "vector", "result": [{"value": [1.0]}]}, "not a sample"),
        ({"resultType": "vector", "result": [{"value": [1.0, "x"]}]}, "not a sample"),
        ({"resultType": "vector", "result": None}, "malformed vector result"),
        (None, "no data object"),
    ],
)
def test_unusable_answers_say_why(data: Any, why: str) -> None:
    with pytest.raises(PrometheusError, match=why):
        samples(data)


class _Answering:
    """A PrometheusClient stand-in at the seam the poller uses (its HTTP side is tested
    over a loopback server in tests/executors/test_health.py)."""

    def __init__(self, found: list[Sample]) -> None:
        self.found = found

    def instant(self, base_url: str, query: str, *, at: Any = None) -> list[Sample]:
        return self.found


def test_a_polled_rule_needs_exactly_one_number() -> None:
    one = _Answering([Sample({}, 7.0)])
    assert instant_value(one, "http://p", "q") == 7.0  # type: ignore[arg-type]
    for found in ([], [Sample({}, 1.0), Sample({}, 2.0)]):
        with pytest.raises(QueryError, match=f"expected one sample, got {len(found)}"):
            instant_value(_Answering(found), "http://p", "q")  # type: ignore[arg-type]


def test_silence_matchers_are_exact_and_in_label_order() -> None:
    assert matchers({"service": "checkout", "alertname": "HighErrorRate"}) == [
        {"name": "alertname", "value": "HighErrorRate", "isRegex": False, "isEqual": True},
        {"name": "service", "value": "checkout", "isRegex": False, "isEqual": True},
    ]
