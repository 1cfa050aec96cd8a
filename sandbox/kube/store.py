"""The object store: one lock, one resourceVersion counter, and watch fan-out.

A single global counter gives every write a strictly increasing `resourceVersion`, as
etcd's revision does, so a watch can resume from any version still in the event
history and answer 410 Gone for older ones.
"""

from __future__ import annotations

import copy
import queue
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import already_exists, gone, not_found
from .resources import BY_PLURAL

Key = tuple[str, str, str]  # (plural, namespace, name); namespace "" for cluster scope
HISTORY = 4096


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WatchEvent:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    plural: str
    obj: dict[str, Any]
    old: dict[str, Any] | None = None


@dataclass
class Watcher:
    plural: str
    namespace: str | None
    events: queue.Queue[WatchEvent | None] = field(default_factory=queue.Queue)


class Store:
    def __init__(self, *, history: int = HISTORY) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._objects: dict[Key, dict[str, Any]] = {}
        self._rv = 0
        self._history: deque[WatchEvent] = deque(maxlen=history)
        self._watchers: list[Watcher] = []
        self._listeners: list[Callable[[], None]] = []

    # -- reading ----------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self._objects.get((plural, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def peek(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object itself (no copy), for callers holding the lock that only read."""
        return self._objects.get((plural, namespace, name))

    def require(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        obj = self.get(plural, namespace, name)
        if obj is None:
            raise not_found(BY_PLURAL[plural].qualified, name)
        return obj

    def list(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(o) for o in self._iter(plural, namespace)]

    def iter_stored(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects without copying, sorted by namespace and name; read-only use."""
        with self.lock:
            return list(self._iter(plural, namespace))

    def _iter(self, plural: str, namespace: str | None) -> Iterator[dict[str, Any]]:
        keys = sorted(
            k for k in self._objects if k[0] == plural and (namespace is None or k[1] == namespace)
        )
        return (self._objects[k] for k in keys)

    def iter_all(self) -> list[tuple[str, dict[str, Any]]]:
        """(plural, stored object) for every object, without copying; read-only use."""
        with self.lock:
            return [(k[0], self._objects[k]) for k in sorted(self._objects)]

    def all_objects(self) -> list[tuple[Key, dict[str, Any]]]:
        with self.lock:
            return [(k, copy.deepcopy(self._objects[k])) for k in sorted(self._objects)]

    # -- writing ----------------------------------------------------------------------

    def add_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    def create(self, plural: str, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        with self.lock:
            meta = obj["metadata"]
            key = (plural, meta.get("namespace", ""), meta["name"])
            if key in self._objects:
                raise already_exists(BY_PLURAL[plural].qualified, meta["name"])
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_rfc3339())
            if dry_run:
                meta.pop("resourceVersion", None)
                return copy.deepcopy(obj)
            meta["resourceVersion"] = self._bump()
            stored = copy.deepcopy(obj)
            self._objects[key] = stored
            self._publish(WatchEvent(self._rv, "ADDED", plural, stored))
            return copy.deepcopy(stored)

    def update(self, plural: str, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Store `obj` over the existing object; a no-op write keeps the resourceVersion."""
        with self.lock:
            meta = obj["metadata"]
            key = (plural, meta.get("namespace", ""), meta["name"])
            old = self._objects.get(key)
            if old is None:
                raise not_found(BY_PLURAL[plural].qualified, meta["name"])
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            if obj == old or dry_run:
                return copy.deepcopy(obj)
            meta["resourceVersion"] = self._bump()
            stored = copy.deepcopy(obj)
            self._objects[key] = stored
            self._publish(WatchEvent(self._rv, "MODIFIED", plural, stored, old))
            return copy.deepcopy(stored)

    def delete(
        self, plural: str, namespace: str, name: str, *, dry_run: bool = False
    ) -> dict[str, Any]:
        with self.lock:
            key = (plural, namespace, name)
            old = self._objects.get(key)
            if old is None:
                raise not_found(BY_PLURAL[plural].qualified, name)
            if dry_run:
                return copy.deepcopy(old)
            del self._objects[key]
            final = copy.deepcopy(old)
            final["metadata"]["resourceVersion"] = self._bump()
            self._publish(WatchEvent(self._rv, "DELETED", plural, final, old))
            return copy.deepcopy(final)

    def _publish(self, event: WatchEvent) -> None:
        self._history.append(event)
        for watcher in self._watchers:
            if watcher.plural == event.plural and watcher.namespace in (
                None,
                event.obj["metadata"].get("namespace", ""),
            ):
                watcher.events.put(event)
        self.changed.notify_all()
        for listener in self._listeners:
            listener()

    # -- watching ---------------------------------------------------------------------

    def watch(
        self, plural: str, namespace: str | None, since: str | None
    ) -> tuple[Watcher, list[WatchEvent]]:
        """Register a watcher; return it with the events it must replay first.

        `since` empty or "0" replays the current state as ADDED events, as the API
        server does; a version older than the history answers 410 Gone.
        """
        with self.lock:
            watcher = Watcher(plural, namespace)
            if not since or since == "0":
                replay = [
                    WatchEvent(self._rv, "ADDED", plural, copy.deepcopy(o))
                    for o in self._iter(plural, namespace)
                ]
            else:
                try:
                    start = int(since)
                except ValueError as exc:
                    raise gone(f"too old resource version: {since}") from exc
                oldest = self._history[0].rv if self._history else self._rv + 1
                if start < oldest - 1 and start < self._rv:
                    raise gone(f"too old resource version: {start} ({oldest - 1})")
                replay = [
                    e
                    for e in self._history
                    if e.rv > start
                    and e.plural == plural
                    and namespace in (None, e.obj["metadata"].get("namespace", ""))
                ]
            self._watchers.append(watcher)
            return watcher, replay

    def unwatch(self, watcher: Watcher) -> None:
        with self.lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    def close_watchers(self) -> None:
        with self.lock:
            for watcher in self._watchers:
                watcher.events.put(None)

    # -- persistence ------------------------------------------------------------------

    def load(self, objects: list[tuple[str, dict[str, Any]]]) -> None:
        """Install objects as they were saved, keeping their resourceVersions."""
        with self.lock:
            for plural, obj in objects:
                meta = obj["metadata"]
                self._objects[(plural, meta.get("namespace", ""), meta["name"])] = obj
                rv = str(meta.get("resourceVersion", "0"))
                self._rv = max(self._rv, int(rv) if rv.isdigit() else 0)
