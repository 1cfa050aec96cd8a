"""Label matchers: which catalog service an alert belongs to.

A service's ``match`` maps a label to a matcher written the way PromQL writes
them, so the people who write alert rules read it without a manual:

- ``checkout``: the label equals ``checkout``
- ``"=~check.*"``: the whole label value matches the regex
- ``"!=canary"``: the label does not equal ``canary``
- ``"!~test-.*"``: the whole label value does not match the regex

As in PromQL, a missing label is the empty string (so ``"!=canary"`` matches
alerts without the label), regexes are anchored at both ends and ``.``
matches newlines too. Regexes use Python's ``re`` dialect, which accepts the
RE2 syntax alert rules normally use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

MatchOp = Literal["=", "!=", "=~", "!~"]

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Longest prefixes first: "=~" must not be read as "=" followed by "~".
_PREFIXES: tuple[MatchOp, ...] = ("=~", "!~", "!=")


@dataclass(frozen=True)
class LabelMatcher:
    label: str
    op: MatchOp
    value: str
    pattern: re.Pattern[str] | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.pattern is not None  # set for both regex operators by parse_matcher
        found = self.pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


@dataclass(frozen=True)
class Matcher:
    """All label matchers of one service; an alert matches when every one does."""

    matchers: tuple[LabelMatcher, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        return "{" + ", ".join(str(m) for m in self.matchers) + "}"


def parse_matcher(label: str, spec: str) -> LabelMatcher:
    """One ``label: spec`` entry; ``ValueError`` says what is wrong with it."""
    if not isinstance(label, str) or not _LABEL_NAME.match(label):
        raise ValueError(f"{label!r} is not a valid label name")
    if not isinstance(spec, str):
        raise ValueError(f"{label}: expected a string matcher, got {type(spec).__name__}")
    op: MatchOp = next((p for p in _PREFIXES if spec.startswith(p)), "=")
    value = spec[len(op) :] if op != "=" else spec
    if op in ("=", "!="):
        return LabelMatcher(label=label, op=op, value=value)
    try:
        pattern = re.compile(value, re.DOTALL)
    except re.error as exc:
        raise ValueError(f"{label}: invalid regex {value!r}: {exc}") from None
    return LabelMatcher(label=label, op=op, value=value, pattern=pattern)


def compile_matchers(spec: Mapping[str, str]) -> Matcher:
    """Compile a catalog ``match`` mapping.

    An empty mapping is refused: it would claim every alert for one service.
    """
    if not spec:
        raise ValueError("at least one label matcher is required")
    return Matcher(tuple(parse_matcher(label, value) for label, value in spec.items()))


def first_match(labels: Mapping[str, str], services: Sequence[tuple[str, Matcher]]) -> str | None:
    """The first service (in catalog order) whose matcher accepts ``labels``."""
    return next((name for name, matcher in services if matcher.matches(labels)), None)


def _guesses(matcher: LabelMatcher) -> set[str]:
    """Values likely to satisfy ``matcher``: its literal, or strings read off its regex."""
    if matcher.op in ("=", "!="):
        return {matcher.value}
    out = set()
    for alternative in matcher.value.split("|"):
        text = alternative.strip("()^$").replace(".*", "").replace(".+", "x")
        out.add(re.sub(r"\\(.)", r"\1", text))
    return out


def overlap_witness(a: Matcher, b: Matcher) -> dict[str, str] | None:
    """Labels that both ``a`` and ``b`` accept, when such labels are found; else None.

    Each matcher is a conjunction of per-label conditions, so a value is sought per label
    among the literals and regex-derived strings of both; every candidate is checked, so
    a witness is real (regexes that overlap only on strings not guessed go unreported).
    """
    constraints = a.matchers + b.matchers
    witness: dict[str, str] = {}
    for label in dict.fromkeys(m.label for m in constraints):
        mine = [m for m in constraints if m.label == label]
        candidates = {"", "other"}.union(*(_guesses(m) for m in mine))
        ordered = sorted(candidates, key=lambda v: (v == "", v))  # a present label reads best
        found = next((v for v in ordered if all(m.matches({label: v}) for m in mine)), None)
        if found is None:
            return None
        witness[label] = found
    return witness


__all__ = [
    "LabelMatcher",
    "MatchOp",
    "Matcher",
    "compile_matchers",
    "first_match",
    "overlap_witness",
    "parse_matcher",
]
