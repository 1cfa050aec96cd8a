"""Reading and validating a catalog file, reporting every problem at once.

The catalog is validated as a whole before anything runs, and every problem is
reported with its path (``services[2].policy.approvers: unknown key 'user'``)
so that ``rollback-bot check-config`` can list them all at once: a catalog
mistake found mid-incident costs far more than one found in review.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rollback_bot.catalog.helm import helm_problems
from rollback_bot.catalog.matchers import Matcher, compile_matchers, overlap_witness
from rollback_bot.catalog.model import (
    TARGET_KEYS,
    TARGET_KINDS,
    TWO_PERSON_ENVIRONMENTS,
    Catalog,
    target_keys_problem,
)


class CatalogError(Exception):
    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid catalog:\n" + "\n".join(f"  {p}" for p in self.problems))


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _pydantic_problems(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = list(e["loc"])
        if "[key]" in loc:
            continue  # non-string keys are explained by _plain_and_word_problems
        if e["type"] == "extra_forbidden":
            problems.append(f"{_path(loc[:-1])}: unknown key '{loc[-1]}'")
        elif e["type"] == "missing":
            problems.append(f"{_path(loc[:-1])}: missing key '{loc[-1]}'")
        else:
            message = str(e["msg"]).removeprefix("Value error, ")
            problems.append(f"{_path(loc)}: {message}")
    return problems


def _get(data: object, *keys: str) -> Any:
    """``data[k1][k2]...`` when every step is a mapping, else None: checks run on raw input."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple) else []


