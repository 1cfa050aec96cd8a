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

from rollback_bot.catalog.matchers import compile_matchers
from rollback_bot.catalog.model import Catalog


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
        if e["type"] == "extra_forbidden":
            problems.append(f"{_path(loc[:-1])}: unknown key '{loc[-1]}'")
        elif e["type"] == "missing":
            problems.append(f"{_path(loc[:-1])}: missing key '{loc[-1]}'")
        else:
            message = str(e["msg"]).removeprefix("Value error, ")
            problems.append(f"{_path(loc)}: {message}")
    return problems


def _semantic_problems(catalog: Catalog) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for i, svc in enumerate(catalog.services):
        here = f"services[{i}]"
        if svc.name in seen:
            problems.append(f"{here}.name: duplicate service name '{svc.name}'")
        seen.add(svc.name)
        if svc.strategy == "blue-green" and svc.blue_green is None:
            problems.append(f"{here}.blue_green: required when strategy is blue-green")
        if svc.strategy == "gradual" and svc.gradual is None:
            problems.append(f"{here}.gradual: required when strategy is gradual")
        if svc.gradual and svc.gradual.driver == "ingress" and not svc.gradual.canary_ingress:
            problems.append(f"{here}.gradual.canary_ingress: required when driver is ingress")
        try:
            compile_matchers(svc.match)
        except ValueError as exc:
            problems.append(f"{here}.match: {exc}")
        for dep in svc.dependents:
            if dep not in {s.name for s in catalog.services}:
                problems.append(f"{here}.dependents: unknown service '{dep}'")
        if len({f.name for f in svc.flags}) != len(svc.flags):
            problems.append(f"{here}.flags: duplicate flag names")
        if svc.triggers and not svc.policy.automation:
            critical = [t.name for t in svc.triggers if t.severity == "critical"]
            if critical:
                problems.append(
                    f"{here}.triggers: critical rules {critical} need policy.automation: true"
                )
    return problems


def parse_catalog(data: object) -> Catalog:
    """Validate an already-loaded document; raise ``CatalogError`` listing every problem."""
    if not isinstance(data, dict):
        raise CatalogError(["(top level): expected a mapping with a 'services' list"])
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as err:
        raise CatalogError(_pydantic_problems(err)) from None
    problems = _semantic_problems(catalog)
    if problems:
        raise CatalogError(problems)
    return catalog


def load_catalog(path: str | Path) -> Catalog:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError([f"{path}: cannot read ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CatalogError([f"{path}: not valid YAML{where}"]) from None
    return parse_catalog(data)
