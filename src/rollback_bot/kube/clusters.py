"""One Kubernetes client per cluster the catalog names.

A service's ``cluster:`` is a kubeconfig context; without it the service lives on the
default cluster (in-cluster, or the kubeconfig's current context). Every context is
loaded once at start, so a name the kubeconfig does not have stops the bot with the
name, instead of failing the first rollback mid-incident; ``probe`` asks each API
server for its version, which is what ``/readyz`` reports per cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import cast

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from rollback_bot.catalog import Service
from rollback_bot.kube.client import KubeApis
from rollback_bot.kube.model import ExecutionError

DEFAULT = "default"


class ClusterConfigError(Exception):
    """A cluster the catalog names cannot be loaded from the kubeconfig."""


def client_for_context(kubeconfig: str | None, context: str) -> k8s.ApiClient:
    try:
        made = k8s_config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, TypeError) as exc:
        raise ClusterConfigError(
            f"cluster {context!r}: no such context in the kubeconfig "
            f"({kubeconfig or 'KUBECONFIG/~/.kube/config'}): {exc}"
        ) from exc
    return cast(k8s.ApiClient, made)


class Clusters:
    """The default client and one per named cluster; ``for_service`` picks a service's."""

    def __init__(self, default: KubeApis, named: Mapping[str, KubeApis] | None = None) -> None:
        self.default = default
        self._named = dict(named or {})

    @classmethod
    def load(
        cls,
        default: KubeApis,
        names: Iterable[str],
        *,
        kubeconfig: str | None,
        connect: Callable[[str | None, str], k8s.ApiClient] = client_for_context,
    ) -> Clusters:
        """Every named context loaded now; ``ClusterConfigError`` lists those that fail."""
        named: dict[str, KubeApis] = {}
        problems = []
        for name in dict.fromkeys(names):
            try:
                named[name] = KubeApis(connect(kubeconfig, name))
            except ClusterConfigError as exc:
                problems.append(str(exc))
        if problems:
            raise ClusterConfigError("; ".join(problems))
        return cls(default, named)

    @property
    def names(self) -> list[str]:
        return [DEFAULT, *self._named]

    def get(self, cluster: str | None) -> KubeApis:
        if cluster is None or (cluster == DEFAULT and DEFAULT not in self._named):
            return self.default
        found = self._named.get(cluster)
        if found is None:
            raise ExecutionError(
                f"cluster {cluster!r} is not configured (known: {', '.join(self.names)})"
            )
        return found

    def for_service(self, service: Service) -> KubeApis:
        return self.get(service.cluster)

    def all(self) -> dict[str, KubeApis]:
        return {DEFAULT: self.default, **self._named}

    def check_at_start(self, log: Callable[[str], None], timeout: float = 3.0) -> list[str]:
        """Probe every named cluster once; log and return the ones down (start goes on:
        the services on the others keep working, and ``/readyz`` names the one down)."""
        down = []
        for name, problem in self.probe(timeout).items():
            if problem is not None and name != DEFAULT:
                log(f"cluster {name!r} is down at start: {problem}")
                down.append(name)
        return down

    def probe(self, timeout: float) -> dict[str, str | None]:
        """Cluster name -> None when its API server answers, else why not."""
        out: dict[str, str | None] = {}
        for name, apis in self.all().items():
            try:
                k8s.VersionApi(apis.api_client).get_code(_request_timeout=timeout)
                out[name] = None
            except k8s.ApiException as exc:
                out[name] = f"the API server answered HTTP {exc.status} {exc.reason}"
            except Exception as exc:  # connection refused, TLS, timeout: all "down"
                out[name] = f"the API server does not answer ({type(exc).__name__})"
        return out


def cluster_names(services: Iterable[Service]) -> list[str]:
    return list(dict.fromkeys(s.cluster for s in services if s.cluster))
