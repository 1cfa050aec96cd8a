"""A Helm release's history, read from Helm's own storage, the way ``helm history`` reads it.

Helm 3 keeps each revision of a release in a Secret ``sh.helm.release.v1.<release>.v<N>``
(type ``helm.sh/release.v1``, labels ``owner=helm``, ``name``, ``version``, ``status``). Its
``release`` key holds, under the API's own base64, Helm's encoding of the release: base64
of gzip of the release as JSON (Helm gunzips only when the gzip magic is there, and so do
we). Nothing here runs helm: reading is the API's ``list secrets`` by label.

A revision becomes a ``Revision`` so the release verdicts and target choice of Deployments
apply unchanged: its identity (``pod-template-hash`` in the template's labels, which
verdicts key on) is a digest of what Helm would apply (chart name, version, app version,
templates, default values, user values), so a rollback that re-deploys revision 1 as
revision 3 is the same release for the evidence. A failed revision never counts as having
run alert-free (its start time is withheld from ``known_stable``).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from rollback_bot.catalog import Service
from rollback_bot.kube.client import KubeApis, explain, read_json
from rollback_bot.kube.model import ExecutionError
from rollback_bot.kube.revisions import HASH_LABEL, Revision, list_revisions

SECRET_PREFIX = "sh.helm.release.v1."
_GZIP_MAGIC = b"\x1f\x8b\x08"


@dataclass(frozen=True)
class HelmRevision:
    """One revision of a release, decoded."""

    release: str
    namespace: str
    number: int
    status: str  # deployed | superseded | failed | pending-install | pending-upgrade | ...
    chart: str  # name
    chart_version: str
    app_version: str
    description: str
    first_deployed: datetime | None
    last_deployed: datetime | None
    values: dict[str, Any]  # the user-supplied values (``helm get values``)
    chart_values: dict[str, Any]  # the chart's defaults
    manifest: str
    digest: str  # identity of what this revision applies
    secret: str

    @property
    def chart_ref(self) -> str:
        """``checkout-0.2.0``, as ``helm history`` prints the chart column."""
        return f"{self.chart}-{self.chart_version}"

    @property
    def effective_values(self) -> dict[str, Any]:
        """Chart defaults with the user's values over them (``helm get values --all``)."""
        return merge_values(self.chart_values, self.values)


def secret_name(release: str, number: int) -> str:
    return f"{SECRET_PREFIX}{release}.v{number}"


def decode_release(data: str | bytes) -> dict[str, Any]:
    """Helm's stored release: ``data`` is the Secret's ``release`` value as the API returns it
    (base64), inside which is Helm's base64 of (usually) gzip of JSON."""
    try:
        helm_encoded = base64.b64decode(data, validate=False)
        raw = base64.b64decode(helm_encoded, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not Helm's base64 encoding ({exc})") from exc
    if raw[:3] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"not a gzip stream ({exc})") from exc
    try:
        decoded = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not a JSON release ({exc})") from exc
    if not isinstance(decoded, dict):
        raise ValueError("not a JSON release object")
    return decoded


def encode_release(release: Mapping[str, Any]) -> str:
    """The inverse of ``decode_release`` (the Secret's ``release`` value, API base64 included)."""
    packed = gzip.compress(json.dumps(release).encode())
    return base64.b64encode(base64.b64encode(packed)).decode()


