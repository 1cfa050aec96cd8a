"""`KubeEmulator`: the in-process entry point that wires store, controllers and HTTP.

Tests and the demo start one on port 0, point kubectl or the Python client at `.url`,
arrange faults through the helpers here, and assert on `.audit` and `.dump()`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from .api import Api, Response
from .auth import Policy
from .controller import Controllers
from .defaults import apply_defaults
from .faults import Audit, Faults
from .resources import by_kind
from .server import KubeHTTPServer
from .store import HISTORY, Store

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class KubeEmulator:
    def __init__(
        self,
        *,
        ready_delay: float = 0.3,
        state_file: str | None = None,
        policy: Policy | None = None,
        watch_history: int = HISTORY,
    ) -> None:
        self.ready_delay = ready_delay
        self.state_file = state_file
        self.store = Store(history=watch_history)
        self.faults = Faults()
        self._audit = Audit()
        self.controllers = Controllers(
            self.store, ready_delay=ready_delay, is_crashing=self.faults.crashing.__contains__
        )
        self.api = Api(self.store, self.controllers, self.faults, self._audit)
        # None allows every request (the default); a Policy answers 401/403 like the API.
        self.api.policy = policy
        self._server: KubeHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self, *, port: int = 0) -> KubeEmulator:
        self._seed()
        self._server = KubeHTTPServer(
            self.api,
            self._admin,
            lambda: self.faults.latency,
            port=port,
            reply_latency=lambda: self.faults.reply_latency,
        )
        self.api.server_address = f"127.0.0.1:{self._server.port}"
        self.controllers.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="kube-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.api.stopping = True
        self.store.close_watchers()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.controllers.stop()
        self._server = None
        if self.state_file:
            self._save_state(self.state_file)

    def __enter__(self) -> KubeEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- client configuration ---------------------------------------------------------

    def write_kubeconfig(self, path: str | os.PathLike[str], *, namespace: str = "default") -> str:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": {"server": self.url}}],
            "users": [{"name": "sandbox-admin", "user": {"token": "sandbox"}}],
            "contexts": [
                {
                    "name": "sandbox",
                    "context": {
                        "cluster": "sandbox",
                        "user": "sandbox-admin",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": "sandbox",
            "preferences": {},
        }
        Path(path).write_text(yaml.safe_dump(config, sort_keys=False))
        return str(path)

    def api_client(
        self, *, user: str | None = None, groups: list[str] | None = None, **kw: Any
    ) -> Any:
        """A `kubernetes.client.ApiClient` for this emulator, optionally impersonating."""
        from kubernetes import client

        configuration = client.Configuration(host=self.url)
        for key, value in kw.items():
            setattr(configuration, key, value)
        api = client.ApiClient(configuration)
        if user:
            api.set_default_header("Impersonate-User", user)
        if groups:
            # The generated client sends one value per header name, so groups travel joined.
            api.set_default_header("Impersonate-Group", ",".join(groups))
        return api

    # -- fault injection and inspection -----------------------------------------------

    def crash_image(self, image: str) -> None:
        self.faults.crashing.add(image)
        self.controllers.kick()

    def heal_image(self, image: str) -> None:
        self.faults.crashing.discard(image)
        self.controllers.heal(image)

    def inject_faults(
        self,
        *,
        resource: str,
        namespace: str,
        name: str,
        conflicts: int = 0,
        errors: int = 0,
        status: int = 500,
    ) -> None:
        self.faults.inject(
            resource=resource,
            namespace=namespace,
            name=name,
            conflicts=conflicts,
            errors=errors,
            status=status,
        )

    def set_latency(self, seconds: float, *, before_reply: bool = False) -> None:
        """Every request waits ``seconds`` before it is handled, or (``before_reply``) each
        write is handled at once and its answer waits: the write lands, the client hangs."""
        if before_reply:
            self.faults.reply_latency = max(0.0, float(seconds))
        else:
            self.faults.latency = max(0.0, float(seconds))

    @property
    def audit(self) -> list[dict[str, Any]]:
        return self._audit.snapshot()

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A stored object by plural resource name (namespace "" for cluster scope)."""
        return self.store.get(resource, namespace, name)

    def list(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.store.list(resource, namespace)

    def dump(self) -> str:
        """Every stored object, canonically serialized: equal state gives equal text."""
        objects = [obj for _, obj in self.store.all_objects()]
        return json.dumps(objects, sort_keys=True, indent=1, separators=(",", ": ")) + "\n"

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Block until `predicate()` holds, re-checking on every store change."""
        deadline = time.monotonic() + timeout
        with self.store.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s")
                self.store.changed.wait(min(remaining, 0.1))

    # -- admin HTTP API ---------------------------------------------------------------

    def _admin(self, method: str, path: str, body: bytes) -> Response | None:
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            return Response(400, {"error": "body must be JSON"})
        if not isinstance(payload, dict):
            return Response(400, {"error": "body must be a JSON object"})
        try:
            return self._admin_route(method, path, payload)
        except (KeyError, TypeError, ValueError) as exc:
            return Response(400, {"error": f"bad request: {exc}"})

    def _admin_route(self, method: str, path: str, payload: dict[str, Any]) -> Response | None:
        action = path.removeprefix("/_sandbox/").strip("/")
        if method == "GET" and action == "audit":
            return Response(200, self.audit)
        if method == "GET" and action == "dump":
            return Response(200, json.loads(self.dump()))
        if method != "POST":
            return None
        if action == "crash-image":
            self.crash_image(str(payload["image"]))
        elif action == "heal-image":
            self.heal_image(str(payload["image"]))
        elif action == "faults":
            self.inject_faults(
                resource=str(payload["resource"]),
                namespace=str(payload.get("namespace", "")),
                name=str(payload["name"]),
                conflicts=int(payload.get("conflicts", 0)),
                errors=int(payload.get("errors", 0)),
                status=int(payload.get("status", 500)),
            )
        elif action == "latency":
            self.set_latency(
                float(payload["seconds"]), before_reply=bool(payload.get("before_reply"))
            )
        else:
            return None
        return Response(200, {"ok": True})

    # -- state ------------------------------------------------------------------------

    def _seed(self) -> None:
        if self.state_file and Path(self.state_file).exists():
            self._load_state(self.state_file)
        for name in DEFAULT_NAMESPACES:
            if self.store.peek("namespaces", "", name) is None:
                ns: dict[str, Any] = {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": name},
                }
                apply_defaults("Namespace", ns)
                self.store.create("namespaces", ns)

    def _load_state(self, path: str) -> None:
        document = yaml.safe_load(Path(path).read_text()) or {}
        loaded = []
        for obj in document.get("items") or []:
            rt = by_kind(obj.get("kind", ""))
            if rt is not None and isinstance(obj.get("metadata"), dict):
                loaded.append((rt.plural, obj))
        self.store.load(loaded)

    def _save_state(self, path: str) -> None:
        items = [obj for _, obj in self.store.all_objects()]
        document = {"apiVersion": "v1", "kind": "List", "items": items}
        Path(path).write_text(yaml.safe_dump(document, sort_keys=True))
