"""The chart as `helm lint` and `helm template` (the real helm) see it: what it renders, with
which values, and that its RBAC cannot drift from deploy/rbac/*.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.deploy.chart import (
    CHART,
    SECRET,
    by_kind,
    catalog,
    documents,
    grants,
    one,
    run_helm,
    shipped_rbac_grants,
    template,
    values,
    values_file,
)

# The Lease rule of the leader-election contract (docs: TEAM contract, README): used when
# deploy/rbac does not carry it yet; once it does, the chart must equal that file instead.
LEASE_CONTRACT = {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}


def render(tmp_path: Path, **overrides: Any) -> list[dict[str, Any]]:
    return documents(template(tmp_path, values(**overrides)))


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c["env"]}


def test_helm_lint_passes_strict(tmp_path: Path) -> None:
    done = run_helm("lint", "--strict", str(CHART), "-f", str(values_file(tmp_path, values())))
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


def test_without_an_existing_secret_it_refuses_to_render_and_says_why(tmp_path: Path) -> None:
    data = values()
    del data["existingSecret"]
    done = run_helm(
        "template", "rb", str(CHART), "-f", str(values_file(tmp_path, data)), check=False
    )
    assert done.returncode != 0
    assert "existingSecret: name the Secret" in done.stderr


def test_tokens_come_from_the_existing_secret_and_never_from_values(tmp_path: Path) -> None:
    docs = render(tmp_path)
    assert not by_kind(docs, "Secret"), "the chart must not create a Secret"
    env = env_of(container(one(docs, "Deployment")))
    for key in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": key}
    for key in ("SLACK_APP_TOKEN", "ALERT_WEBHOOK_TOKEN", "METRICS_TOKEN"):
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": SECRET, "key": key, "optional": True}
    # values.yaml has no place for a token at all.
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    flat = yaml.safe_dump(defaults).lower()
    assert "xoxb" not in flat and "signing_secret" not in flat


def test_deployment_two_replicas_spread_probes_leader_env_and_resources(tmp_path: Path) -> None:
    docs = render(tmp_path)
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    selector = spec["selector"]["matchLabels"]
    terms = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert terms[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    c = container(deployment)
    assert c["image"] == "localhost/rollback-bot:0.1.0"
    assert c["args"] == ["serve"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["resources"]["requests"] == {"cpu": "100m", "memory": "192Mi"}
    env = env_of(c)
    assert env["LEADER_ELECTION"]["value"] == "true"
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["LEADER_ELECTION_NAMESPACE"]["value"] == "rollback-bot"
    assert env["LEADER_ELECTION_LEASE_NAME"]["value"] == "rb-rollback-bot"
    assert env["ROLLBACK_BOT_CATALOG"]["value"] == "/etc/rollback-bot/catalog.yaml"
    # Non-root, the uid the Dockerfile creates, nothing writable but the mounted volumes.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["serviceAccountName"] == "rb-rollback-bot"
    assert one(docs, "ServiceAccount")["metadata"]["name"] == "rb-rollback-bot"

    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}
    service = one(docs, "Service")
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_hard_anti_affinity_and_a_single_replica_without_pdb(tmp_path: Path) -> None:
    docs = render(tmp_path, podAntiAffinity="hard", replicaCount=1)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    required = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required[0]["topologyKey"] == "kubernetes.io/hostname"
    assert not by_kind(docs, "PodDisruptionBudget")


def test_catalog_configmap_is_the_values_catalog_and_passes_check_config(
    tmp_path: Path,
) -> None:
    from rollback_bot.catalog import load_catalog

    docs = render(tmp_path)
    configmap = one(docs, "ConfigMap")
    text = configmap["data"]["catalog.yaml"]
    assert yaml.safe_load(text) == catalog()
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    loaded = load_catalog(path)
    assert [s.name for s in loaded.services] == ["checkout", "search"]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    mounted = {v["name"]: v for v in pod["volumes"]}["catalog"]
    assert mounted["configMap"]["name"] == configmap["metadata"]["name"]
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/catalog" in annotations


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook(tmp_path: Path) -> None:
    docs = render(tmp_path)
    job = one(docs, "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    # It needs the database only: no API token, no Slack tokens, no ServiceAccount that
    # would not exist yet on a first install (hooks run before the release's objects).
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod
    (c,) = pod["containers"]
    assert c["args"] == ["migrate"]
    assert [e["name"] for e in c["env"]] == ["DATABASE_URL"]


def test_optional_objects_render_only_when_enabled(tmp_path: Path) -> None:
    plain = render(tmp_path)
    assert not by_kind(plain, "NetworkPolicy")
    assert not by_kind(plain, "ServiceMonitor")
    docs = render(
        tmp_path,
        networkPolicy={"enabled": True, "from": [{"namespaceSelector": {}}]},
        serviceMonitor={"enabled": True, "interval": "15s", "bearerToken": True},
    )
    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [
        {"ports": [{"port": "http", "protocol": "TCP"}], "from": [{"namespaceSelector": {}}]}
    ]
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] == "http"
    assert endpoint["interval"] == "15s"
    assert endpoint["bearerTokenSecret"] == {"name": SECRET, "key": "METRICS_TOKEN"}


def test_rbac_rules_equal_deploy_rbac_so_they_cannot_drift(tmp_path: Path) -> None:
    shipped = shipped_rbac_grants()
    assert shipped["catalog"], "deploy/rbac/role.yaml has no rules?"
    docs = render(
        tmp_path,
        catalog=catalog(impersonate=True, helm=True),
        rbac={"gitopsNamespaces": ["argocd"]},
    )
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in by_kind(docs, "Role")}
    # One Role per catalog namespace with exactly deploy/rbac/role.yaml's permissions.
    for namespace in ("shop", "search", "payments"):
        assert grants(roles[(namespace, "rb-rollback-bot")]["rules"]) == shipped["catalog"]
    # The Lease rule in the release namespace, and nowhere else.
    leader = roles[("rollback-bot", "rb-rollback-bot-leader-election")]
    assert grants(leader["rules"]) == (shipped["leases"] or LEASE_CONTRACT)
    # A Helm release's rights (deploy/rbac/helm-releases.yaml) only in its namespace.
    helm = roles[("payments", "rb-rollback-bot-helm-releases")]
    assert grants(helm["rules"]) == shipped["helm"]
    # Pausing Argo CD / Flux where their objects live (deploy/rbac/gitops.yaml).
    assert grants(roles[("argocd", "rb-rollback-bot-gitops")]["rules"]) == shipped["gitops"]
    assert len(roles) == 6
    # Impersonation, cluster-wide as deploy/rbac/impersonate.yaml has it.
    (cluster_role,) = by_kind(docs, "ClusterRole")
    assert grants(cluster_role["rules"]) == shipped["impersonate"]
    # Every binding names the bot's ServiceAccount and a role the chart renders.
    names = {r["metadata"]["name"] for r in [*roles.values(), cluster_role]}
    for binding in [*by_kind(docs, "RoleBinding"), *by_kind(docs, "ClusterRoleBinding")]:
        assert binding["roleRef"]["name"] in names
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "rb-rollback-bot", "namespace": "rollback-bot"}
        ]
    assert len(by_kind(docs, "RoleBinding")) == 6


def test_impersonate_only_when_the_catalog_maps_people(tmp_path: Path) -> None:
    assert not by_kind(render(tmp_path), "ClusterRole")
    assert not by_kind(render(tmp_path), "ClusterRoleBinding")
    assert by_kind(render(tmp_path, catalog=catalog(impersonate=True)), "ClusterRole")
    forced = render(tmp_path, rbac={"impersonate": True, "extraNamespaces": ["ops"]})
    assert by_kind(forced, "ClusterRole")
    namespaces = {r["metadata"]["namespace"] for r in by_kind(forced, "Role")}
    assert namespaces == {"shop", "search", "ops", "rollback-bot"}
    off = render(tmp_path, catalog=catalog(impersonate=True), rbac={"impersonate": False})
    assert not by_kind(off, "ClusterRole")