def _services(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    raw = data.get("services")
    if not isinstance(raw, list | tuple):
        return []
    return [(f"services[{i}]", s) for i, s in enumerate(raw) if isinstance(s, dict)]


def _semantic_problems(data: dict[str, Any]) -> list[str]:
    """Checks beyond each field's shape, run on the raw document.

    They run even when some fields are malformed, so that one run of ``check-config``
    reports everything: a second run must not reveal more.
    """
    problems: list[str] = []
    services = _services(data)
    names = {s.get("name") for _, s in services}
    seen: set[str] = set()
    compiled: list[tuple[str, str, Matcher]] = []
    for here, svc in services:
        name = svc.get("name")
        if isinstance(name, str):
            if name in seen:
                problems.append(f"{here}.name: duplicate service name '{name}'")
            seen.add(name)
        targets = [k for k in TARGET_KEYS if svc.get(k)]
        if len(targets) != 1:
            problems.append(f"{here}: {target_keys_problem(targets)}")
        strategy = svc.get("strategy", "instant")
        if strategy == "blue-green" and svc.get("blue_green") is None:
            problems.append(f"{here}.blue_green: required when strategy is blue-green")
        if strategy == "gradual" and svc.get("gradual") is None:
            problems.append(f"{here}.gradual: required when strategy is gradual")
        if _get(svc, "gradual", "driver") == "ingress" and not _get(
            svc, "gradual", "canary_ingress"
        ):
            problems.append(f"{here}.gradual.canary_ingress: required when driver is ingress")
        match = svc.get("match")
        if isinstance(match, dict):
            try:
                compiled.append((here, str(name), compile_matchers(match)))
            except ValueError as exc:
                problems.append(f"{here}.match: {exc}")
        for dep in _strings(svc.get("dependents")):
            if dep not in names:
                problems.append(f"{here}.dependents: unknown service '{dep}'")
        flags = [_get(f, "name") for f in svc.get("flags") or () if isinstance(f, dict)]
        if len(set(flags)) != len(flags):
            problems.append(f"{here}.flags: duplicate flag names")
        triggers = svc.get("triggers")
        if isinstance(triggers, list | tuple) and _get(svc, "policy", "automation") is not True:
            critical = [
                t.get("name")
                for t in triggers
                if isinstance(t, dict) and t.get("severity") == "critical"
            ]
            if critical:
                problems.append(
                    f"{here}.triggers: critical rules {critical} need policy.automation: true"
                )
        problems.extend(_approval_problems(here, svc))
        problems.extend(helm_problems(here, svc))
        problems.extend(_target_problems(here, svc))
    problems.extend(_overlap_problems(compiled))
    return problems


def _target_problems(here: str, svc: dict[str, Any]) -> list[str]:
    """StatefulSets and DaemonSets are rolled back ``instant`` (their ControllerRevisions)."""
    named = [k for k in TARGET_KINDS if svc.get(k)]
    if len(named) != 1:
        return []  # none or several: the one-target check above says so
    strategy = svc.get("strategy", "instant")
    if named[0] != "deployment" and strategy != "instant":
        return [
            f"{here}.strategy: {strategy} needs Deployments (blue_green/gradual slots); "
            f"a {named[0]} is rolled back with strategy instant (its ControllerRevisions)"
        ]
    return []


def _approval_problems(here: str, svc: dict[str, Any]) -> list[str]:
    """``approvals: N`` must be reachable by the people the policy lists.

    Each approval is by a different person, so with approver users only (no user
    groups, whose size is unknown here) N may not exceed the number of those users.
    """
    approvals = _get(svc, "policy", "approvals")
    environment = svc.get("environment", "production")
    if approvals is None:
        if environment not in TWO_PERSON_ENVIRONMENTS:
            return []
        required, why = 1, f"environment {environment} needs one approval (two-person rule)"
    elif isinstance(approvals, int) and not isinstance(approvals, bool):
        required, why = approvals, f"approvals: {approvals}"
    else:
        return []
    if required <= 0 or _strings(_get(svc, "policy", "approvers", "usergroups")):
        return []
    users = set(_strings(_get(svc, "policy", "approvers", "users")))
    if required <= len(users):
        return []
    listed = f"only {len(users)} approver user(s) listed" if users else "no approvers listed"
    return [
        f"{here}.policy.approvers: {why} but {listed} and no usergroups: "
        "no request could ever be approved; list more approvers or a user group"
        + (", or set approvals: 0 to turn the rule off on purpose" if approvals is None else "")
    ]


def _overlap_problems(compiled: list[tuple[str, str, Matcher]]) -> list[str]:
    """Two services that select the same alerts: the first in the file would get them all.

    Reported when one service's labels are among the other's (the same labels, or a
    general match shadowing a more specific one) and an alert matching both is found.
    Services told apart by different label names cannot be judged from the catalog.
    """
    problems = []
    label_sets = [{m.label for m in matcher.matchers} for _h, _n, matcher in compiled]
    equals = [
        {m.label: m.value for m in matcher.matchers if m.op == "="} for *_, matcher in compiled
    ]
    # Two services that require different values of one label (service=a, service=b)
    # cannot overlap: they are never compared, so a 1,000-service catalog is not a
    # million comparisons. Nor is each service's list of candidates cut down from every
    # earlier service (half a million set entries for 1,000): it is built from one of its
    # own labels, as the earlier services that do not require that label plus those that
    # require the same value, then checked against its other labels.
    # Index: label -> value -> services requiring it; label -> services that do not.
    requiring: dict[str, set[int]] = {}
    by_value: dict[tuple[str, str], set[int]] = {}
    lacking: dict[str, list[int]] = {}
    for i, (here, _name, matcher) in enumerate(compiled):
        equal = equals[i]
        for label in equal:
            if label not in lacking:  # a label first required here: every earlier one lacks it
                lacking[label] = [j for j in range(i) if label not in equals[j]]
        if equal:
            narrowest = min(
                equal,
                key=lambda k: len(lacking[k]) + len(by_value.get((k, equal[k]), ())),
            )
            base = set(lacking[narrowest]) | by_value.get((narrowest, equal[narrowest]), set())
            candidates = {
                j
                for j in base
                if all(
                    j not in requiring.get(label, ()) or j in by_value.get((label, value), ())
                    for label, value in equal.items()
                )
            }
        else:
            candidates = set(range(i))
        for label, value in equal.items():
            requiring.setdefault(label, set()).add(i)
            by_value.setdefault((label, value), set()).add(i)
        for label, services in lacking.items():
            if label not in equal:
                services.append(i)
        for j in sorted(candidates):
            _other_here, other, earlier = compiled[j]
            mine, theirs = label_sets[i], label_sets[j]
            if not (mine <= theirs or theirs <= mine):
                continue
            witness = overlap_witness(earlier, matcher)
            if witness is not None:
                labels = ", ".join(f"{k}={v!r}" for k, v in sorted(witness.items()))
                problems.append(
                    f"{here}.match: overlaps service '{other}': an alert labelled {{{labels}}} "
                    f"matches both, and only the first ('{other}') would get it; "
                    "add a label that tells them apart"
                )
    return problems


class _YamlWord(str):
    """An unquoted yes/no/on/off, which YAML 1.1 (PyYAML) reads as a boolean.

    The catalog reader keeps the word as written so that the rest of the document can
    still be checked, and reports it: ``off:`` as a key would otherwise fail with
    pydantic's bare "Keys should be strings".
    """

    line: int
    boolean: bool


# libyaml's safe loader when PyYAML was built with it (several times faster on a
# 1,000-service catalog); the same constructors either way.
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CatalogLoader(_SafeBase):  # type: ignore[valid-type,misc]
    """The safe loader, remembering each plain scalar's implicit tag within one document.

    The tag of a scalar depends only on its text and whether it was quoted (the safe
    loader has no path resolvers), and a catalog repeats its keys and many values
    (``namespace``, ``environment``, ``production``) a thousand times: PyYAML's
    ``resolve`` (Python, run for every scalar even under libyaml) was a third of the
    load of a 1,000-service catalog.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._tags: dict[tuple[str, tuple[bool, bool]], str] = {}

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode or self.yaml_path_resolvers:
            return str(super().resolve(kind, value, implicit))
        key = (value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = self._tags[key] = super().resolve(kind, value, implicit)
        return tag


def _construct_bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    value = loader.construct_yaml_bool(node)
    if node.value.lower() in ("true", "false"):
        return value
    word = _YamlWord(node.value)
    word.line = node.start_mark.line + 1
    word.boolean = bool(value)
    return word


_CatalogLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)


def _plain_and_word_problems(data: object) -> tuple[object, list[str]]:
    """The document with every key a string (words kept as written) for validation, and
    the unquoted yes/no/on/off words and non-string keys it holds, in document order.

    One walk over the document: a 1,000-service catalog is 15,000 values.
    """
    problems: list[str] = []

    def walk(value: object, path: tuple[Any, ...]) -> object:
        if isinstance(value, dict):
            plain = {}
            for key, item in value.items():
                if isinstance(key, _YamlWord):
                    problems.append(
                        f"{_path(path)}: the key {key} (line {key.line}) is unquoted, and YAML "
                        f"reads it as the boolean {str(key.boolean).lower()}: write it in "
                        f'quotes, "{key}":'
                    )
                elif not isinstance(key, str):
                    problems.append(
                        f"{_path(path)}: the key {key!r} is not a string; YAML reads unquoted "
                        "true/false/yes/no/on/off as booleans: quote the key"
                    )
                plain[str(key) if isinstance(key, _YamlWord) else key] = walk(item, (*path, key))
            return plain
        if isinstance(value, list | tuple):
            return [walk(item, (*path, i)) for i, item in enumerate(value)]
        if isinstance(value, _YamlWord):
            problems.append(
                f"{_path(path)}: {value} (line {value.line}) is unquoted, and YAML reads it as "
                f'the boolean {str(value.boolean).lower()}: write "{value}" in quotes for the '
                "word, or true/false for a yes-or-no setting"
            )
            return str(value)
        return value

    return walk(data, ()), problems


def parse_catalog(data: object) -> Catalog:
    """Validate an already-loaded document; raise ``CatalogError`` listing every problem.

    All checks run in one pass (shape, YAML booleans, cross-field and cross-service
    rules), so the list is complete: fixing it all and running again finds nothing new.
    """
    if not isinstance(data, dict):
        raise CatalogError(["(top level): expected a mapping with a 'services' list"])
    plain, problems = _plain_and_word_problems(data)
    assert isinstance(plain, dict)
    catalog: Catalog | None = None
    try:
        catalog = Catalog.model_validate(plain)
    except ValidationError as err:
        problems.extend(_pydantic_problems(err))
    problems.extend(p for p in _semantic_problems(plain) if p not in problems)
    if problems or catalog is None:
        raise CatalogError(problems)
    return catalog


def load_catalog(path: str | Path) -> Catalog:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError([f"{path}: cannot read ({exc.strerror})"]) from None
    try:
        data = yaml.load(text, Loader=_CatalogLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CatalogError([f"{path}: not valid YAML{where}"]) from None
    return parse_catalog(data)
