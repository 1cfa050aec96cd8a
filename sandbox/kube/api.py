"""The Kubernetes REST semantics: routing, verbs, preconditions, dry run, subresources.

Transport-free: `Api.handle` takes a parsed request and answers a JSON body or a watch
stream, so the HTTP server stays a thin shell and the rules (409 on a stale
resourceVersion, generation bumps, dry run, impersonation audit) sit in one place.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import fields as unknown_fields
from . import openapi
from . import resources as res
from .auth import Policy
from .controller import Controllers
from .defaults import apply_defaults
from .errors import (
    ApiError,
    bad_request,
    conflict,
    invalid,
    method_not_allowed,
    not_found,
    page_not_found,
)
from .faults import Audit, Faults
from .patching import apply_patch
from .resources import ResourceType
from .selectors import parse_field_selector, parse_label_selector, selector_string
from .store import Store, Watcher, WatchEvent, now_rfc3339
from .tables import PRINTERS, to_table
from .validation import validate

INITIAL_EVENTS_END = "k8s.io/initial-events-end"
FOREGROUND = "foregroundDeletion"
NAMESPACE_MISMATCH = (
    "the namespace of the provided object does not match the namespace sent on the request"
)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    groups: list[str] = field(default_factory=list)

    @property
    def accept(self) -> str:
        return self.headers.get("Accept", "") or ""

    @property
    def wants_table(self) -> bool:
        return "as=Table" in self.accept

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"


@dataclass
class Response:
    code: int
    body: Any
    # Extra response headers, e.g. ("Warning", '299 - "unknown field ..."').
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class WatchStream:
    events: Iterator[dict[str, Any]]


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


class Api:
    def __init__(
        self, store: Store, controllers: Controllers, faults: Faults, audit: Audit
    ) -> None:
        self.store = store
        self.controllers = controllers
        self.faults = faults
        self.audit = audit
        self.server_address = "127.0.0.1:0"
        self.stopping = False
        self.policy: Policy | None = None

    # -- routing ----------------------------------------------------------------------

    def handle(self, req: Request) -> Response | WatchStream:
        try:
            return self._route(req)
        except ApiError as exc:
            return Response(exc.code, exc.status())

    def _route(self, req: Request) -> Response | WatchStream:
        parts = [p for p in req.path.split("/") if p]
        if parts == ["version"]:
            return Response(200, _version())
        if parts and parts[0] in ("healthz", "livez", "readyz"):
            return Response(200, "ok")
        if parts[:2] == ["openapi", "v3"]:
            doc = openapi.lookup(parts)
            if doc is None:
                raise page_not_found()
            return Response(200, doc)
        if parts == ["api"]:
            return Response(200, res.api_versions(self.server_address))
        if parts == ["apis"]:
            return Response(200, res.api_group_list())
        if len(parts) == 2 and parts[0] == "apis":
            group = res.api_group(parts[1])
            if group is None:
                raise page_not_found()
            return Response(200, group)
        if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            listing = res.api_resource_list(group, version)
            if listing is None:
                raise page_not_found()
            return Response(200, listing)
        target = self._target(parts)
        if target is None:
            raise page_not_found()
        return self._dispatch(req, target)

    def _target(self, parts: list[str]) -> Target | None:
        if parts[:1] == ["api"] and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and res.lookup(group, version, rest[2]):
            namespace, rest = rest[1], rest[2:]
        rt = res.lookup(group, version, rest[0])
        if rt is None or len(rest) > 3:
            return None
        if namespace is not None and not rt.namespaced:
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in rt.subresources:
            return None
        return Target(rt, namespace, name, sub)

    def _verb(self, req: Request, t: Target) -> str:
        if t.name is None:
            if req.method == "GET":
                return "watch" if req.query.get("watch") in ("true", "1") else "list"
            return {"POST": "create", "DELETE": "deletecollection"}.get(req.method, "")
        return {
            "GET": "get",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }.get(req.method, "")

    def _authorize(self, req: Request, t: Target) -> None:
        if self.policy is None:
            return
        grant = self.policy.authenticate(req.headers.get("Authorization", ""))
        resource = f"{t.rt.plural}/{t.subresource}" if t.subresource else t.rt.plural
        self.policy.authorize(
            grant,
            verb=self._verb(req, t),
            resource=resource,
            group=t.rt.group,
            namespace=t.namespace,
            name=t.name,
            impersonate=req.headers.get("Impersonate-User"),
        )

    def _dispatch(self, req: Request, t: Target) -> Response | WatchStream:
        self._authorize(req, t)
        method = req.method
        if t.name is None:
            if method == "GET":
                if req.query.get("watch") in ("true", "1"):
                    return self._watch(req, t)
                return self._list(req, t)
            if method == "POST":
                return self._create(req, t)
            if method == "DELETE" and t.rt.namespaced:
                return self._delete_collection(req, t)
            raise method_not_allowed()
        if method == "GET":
            return self._get(req, t)
        if method in ("PUT", "PATCH", "DELETE"):
            failure = self.faults.take(t.rt.plural, t.namespace or "", t.name)
            if failure is not None:
                raise failure
        if method == "PUT":
            return self._update(req, t)
        if method == "PATCH":
            return self._patch(req, t)
        if method == "DELETE" and t.subresource is None:
            return self._delete(req, t)
        raise method_not_allowed()

    # -- helpers ----------------------------------------------------------------------

    def _ns(self, t: Target) -> str:
        return t.namespace or "" if t.rt.namespaced else ""

    def _user(self, req: Request) -> str:
        return req.headers.get("Impersonate-User") or "sandbox-admin"

    def _record(self, req: Request, verb: str, t: Target, name: str) -> None:
        self.audit.record(
            verb=verb,
            resource=t.rt.plural,
            subresource=t.subresource,
            namespace=t.namespace or "",
            name=name,
            user=self._user(req),
            groups=list(req.groups),
            dryRun=req.dry_run,
        )

    def _decode(self, req: Request) -> dict[str, Any]:
        try:
            text = req.body.decode("utf-8")
            ctype = req.headers.get("Content-Type", "application/json")
            body = yaml.safe_load(text) if "yaml" in ctype else json.loads(text)
        except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"error decoding request body: {exc}") from exc
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        return body

    def _check_kind(self, t: Target, body: dict[str, Any]) -> None:
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if kind not in (None, t.rt.kind) or api_version not in (None, t.rt.api_version):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({t.rt.api_version})"
                if api_version != t.rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({t.rt.kind})"
            )
        body["kind"], body["apiVersion"] = t.rt.kind, t.rt.api_version

    def _require_namespace(self, t: Target) -> None:
        if t.rt.namespaced and self.store.peek("namespaces", "", t.namespace or "") is None:
            raise not_found("namespaces", t.namespace or "")

    def _respond_object(
        self,
        req: Request,
        obj: dict[str, Any],
        code: int = 200,
        warnings: list[str] | None = None,
    ) -> Response:
        headers = [("Warning", w) for w in warnings or []]
        if req.wants_table and obj.get("kind") in PRINTERS:
            return Response(
                code,
                to_table(
                    obj["kind"],
                    [obj],
                    obj["metadata"].get("resourceVersion", ""),
                    req.query.get("includeObject", "Metadata"),
                ),
                headers,
            )
        return Response(code, obj, headers)

    # -- reads ------------------------------------------------------------------------

    def _get(self, req: Request, t: Target) -> Response:
        obj = self.store.require(t.rt.plural, self._ns(t), t.name or "")
        if t.subresource == "scale":
            return Response(200, _scale_of(obj))
        return self._respond_object(req, obj)

    def _matcher(self, req: Request) -> Any:
        labels = parse_label_selector(req.query.get("labelSelector"))
        fields = parse_field_selector(req.query.get("fieldSelector"))
        return lambda o: labels(o["metadata"].get("labels") or {}) and fields(o)

    def _list(self, req: Request, t: Target) -> Response:
        matches = self._matcher(req)
        with self.store.lock:
            items = [o for o in self.store.list(t.rt.plural, t.namespace) if matches(o)]
            rv = self.store.resource_version
        list_meta: dict[str, Any] = {"resourceVersion": rv}
        items = self._page(req, items, list_meta)
        if req.wants_table and t.rt.kind in PRINTERS:
            table = to_table(t.rt.kind, items, rv, req.query.get("includeObject", "Metadata"))
            table["metadata"].update(list_meta)
            return Response(200, table)
        return Response(
            200,
            {
                "kind": f"{t.rt.kind}List",
                "apiVersion": t.rt.api_version,
                "metadata": list_meta,
                "items": items,
            },
        )

    def _page(
        self, req: Request, items: list[dict[str, Any]], list_meta: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """limit/continue: items are in key order (namespace, name), the token names the
        last key served. Unlike etcd, later pages read the current state, not a snapshot."""
        if req.query.get("continue"):
            start = _decode_continue(req.query["continue"])
            items = [o for o in items if _key(o) > start]
        limit = int(req.query.get("limit") or 0) if req.query.get("limit", "").isdigit() else 0
        if limit <= 0 or len(items) <= limit:
            return items
        page, rest = items[:limit], items[limit:]
        list_meta["continue"] = _encode_continue(_key(page[-1]), list_meta["resourceVersion"])
        if not req.query.get("labelSelector") and not req.query.get("fieldSelector"):
            list_meta["remainingItemCount"] = len(rest)
        return page

    def _watch(self, req: Request, t: Target) -> WatchStream:
        matches = self._matcher(req)
        initial = req.query.get("sendInitialEvents") == "true"
        since = None if initial else req.query.get("resourceVersion")
        try:
            watcher, replay = self.store.watch(t.rt.plural, t.namespace, since)
        except ApiError as exc:
            # Like the watch cache: the stream opens (200), then one ERROR event with the
            # 410 Expired Status, which is what tells a client to list again.
            return WatchStream(iter([{"type": "ERROR", "object": exc.status()}]))
        timeout = float(req.query.get("timeoutSeconds") or 1800)
        table = req.wants_table and t.rt.kind in PRINTERS
        include = req.query.get("includeObject", "Metadata")
        return WatchStream(
            self._stream(t, watcher, replay, matches, timeout, initial, table, include)
        )

    def _stream(
        self,
        t: Target,
        watcher: Watcher,
        replay: list[WatchEvent],
        matches: Any,
        timeout: float,
        initial: bool,
        table: bool,
        include: str,
    ) -> Iterator[dict[str, Any]]:
        deadline = time.monotonic() + timeout

        def render(event: WatchEvent) -> dict[str, Any] | None:
            now_match = matches(event.obj)
            old_match = event.old is not None and matches(event.old)
            kind = event.type
            if kind == "MODIFIED" and now_match and not old_match:
                kind = "ADDED"
            elif kind == "MODIFIED" and old_match and not now_match:
                kind = "DELETED"
            elif not now_match and not (kind == "DELETED" and old_match):
                return None
            obj = event.obj
            if table:
                obj = to_table(t.rt.kind, [obj], obj["metadata"]["resourceVersion"], include)
            return {"type": kind, "object": obj}

        try:
            for event in replay:
                rendered = render(event)
                if rendered:
                    yield rendered
            if initial:
                yield {
                    "type": "BOOKMARK",
                    "object": {
                        "kind": t.rt.kind,
                        "apiVersion": t.rt.api_version,
                        "metadata": {
                            "resourceVersion": self.store.resource_version,
                            "annotations": {INITIAL_EVENTS_END: "true"},
                        },
                    },
                }
            while not self.stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    event = watcher.events.get(timeout=min(remaining, 0.25))
                except Exception:  # queue.Empty: poll the stop flag and deadline again
                    continue
                if event is None:
                    return
                rendered = render(event)
                if rendered:
                    yield rendered
        finally:
            self.store.unwatch(watcher)

    # -- writes -----------------------------------------------------------------------

    def _create(self, req: Request, t: Target) -> Response:
        body = self._decode(req)
        self._check_kind(t, body)
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if t.rt.namespaced:
            if meta.get("namespace") not in (None, "", t.namespace):
                raise bad_request(NAMESPACE_MISMATCH)
            meta["namespace"] = t.namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{_suffix()}"
        for key in (
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
        ):
            meta.pop(key, None)
        if t.rt.has_generation:
            meta["generation"] = 1
        warnings = unknown_fields.check_body(t.rt, body, req.query)
        apply_defaults(t.rt.kind, body)
        validate(t.rt, body)
        with self.store.lock:
            self._require_namespace(t)
            if t.rt.kind == "Deployment":
                body["status"] = {}
            created = self.store.create(t.rt.plural, body, dry_run=req.dry_run)
            self._record(req, "create", t, meta["name"])
        return self._respond_object(req, created, 201, warnings)

    def _update(self, req: Request, t: Target) -> Response:
        body = self._decode(req)
        with self.store.lock:
            current = self.store.require(t.rt.plural, self._ns(t), t.name or "")
            if t.subresource == "scale":
                result = self._write_scale(req, t, current, body)
                return Response(200, result)
            self._check_kind(t, body)
            warnings = unknown_fields.check_body(t.rt, body, req.query)
            rv = (body.get("metadata") or {}).get("resourceVersion")
            if rv and rv != current["metadata"]["resourceVersion"]:
                raise conflict(t.rt.qualified, t.name or "")
            stored = self._store_update(req, t, current, body)
            self._record(req, "update", t, t.name or "")
        return self._respond_object(req, stored, 200, warnings)

    def _patch(self, req: Request, t: Target) -> Response:
        with self.store.lock:
            current = self.store.require(t.rt.plural, self._ns(t), t.name or "")
            if t.subresource == "scale":
                patched = apply_patch(
                    req.headers.get("Content-Type", ""), _scale_of(current), req.body
                )
                return Response(200, self._write_scale(req, t, current, patched, verb="patch"))
            ctype = req.headers.get("Content-Type", "")
            patched = apply_patch(ctype, current, req.body)
            if not isinstance(patched.get("metadata"), dict):
                raise bad_request("metadata must be an object")
            warnings = unknown_fields.check_patch(
                t.rt, patched, _json_or_none(req.body), req.query, "strategic" in ctype
            )
            # The API server treats a resourceVersion inside a patch as a precondition.
            rv = patched["metadata"].get("resourceVersion")
            if rv and rv != current["metadata"]["resourceVersion"]:
                raise conflict(t.rt.qualified, t.name or "")
            stored = self._store_update(req, t, current, patched)
            self._record(req, "patch", t, t.name or "")
        return self._respond_object(req, stored, 200, warnings)

    def _store_update(
        self, req: Request, t: Target, current: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        meta = body.get("metadata")
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if meta.get("name") not in (None, t.name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name "
                f"on the URL ({t.name})"
            )
        if t.rt.namespaced and meta.get("namespace") not in (None, "", t.namespace):
            raise bad_request(NAMESPACE_MISMATCH)
        body["kind"], body["apiVersion"] = t.rt.kind, t.rt.api_version
        new = copy.deepcopy(body)
        new_meta = new["metadata"]
        old_meta = current["metadata"]
        for key in (
            "uid",
            "creationTimestamp",
            "name",
            "resourceVersion",
            "generation",
            "deletionTimestamp",
        ):
            if key in old_meta:
                new_meta[key] = old_meta[key]
            else:
                new_meta.pop(key, None)
        if t.rt.namespaced:
            new_meta["namespace"] = t.namespace
        if t.subresource == "status":
            merged = copy.deepcopy(current)
            merged["status"] = new.get("status", {})
            new = merged
        elif "status" in current:
            new["status"] = current["status"]
        apply_defaults(t.rt.kind, new)
        validate(t.rt, new)
        self._check_immutable(t, current, new)
        if t.rt.has_generation and new.get("spec") != current.get("spec"):
            new_meta["generation"] = int(old_meta.get("generation", 1)) + 1
        stored = self.store.update(t.rt.plural, new, dry_run=req.dry_run)
        # The last finalizer is gone: the object goes, its dependents in the background.
        if new_meta.get("deletionTimestamp") and not new_meta.get("finalizers") and not req.dry_run:
            self.store.delete(t.rt.plural, self._ns(t), t.name or "")
            self.controllers.kick()
        return stored

    def _check_immutable(self, t: Target, current: dict[str, Any], new: dict[str, Any]) -> None:
        if t.rt.kind not in ("Deployment", "ReplicaSet"):
            return
        selector = new["spec"].get("selector")
        if selector != current["spec"].get("selector"):
            message = f"Invalid value: {_label_selector_go(selector)}: field is immutable"
            raise invalid(t.rt.kind, t.rt.group, t.name or "", [("spec.selector", message)])

    def _write_scale(
        self,
        req: Request,
        t: Target,
        current: dict[str, Any],
        scale: dict[str, Any],
        verb: str = "update",
    ) -> dict[str, Any]:
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise conflict(t.rt.qualified, t.name or "")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid(
                "Scale",
                "autoscaling",
                t.name or "",
                [
                    (
                        "spec.replicas",
                        f"Invalid value: {json.dumps(replicas)}: "
                        "must be greater than or equal to 0",
                    )
                ],
            )
        updated = copy.deepcopy(current)
        updated["spec"]["replicas"] = replicas
        if updated["spec"] != current["spec"]:
            updated["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
        stored = self.store.update(t.rt.plural, updated, dry_run=req.dry_run)
        self._record(req, verb, t, t.name or "")
        return _scale_of(stored)

    def _delete(self, req: Request, t: Target) -> Response:
        options = self._delete_options(req)
        with self.store.lock:
            current = self.store.require(t.rt.plural, self._ns(t), t.name or "")
            precondition = (options.get("preconditions") or {}).get("resourceVersion")
            if precondition and precondition != current["metadata"]["resourceVersion"]:
                raise conflict(t.rt.qualified, t.name or "")
            dry = req.dry_run or options.get("dryRun") == ["All"]
            policy = options.get("propagationPolicy")
            finalizers = list(current["metadata"].get("finalizers") or [])
            if policy == "Foreground" and t.rt.kind != "Pod" and FOREGROUND not in finalizers:
                finalizers.append(FOREGROUND)
            if finalizers and t.rt.kind != "Namespace":
                # Finalizers hold the object: it is marked, and goes when the last is removed
                # (the garbage collector removes foregroundDeletion once dependents are gone).
                marked = copy.deepcopy(current)
                marked["metadata"]["finalizers"] = finalizers
                marked["metadata"].setdefault("deletionTimestamp", now_rfc3339())
                marked["metadata"].setdefault("deletionGracePeriodSeconds", 0)
                stored = self.store.update(t.rt.plural, marked, dry_run=dry)
                req.query["dryRun"] = "All" if dry else ""
                self._record(req, "delete", t, t.name or "")
                self.controllers.kick()
                return Response(200, stored)
            deleted = self.store.delete(t.rt.plural, self._ns(t), t.name or "", dry_run=dry)
            if not dry:
                self._cascade(t.rt, deleted, options.get("propagationPolicy"))
            req.query["dryRun"] = "All" if dry else ""
            self._record(req, "delete", t, t.name or "")
        if t.rt.kind == "Pod":
            return Response(200, deleted)
        if options.get("propagationPolicy") == "Orphan":
            # Upstream answers with the object marked for the orphan finalizer, which the
            # garbage collector clears; here the orphaning happened at once.
            deleted["metadata"].update(
                deletionTimestamp=now_rfc3339(), deletionGracePeriodSeconds=0, finalizers=["orphan"]
            )
            return Response(200, deleted)
        details: dict[str, Any] = {"name": t.name}
        if t.rt.group:
            details["group"] = t.rt.group
        details.update(kind=t.rt.plural, uid=current["metadata"]["uid"])
        return Response(
            200,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            },
        )

    def _delete_options(self, req: Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if req.body.strip():
            options = self._decode(req)
        if "propagationPolicy" in req.query:
            options["propagationPolicy"] = req.query["propagationPolicy"]
        return options

    def _cascade(self, rt: ResourceType, deleted: dict[str, Any], policy: str | None) -> None:
        if rt.kind == "Namespace":
            ns = deleted["metadata"]["name"]
            for other in res.RESOURCES:
                if other.namespaced:
                    for obj in self.store.iter_stored(other.plural, ns):
                        self.store.delete(other.plural, ns, obj["metadata"]["name"])
            return
        if policy == "Orphan":
            uid = deleted["metadata"]["uid"]
            for plural in ("replicasets", "pods"):
                for obj in self.store.list(plural, deleted["metadata"].get("namespace")):
                    refs = obj["metadata"].get("ownerReferences") or []
                    kept = [r for r in refs if r.get("uid") != uid]
                    if kept != refs:
                        obj["metadata"]["ownerReferences"] = kept
                        if not kept:
                            del obj["metadata"]["ownerReferences"]
                        self.store.update(plural, obj)
            return
        self.controllers.kick()

    def _delete_collection(self, req: Request, t: Target) -> Response:
        matches = self._matcher(req)
        with self.store.lock:
            items = [o for o in self.store.list(t.rt.plural, t.namespace) if matches(o)]
            for obj in items:
                self.store.delete(
                    t.rt.plural,
                    obj["metadata"]["namespace"],
                    obj["metadata"]["name"],
                    dry_run=req.dry_run,
                )
                self._record(req, "deletecollection", t, obj["metadata"]["name"])
            self.controllers.kick()
            rv = self.store.resource_version
        return Response(
            200,
            {
                "kind": f"{t.rt.kind}List",
                "apiVersion": t.rt.api_version,
                "metadata": {"resourceVersion": rv},
                "items": items,
            },
        )


def _key(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def _encode_continue(key: str, rv: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": int(rv), "start": key + "\u0000"}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")


def _decode_continue(token: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        start = data["start"]
        if data.get("v") != "meta.k8s.io/v1" or not isinstance(start, str):
            raise ValueError("unsupported continue token")
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request(f"continue key is not valid: {exc}") from exc
    return start.rstrip("\u0000")


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None


def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace", ""),
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"].get("replicas", 0)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": selector_string(obj["spec"].get("selector")),
        },
    }


def _label_selector_go(selector: Any) -> str:
    labels = (selector or {}).get("matchLabels") or {}
    inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items()))
    return (
        "v1.LabelSelector{MatchLabels:map[string]string{"
        + inner
        + "}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
    )


def _suffix() -> str:
    import random

    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))


def _version() -> dict[str, str]:
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.4-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.8",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


__all__ = ["Api", "Request", "Response", "WatchStream", "now_rfc3339"]
