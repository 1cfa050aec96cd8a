"""Catalog validation: every problem found at once, each with its path."""

from __future__ import annotations

import pytest

from rollback_bot.catalog import CatalogError, load_catalog, parse_catalog


def _service(**overrides: object) -> dict:
    base = {
        "name": "checkout",
        "namespace": "shop",
        "deployment": "checkout",
        "environment": "production",
        "channel": "C0ALERTS",
        "match": {"service": "checkout"},
        "strategy": "instant",
        "policy": {"requesters": {"users": ["U0ALICE"]}, "approvers": {"usergroups": ["S0SRE"]}},
    }
    base.update(overrides)
    return base


def _problems(doc: object) -> list[str]:
    with pytest.raises(CatalogError) as err:
        parse_catalog(doc)
    return err.value.problems


def test_valid_catalog_parses_with_defaults() -> None:
    catalog = parse_catalog({"services": [_service()]})
    svc = catalog.service("checkout")
    assert svc is not None and svc.label == "checkout/production"
    assert svc.gradual is None and svc.flags == () and svc.health.timeout_seconds == 300
    assert catalog.group_by == ("service", "alertname")


def test_unknown_key_is_reported_with_its_path() -> None:
    b = _service(name="b", environment="staging", match={"service": "b"})
    doc = {"services": [_service(), {**b, "policy": {"approvers": {"user": ["x"]}}}]}
    assert _problems(doc) == ["services[1].policy.approvers: unknown key 'user'"]


def test_every_structural_problem_is_listed() -> None:
    doc = {
        "services": [
            _service(strategy="sideways"),
            {k: v for k, v in _service(name="b").items() if k != "channel"},
        ]
    }
    problems = _problems(doc)
    assert any(p.startswith("services[0].strategy:") for p in problems)
    assert "services[1]: missing key 'channel'" in problems


def test_semantic_problems_are_listed_together() -> None:
    doc = {
        "services": [
            _service(strategy="gradual", dependents=["nope"]),
            _service(match={"service": "=~("}),
        ]
    }
    problems = _problems(doc)
    assert "services[0].gradual: required when strategy is gradual" in problems
    assert "services[0].dependents: unknown service 'nope'" in problems
    assert "services[1].name: duplicate service name 'checkout'" in problems
    assert any(p.startswith("services[1].match:") for p in problems)


def test_gradual_steps_must_decrease_to_zero() -> None:
    doc = {
        "services": [
            _service(
                strategy="gradual", gradual={"stable": "a", "canary": "b", "steps": [20, 50, 0]}
            )
        ]
    }
    assert _problems(doc) == ["services[0].gradual.steps: must strictly decrease"]


def test_critical_trigger_needs_automation() -> None:
    rule = {"name": "errors", "alert": "HighErrorRate", "severity": "critical"}
    problems = _problems({"services": [_service(triggers=[rule])]})
    assert problems == [
        "services[0].triggers: critical rules ['errors'] need policy.automation: true"
    ]


def test_top_level_must_be_a_mapping(tmp_path) -> None:
    assert _problems(["not", "a", "mapping"]) == [
        "(top level): expected a mapping with a 'services' list"
    ]
    bad = tmp_path / "catalog.yaml"
    bad.write_text("services: [\n", encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(bad)
    assert "not valid YAML at line" in err.value.problems[0]
    with pytest.raises(CatalogError) as err:
        load_catalog(tmp_path / "missing.yaml")
    assert "cannot read" in err.value.problems[0]


def test_a_service_names_exactly_one_workload_and_gitops_settings_are_checked() -> None:
    rollout = _service(rollout="checkout")
    del rollout["deployment"]
    svc = parse_catalog({"services": [rollout]}).service("checkout")
    assert svc is not None and svc.rollout == "checkout" and svc.deployment == ""
    assert svc.gitops.pause == "auto" and svc.gitops.argocd_namespace == "argocd"

    neither = _service()
    del neither["deployment"]
    assert _problems({"services": [neither]}) == [
        "services[0]: needs exactly one of deployment / statefulset / daemonset / rollout / helm"
    ]
    assert _problems({"services": [_service(rollout="checkout")]}) == [
        "services[0]: needs exactly one of deployment / statefulset / daemonset / rollout / helm "
        "(has deployment and rollout)"
    ]
    problems = _problems({"services": [_service(gitops={"pause": "sometimes"})]})
    assert len(problems) == 1 and problems[0].startswith("services[0].gitops.pause:")
    declared = _service(gitops={"pause": "ask", "argocd": {"application": "shop"}})
    got = parse_catalog({"services": [declared]}).service("checkout")
    assert got is not None and got.gitops.argocd is not None
    assert (got.gitops.argocd.application, got.gitops.argocd.namespace) == ("shop", "argocd")
