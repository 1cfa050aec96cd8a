"""Target kinds and clusters in the catalog: exactly one workload per service, said at once."""

from __future__ import annotations

import pytest

from rollback_bot.catalog import CatalogError, parse_catalog


def _service(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "db",
        "namespace": "shop",
        "environment": "staging",
        "channel": "C0ALERTS",
        "match": {"service": "db"},
    }
    base.update(overrides)
    return base


def _problems(doc: object) -> list[str]:
    with pytest.raises(CatalogError) as err:
        parse_catalog(doc)
    return err.value.problems


@pytest.mark.parametrize("kind", ["deployment", "statefulset", "daemonset"])
def test_each_kind_names_the_target(kind: str) -> None:
    svc = parse_catalog({"services": [_service(**{kind: "db"})]}).services[0]
    assert (svc.target_kind, svc.target_name, svc.cluster) == (kind, "db", None)
    assert svc.target_ref == f"{kind} shop/db"


def test_a_cluster_is_a_kubeconfig_context_and_shows_in_the_reference() -> None:
    svc = parse_catalog({"services": [_service(statefulset="db", cluster="eu-west")]}).services[0]
    assert svc.cluster == "eu-west" and svc.target_ref == "statefulset shop/db @eu-west"


def test_no_workload_and_two_workloads_are_refused_with_every_other_problem() -> None:
    problems = _problems(
        {
            "services": [
                _service(),
                _service(name="b", match={"service": "b"}, deployment="b", daemonset="b"),
                _service(name="c", match={"service": "c"}, statefulset="c", strategy="gradual"),
                _service(name="d", match={"service": "d"}, daemonset="d", environment="prod"),
            ]
        }
    )
    assert (
        "services[0]: needs exactly one of deployment / statefulset / daemonset / rollout / helm"
        in problems
    )
    assert (
        "services[1]: needs exactly one of deployment / statefulset / daemonset / rollout / helm "
        "(has deployment and daemonset)" in problems
    )
    assert any(p.startswith("services[2].strategy: gradual needs Deployments") for p in problems)
    # A malformed field elsewhere does not hide the target problems (one run says all).
    assert any(p.startswith("services[3].environment: unknown environment") for p in problems)
    assert len([p for p in problems if p.startswith("services[0]: needs exactly one")]) == 1
