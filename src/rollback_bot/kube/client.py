"""One way in to the Kubernetes API for every executor.

Executors never load a global configuration: they are handed a ``KubeApis``
bundle built from one ``ApiClient``. Changes made for a person go through
``KubeApis.for_actor``, which adds impersonation headers so the cluster's RBAC
(not the bot's own service account) decides what that person may do, while
the connection pool stays shared. ``explain`` turns API failures into the
sentences people read in the incident thread.

Executors work on plain JSON (``read_json``) rather than the generated models:
a pod template copied from a ReplicaSet must reach the Deployment byte for byte,
including fields a model version might not know.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from rollback_bot.kube.model import Actor, ExecutionError

__all__ = ["ApiException", "KubeApis", "api_client_from_env", "explain", "read_json"]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


def api_client_from_env(kubeconfig: str | None = None) -> k8s.ApiClient:
    """An ``ApiClient``: ``kubeconfig``, else in-cluster, else the default kubeconfig."""
    # The client's config loaders carry no annotations; what they return is an ApiClient.
    if kubeconfig:
        made = k8s_config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        return cast(k8s.ApiClient, made)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = k8s.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return k8s.ApiClient(configuration)
    default = os.environ.get("KUBECONFIG") or None
    made = k8s_config.new_client_from_config(config_file=default)  # type: ignore[no-untyped-call]
    return cast(k8s.ApiClient, made)


@dataclass(frozen=True)
class KubeApis:
    """The typed API groups executors use, all over the same ``ApiClient``.

    Each group is built on first use: the generated ``AppsV1Api`` and
    ``CoreV1Api`` modules import every model their methods name (about 300
    modules, some 25 MB), which a bot that has not yet touched a workload
    (idle, or relaying alerts) need not carry.
    """

    api_client: k8s.ApiClient

    @cached_property
    def apps(self) -> k8s.AppsV1Api:
        return k8s.AppsV1Api(self.api_client)

    @cached_property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api_client)

    @cached_property
    def networking(self) -> k8s.NetworkingV1Api:
        return k8s.NetworkingV1Api(self.api_client)

    def get_raw(
        self,
        path: str,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> Any:
        """GET ``path`` (``{name}`` placeholders filled from ``path_params``), unparsed.

        What a generated method returns with ``_preload_content=False`` (the
        urllib3 response; ``read_json`` parses it), through the same
        ``ApiClient`` (auth, TLS, impersonation headers, connection pool), but
        without importing the generated API module and the models it names.
        Raises ``ApiException`` on a non-2xx answer, as the generated methods do.
        """
        return self.call_raw("GET", path, path_params, query)

    def call_raw(
        self,
        method: str,
        path: str,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        *,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """``method`` on ``path`` with a JSON ``body``, unparsed, as ``get_raw`` reads.

        The writes a rollback makes on its fast path (the Deployment PATCH, its
        Events) go through here, so the first rollback after start-up does not
        first import the generated models (about a second of CPU).
        """
        client = self.api_client
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        request = client.param_serialize(
            method=method,
            resource_path=path,
            path_params=dict(path_params or {}),
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = client.call_api(*request)
        if not 200 <= response.status <= 299:
            response.read()  # type: ignore[no-untyped-call]
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response

    def for_actor(self, actor: Actor) -> KubeApis:
        """The same APIs acting as ``actor.kube_user`` (unchanged when it is unset).

        A second ``ApiClient`` carries the impersonation headers as defaults
        and borrows this one's connection pool, so no reconnect is paid.
        """
        if not actor.kube_user:
            return self
        impersonating = k8s.ApiClient(self.api_client.configuration)
        impersonating.rest_client = self.api_client.rest_client
        impersonating.default_headers.update(self.api_client.default_headers)
        impersonating.default_headers.update(impersonation_headers(actor))
        return KubeApis(impersonating)


def impersonation_headers(actor: Actor) -> dict[str, str]:
    """Headers for a request made as ``actor``; empty when no Kubernetes user is set.

    Only the first group can be sent: the generated client keeps headers in a
    plain mapping, and the API server reads each ``Impersonate-Group`` header
    as exactly one group, so joining several in one value would name a group
    that does not exist.
    """
    if not actor.kube_user:
        return {}
    headers = {"Impersonate-User": actor.kube_user}
    if actor.kube_groups:
        headers["Impersonate-Group"] = actor.kube_groups[0]
    return headers


def read_json(response: Any) -> dict[str, Any]:
    """Body of a call made with ``_preload_content=False``, as a dict."""
    data: Any = response.data
    parsed: dict[str, Any] = json.loads(data)
    return parsed


def _status_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        return str(exc.reason or "").strip()
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(exc.reason or "").strip()


# The apiserver's RBAC refusal: 'deployments.apps "web" is forbidden: User "alice" cannot
# patch resource "deployments" in API group "apps" in the namespace "shop"'.
_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]+)"| at the cluster scope)?'
)


status_message = _status_message  # for the other kube modules


def refusal(detail: str, what: str) -> str:
    """Who may not do what, in the words people use to fix an RBAC rule."""
    found = _FORBIDDEN.search(detail)
    if found is None:
        return (
            f"Kubernetes refused {what}: {detail or 'forbidden'}; "
            "check the RBAC rules for the user the bot acts as"
        )
    group = found["group"]
    resource = f"{found['resource']}.{group}" if group else found["resource"]
    where = f"in namespace {found['namespace']}" if found["namespace"] else "cluster-wide"
    verb, user = found["verb"], found["user"]
    return (
        f'Kubernetes refused {what}: user "{user}" may not {verb} {resource} {where}; '
        f"an RBAC Role bound to {user} must allow verb {verb!r} on {resource!r}"
    )


def explain(exc: ApiException, what: str) -> ExecutionError:
    """An ``ExecutionError`` people can act on; ``what`` names the object (``deployment a/b``)."""
    status = int(exc.status or 0)
    detail = _status_message(exc)
    if status == 404:
        return ExecutionError(f"{what} not found")
    if status == 409:
        return ExecutionError(
            f"{what} was changed by someone else at the same time ({detail})", retryable=True
        )
    if status == 403:
        return ExecutionError(refusal(detail, what))
    if status == 401:
        return ExecutionError(
            f"Kubernetes did not accept the bot's credentials for {what}: "
            f"{detail or 'unauthorized'}"
        )
    if status == 422 or status == 400:
        return ExecutionError(f"the API server rejected the change to {what}: {detail}")
    if status >= 500 or status == 429 or status == 0:
        return ExecutionError(
            f"the API server failed while handling {what} (HTTP {status or 'no answer'}): "
            f"{detail or 'no detail'}",
            retryable=True,
        )
    return ExecutionError(f"unexpected answer for {what} (HTTP {status}): {detail}")


def is_retryable_status(exc: ApiException) -> bool:
    """Server-side trouble worth a second try (not conflicts: those need a re-decision)."""
    status = int(exc.status or 0)
    return status >= 500 or status == 429
