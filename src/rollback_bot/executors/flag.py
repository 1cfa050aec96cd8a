"""The feature-flag kill switch: turn one feature off without a redeploy.

Often the quickest mitigation is not a rollback at all but switching off the
feature that misbehaves. The catalog lists each service's flags and where they
live: a key in a ConfigMap, holding either a plain value (``"true"``) or a
flagd flag-definition document whose ``flags.<name>.defaultVariant`` selects
the variant served. Flipping records the value it replaced, so the flip can be
undone with one click once the incident is over.

Writes carry the ConfigMap's ``resourceVersion`` (a concurrent edit answers 409
and the flip re-reads and decides again), and a drill sends them with
``dryRun=All`` so the API server validates and authorizes without persisting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rollback_bot.catalog import Flag, Service
from rollback_bot.executors.bluegreen import dry_run, guarded_write
from rollback_bot.kube.client import MERGE_PATCH, KubeApis
from rollback_bot.kube.events import CHANGE_CAUSE
from rollback_bot.kube.model import Actor, Change, ExecutionError


@dataclass(frozen=True)
class FlagChange:
    """``old`` is what to pass to ``undo``; ``change`` is ``None`` when nothing had to change.

    For a plain flag ``old`` is ``None`` when the key did not exist; undoing
    then removes the key again.
    """

    old: str | None
    new: str | None
    change: Change | None


class FlagSwitch:
    """Flips catalog flags in ConfigMaps, and flips them back."""

    def __init__(self, apis: KubeApis) -> None:
        self._apis = apis

    def flip(
        self,
        service: Service,
        flag_name: str,
        *,
        actor: Actor,
        drill: bool,
        cause: str | None = None,
    ) -> FlagChange:
        """Set the flag to its catalog ``off`` value."""
        flag = _flag(service, flag_name)
        return self._set(
            service, flag, flag.off, actor=actor, drill=drill, verb="turned off", cause=cause
        )

    def undo(
        self,
        service: Service,
        flag_name: str,
        old_value: str | None,
        *,
        actor: Actor,
        drill: bool,
        cause: str | None = None,
    ) -> FlagChange:
        """Put back ``old_value`` (the ``old`` of the flip being undone)."""
        flag = _flag(service, flag_name)
        return self._set(
            service, flag, old_value, actor=actor, drill=drill, verb="restored", cause=cause
        )

    def current(self, service: Service, flag_name: str) -> str | None:
        """The flag's value now (plain value, or flagd ``defaultVariant``)."""
        flag = _flag(service, flag_name)
        ns = service.namespace

        def read() -> Any:
            return self._apis.core.read_namespaced_config_map(flag.configmap, ns)

        cm = guarded_write(read, what=f"configmap {ns}/{flag.configmap}")
        return _read_value(flag, ns, dict(cm.data or {}))

    def _set(
        self,
        service: Service,
        flag: Flag,
        value: str | None,
        *,
        actor: Actor,
        drill: bool,
        verb: str,
        cause: str | None = None,
    ) -> FlagChange:
        """Write the flag; ``cause`` (the rollback's change-cause) goes on the ConfigMap, so
        ``kubectl describe`` shows which rollback flipped it, and who asked."""
        ns = service.namespace
        writer = self._apis.for_actor(actor)

        def attempt() -> FlagChange:
            cm = self._apis.core.read_namespaced_config_map(flag.configmap, ns)
            if cm.immutable:
                raise ExecutionError(
                    f"configmap {ns}/{flag.configmap} is immutable; "
                    f"flag {flag.name} cannot be flipped in place"
                )
            data = dict(cm.data or {})
            old = _read_value(flag, ns, data)
            if old == value:
                return FlagChange(old, value, None)
            new_text = _write_value(flag, ns, data, value)
            meta: dict[str, Any] = {
                "resourceVersion": cm.metadata.resource_version if cm.metadata else None
            }
            if cause:
                meta["annotations"] = {CHANGE_CAUSE: cause}
            patch = {"metadata": meta, "data": {flag.key: new_text}}
            writer.core.patch_namespaced_config_map(
                flag.configmap, ns, patch, dry_run=dry_run(drill), _content_type=MERGE_PATCH
            )
            what = "defaultVariant" if flag.format == "flagd" else "value"
            summary = f"flag {flag.name} {verb} (key {flag.key} {what}: {old} -> {value})"
            change = Change("patched", "ConfigMap", ns, flag.configmap, summary, dry_run=drill)
            return FlagChange(old, value, change)

        return guarded_write(attempt, what=f"flag {flag.name} in configmap {ns}/{flag.configmap}")


def _flag(service: Service, name: str) -> Flag:
    flag = service.flag(name)
    if flag is None:
        known = ", ".join(f.name for f in service.flags) or "none"
        raise ExecutionError(f"{service.name} has no flag '{name}' (catalog flags: {known})")
    return flag


def _read_value(flag: Flag, ns: str, data: dict[str, str]) -> str | None:
    if flag.format == "plain":
        return data.get(flag.key)
    definition = _flagd_definition(flag, ns, data)
    variant = definition.get("defaultVariant")
    return None if variant is None else str(variant)


def _write_value(flag: Flag, ns: str, data: dict[str, str], value: str | None) -> str | None:
    """The key's new text; ``None`` removes a plain key (merge patch null)."""
    if flag.format == "plain":
        return value
    if value is None:
        raise ExecutionError(f"flag {flag.name}: a flagd flag needs a variant name to restore")
    text = data[flag.key]
    document = json.loads(text)
    definition = _flagd_definition(flag, ns, data, document)
    variants = definition.get("variants") or {}
    if value not in variants:
        raise ExecutionError(
            f"flag {flag.name} in configmap {ns}/{flag.configmap} has no variant '{value}' "
            f"(variants: {', '.join(map(str, variants)) or 'none'}); fix the catalog's 'off'"
        )
    definition["defaultVariant"] = value
    # Keep the document's layout recognisable to whoever edits it by hand next.
    indent = 2 if "\n" in text.strip() else None
    out = json.dumps(document, indent=indent, ensure_ascii=False)
    return out + "\n" if text.endswith("\n") else out


def _flagd_definition(
    flag: Flag, ns: str, data: dict[str, str], document: Any = None
) -> dict[str, Any]:
    where = f"configmap {ns}/{flag.configmap} key {flag.key}"
    if flag.key not in data:
        raise ExecutionError(f"{where} does not exist; cannot flip flag {flag.name}")
    if document is None:
        try:
            document = json.loads(data[flag.key])
        except ValueError as exc:
            raise ExecutionError(f"{where} is not valid JSON ({exc}); not touching it") from exc
    flags = document.get("flags") if isinstance(document, dict) else None
    definition = flags.get(flag.name) if isinstance(flags, dict) else None
    if not isinstance(definition, dict):
        raise ExecutionError(f"{where} has no flagd flag '{flag.name}' under 'flags'")
    return definition