def _time(raw: object) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    text = raw.replace("Z", "+00:00")
    # Go writes nanoseconds; Python takes at most microseconds.
    head, dot, rest = text.partition(".")
    if dot:
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def release_digest(release: Mapping[str, Any]) -> str:
    chart = release.get("chart") or {}
    meta = chart.get("metadata") or {}
    content = {
        "name": meta.get("name"),
        "version": meta.get("version"),
        "appVersion": meta.get("appVersion"),
        "templates": chart.get("templates") or [],
        "values": chart.get("values") or {},
        "config": release.get("config") or {},
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def to_helm_revision(release: Mapping[str, Any], secret: str) -> HelmRevision:
    info = release.get("info") or {}
    chart = release.get("chart") or {}
    meta = chart.get("metadata") or {}
    return HelmRevision(
        release=str(release.get("name") or ""),
        namespace=str(release.get("namespace") or ""),
        number=int(release.get("version") or 0),
        status=str(info.get("status") or "unknown"),
        chart=str(meta.get("name") or "?"),
        chart_version=str(meta.get("version") or "?"),
        app_version=str(meta.get("appVersion") or ""),
        description=str(info.get("description") or ""),
        first_deployed=_time(info.get("first_deployed")),
        last_deployed=_time(info.get("last_deployed")),
        values=dict(release.get("config") or {}),
        chart_values=dict(chart.get("values") or {}),
        manifest=str(release.get("manifest") or ""),
        digest=release_digest(release),
        secret=secret,
    )


def revisions_from_secrets(secrets: Iterable[Mapping[str, Any]]) -> list[HelmRevision]:
    """Decoded revisions, oldest first; a Secret that does not decode is an error naming it."""
    found = []
    for secret in secrets:
        name = str((secret.get("metadata") or {}).get("name") or "?")
        data = (secret.get("data") or {}).get("release")
        if not data:
            continue
        try:
            found.append(to_helm_revision(decode_release(data), name))
        except ValueError as exc:
            raise ExecutionError(f"secret {name} is not a Helm release: {exc}") from exc
    return sorted(found, key=lambda r: r.number)


def read_history(apis: KubeApis, namespace: str, release: str) -> list[HelmRevision]:
    """Every stored revision of ``release`` (one LIST by Helm's labels), oldest first."""
    try:
        response = apis.core.list_namespaced_secret(
            namespace, label_selector=f"owner=helm,name={release}", _preload_content=False
        )
    except ApiException as exc:
        raise explain(exc, f"the release secrets of helm release {namespace}/{release}") from exc
    items = read_json(response).get("items") or []
    prefix = f"{SECRET_PREFIX}{release}.v"
    ours = [s for s in items if str(s["metadata"]["name"]).startswith(prefix)]
    history = revisions_from_secrets(ours)
    if not history:
        raise ExecutionError(
            f"helm release {namespace}/{release} not found: no Secret "
            f"{secret_name(release, 1)}... (is it installed, with Helm 3's default Secret storage?)"
        )
    return history


def as_revision(rev: HelmRevision) -> Revision:
    """The release revision as the target choice reads revisions."""
    return Revision(
        number=rev.number,
        replicaset=rev.secret,
        images=(rev.chart_ref,),
        created_at=None if rev.status == "failed" else rev.last_deployed,
        replicas=1,
        ready=1 if rev.status == "deployed" else 0,
        template={"metadata": {"labels": {HASH_LABEL: rev.digest}}, "release": rev.digest},
        configmaps=(),
        annotations={
            "description": rev.description,
            "status": rev.status,
            "app_version": rev.app_version,
        },
    )


def history_line(revision: Revision) -> str:
    """A release revision as ``helm history`` tells it: chart, app version, status, description."""
    notes = revision.annotations
    app = f" (app {notes['app_version']})" if notes.get("app_version") else ""
    description = f": {notes['description']}" if notes.get("description") else ""
    return f"{revision.image or '?'}{app}, {notes.get('status', '?')}{description}"


def release_revisions(apis: KubeApis, namespace: str, release: str) -> list[Revision]:
    return [as_revision(r) for r in read_history(apis, namespace, release)]


def revisions_for(apis: KubeApis, service: Service) -> list[Revision]:
    """The service's revisions, oldest first: its Helm release's, else its Deployment's."""
    if service.helm is not None:
        return release_revisions(apis, service.namespace, service.helm.release)
    return list_revisions(apis, service.namespace, service.deployment)


def merge_values(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of values: maps merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = value
    return out


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"image": {"tag": "1"}}`` -> ``{"image.tag": "1"}``; lists stay whole."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out
