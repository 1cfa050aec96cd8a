"""Helm release targets without a cluster: Helm's storage encoding, the plan's diff, the
helm command line and its failures, check-config's rules, the target choice."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollback_bot.catalog import CatalogError, parse_catalog
from rollback_bot.executors.helm import strategy_refusal, values_diff
from rollback_bot.executors.helm_cli import HelmCli
from rollback_bot.kube.helm_releases import (
    as_revision,
    decode_release,
    encode_release,
    revisions_from_secrets,
    to_helm_revision,
)
from rollback_bot.kube.model import Actor, ExecutionError
from rollback_bot.rollbacks.targets import choose

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def release(
    version: int,
    *,
    status: str = "superseded",
    chart_version: str = "0.1.0",
    values: dict[str, Any] | None = None,
    at: datetime = T0,
) -> dict[str, Any]:
    return {
        "name": "checkout",
        "namespace": "shop",
        "version": version,
        "info": {
            "status": status,
            "description": "Install complete" if version == 1 else "Upgrade complete",
            "first_deployed": T0.strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
            "last_deployed": at.strftime("%Y-%m-%dT%H:%M:%S.987654321Z"),
        },
        "chart": {
            "metadata": {"name": "checkout", "version": chart_version, "appVersion": "1"},
            "templates": [{"name": "templates/d.yaml", "data": "YQ=="}],
            "values": {"image": "shop/checkout:1.0", "config": {"mode": "safe"}},
        },
        "config": values or {},
        "manifest": "---\n",
    }


def secret(rel: dict[str, Any]) -> dict[str, Any]:
    name = f"sh.helm.release.v1.checkout.v{rel['version']}"
    return {"metadata": {"name": name}, "data": {"release": encode_release(rel)}}


def test_a_release_decodes_as_helm_stores_it_gzip_or_not() -> None:
    rel = release(1)
    assert decode_release(encode_release(rel)) == rel
    plain = base64.b64encode(base64.b64encode(json.dumps(rel).encode())).decode()
    assert decode_release(plain) == rel
    gz = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(rel).encode())))
    assert decode_release(gz) == rel
    with pytest.raises(ValueError, match="not a JSON release"):
        decode_release(base64.b64encode(base64.b64encode(b"\x00garbage")).decode())


def test_history_reads_revision_chart_app_version_status_description_and_times() -> None:
    revs = revisions_from_secrets([secret(release(2, status="deployed")), secret(release(1))])
    assert [(r.number, r.status, r.chart_ref, r.app_version, r.description) for r in revs] == [
        (1, "superseded", "checkout-0.1.0", "1", "Install complete"),
        (2, "deployed", "checkout-0.1.0", "1", "Upgrade complete"),
    ]
    assert revs[0].first_deployed == T0.replace(microsecond=123456)
    assert revs[0].last_deployed == T0.replace(microsecond=987654)
    # Same content, same identity: verdicts on revision 1 apply to its re-deploy.
    assert revs[0].digest == revs[1].digest
    bad = {"metadata": {"name": "sh.helm.release.v1.checkout.v3"}, "data": {"release": "!!"}}
    with pytest.raises(ExecutionError, match=r"sh\.helm\.release\.v1\.checkout\.v3"):
        revisions_from_secrets([bad])


def test_last_stable_follows_the_evidence_a_failed_revision_never_ran_alert_free() -> None:
    later = T0 + timedelta(hours=1)
    history = [
        to_helm_revision(release(1), "s1"),
        to_helm_revision(release(2, chart_version="0.2.0", status="superseded", at=later), "s2"),
        to_helm_revision(
            release(3, chart_version="0.3.0", status="failed", at=later + timedelta(hours=1)),
            "s3",
        ),
    ]
    revisions = [as_revision(r) for r in history]
    now = later + timedelta(hours=5)
    choice = choose("checkout", revisions, [], alert_times=[], window_seconds=900, now=now)
    assert choice.current is not None and choice.current.number == 3
    assert choice.target is not None and choice.target.number == 2
    assert choice.target.image == "checkout-0.2.0"
    # An alert right after revision 2 went live: revision 1 is the last stable one.
    alerts = [later + timedelta(minutes=5)]
    choice = choose("checkout", revisions, [], alert_times=alerts, window_seconds=900, now=now)
    assert choice.target is not None and choice.target.number == 1


def test_values_diff_hides_secret_names_and_secret_looking_values() -> None:
    now = to_helm_revision(
        release(
            2,
            values={
                "image": "shop/checkout:2.0",
                "apiToken": "abc",
                "note": "xoxb-123-456-abcdef",
                "config": {"mode": "fast"},
            },
        ),
        "s2",
    )
    then = to_helm_revision(release(1, values={"apiToken": "def"}), "s1")
    lines = values_diff(now, then)
    assert lines == [
        "values.apiToken: changed ([redacted])",
        "values.config.mode: fast -> safe",
        "values.image: shop/checkout:2.0 -> shop/checkout:1.0",
        "values.note: [redacted] -> (unset)",
    ]
    assert "abc" not in " ".join(lines) and "xoxb" not in " ".join(lines)


class FakeRun:
    def __init__(self, returncode: int = 0, stdout: str = "", stderr: str = "") -> None:
        self.argv: list[str] = []
        self.kwargs: dict[str, Any] = {}
        self.result = (returncode, stdout, stderr)

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.argv, self.kwargs = argv, kwargs
        code, out, err = self.result
        return subprocess.CompletedProcess(argv, code, out, err)


def test_helm_rollback_command_line() -> None:
    run = FakeRun(stdout="Rollback was a success! Happy Helming!\n")
    cli = HelmCli(binary="/opt/helm", kubeconfig="/etc/kube/config", context="prod", run=run)
    cli.rollback(
        "checkout",
        1,
        namespace="shop",
        timeout_seconds=90,
        wait=True,
        dry_run=False,
        actor=Actor("U0BOB", "bob@example.com", ("sre",)),
    )
    assert run.argv == [
        "/opt/helm",
        "rollback",
        "checkout",
        "1",
        "--namespace=shop",
        "--timeout=90s",
        "--wait",
        "--kubeconfig=/etc/kube/config",
        "--kube-context=prod",
        "--kube-as-user=bob@example.com",
        "--kube-as-group=sre",
    ]
    assert run.kwargs["capture_output"] is True and run.kwargs["timeout"] == 150
    assert run.kwargs["env"]["HELM_CACHE_HOME"]
    cli.rollback("checkout", 1, namespace="shop", timeout_seconds=5, wait=False, dry_run=True)
    assert "--dry-run" in run.argv and "--wait" not in run.argv
    assert not any(a.startswith("--kube-as") for a in run.argv)


def test_helm_failures_are_sentences_with_secrets_redacted() -> None:
    run = FakeRun(
        1,
        stderr="W1201 warning noise\nError: release checkout failed: token xoxb-1-2-secret "
        "rejected: context deadline exceeded\n",
    )
    with pytest.raises(ExecutionError) as failed:
        HelmCli(binary="helm", run=run).rollback(
            "checkout", 1, namespace="shop", timeout_seconds=5, wait=True, dry_run=False
        )
    message = str(failed.value)
    assert message.startswith("helm rollback checkout 1 -n shop failed (exit 1): release")
    assert "xoxb" not in message and "[redacted]" in message and "W1201" not in message

    def missing(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError(argv[0])

    with pytest.raises(ExecutionError, match="set HELM_BIN"):
        HelmCli(binary="/nope/helm", run=missing).version()

    def slow(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

    with pytest.raises(ExecutionError, match="did not finish within 65 s"):
        HelmCli(run=slow).rollback(
            "checkout", 1, namespace="shop", timeout_seconds=5, wait=True, dry_run=False
        )


BASE = {"name": "c", "channel": "C0ABC", "match": {"service": "c"}, "environment": "staging"}


def problems(service: dict[str, Any]) -> list[str]:
    with pytest.raises(CatalogError) as err:
        parse_catalog({"services": [service]})
    return err.value.problems


def test_check_config_on_helm_services() -> None:
    ok = parse_catalog(
        {"services": [{**BASE, "helm": {"release": "checkout", "namespace": "shop"}}]}
    )
    service = ok.services[0]
    assert (service.strategy, service.namespace, service.deployment) == ("helm", "shop", "")
    assert service.helm is not None and service.helm.timeout_seconds == 300 and service.helm.wait
    assert problems(dict(BASE)) == [
        "services[0]: needs exactly one of deployment / statefulset / daemonset / rollout / helm"
    ]
    assert problems({**BASE, "deployment": "x", "helm": {"release": "r"}}) == [
        "services[0]: needs exactly one of deployment / statefulset / daemonset / rollout / helm "
        "(has deployment and helm)"
    ]
    found = problems({**BASE, "strategy": "gradual", "helm": {"release": "r", "timeout": "5 min"}})
    assert any("helm.timeout: '5 min' is not a timeout" in p for p in found)
    assert any("strategy: 'gradual' cannot roll back a Helm release" in p for p in found)
    assert problems({**BASE, "namespace": "a", "helm": {"release": "r", "namespace": "b"}}) == [
        "services[0].helm.namespace: 'b' differs from the service's namespace 'a': give one of "
        "them, or the same value"
    ]
    assert problems({**BASE, "deployment": "x", "strategy": "helm"}) == [
        "services[0].helm: required when strategy is helm"
    ]
    assert problems({**BASE, "helm": {"release": "r", "colour": "x"}}) == [
        "services[0].helm: unknown key 'colour'"
    ]
    timed = parse_catalog({"services": [{**BASE, "helm": {"release": "r", "timeout": "1h30m"}}]})
    assert timed.services[0].helm is not None and timed.services[0].helm.timeout_seconds == 5400


def test_a_helm_release_is_rolled_back_by_helm_only() -> None:
    catalog = parse_catalog(
        {
            "services": [
                {**BASE, "helm": {"release": "checkout", "namespace": "shop"}},
                {**BASE, "name": "d", "deployment": "d", "match": {"service": "d"}},
            ]
        }
    )
    helm, deployment = catalog.services
    assert strategy_refusal(helm, "helm") is None
    assert strategy_refusal(deployment, "instant") is None
    refused = strategy_refusal(helm, "instant")
    assert refused is not None and "rolled back with helm rollback" in str(refused)
    refused = strategy_refusal(deployment, "helm")
    assert refused is not None and "not a Helm release" in str(refused)
