"""The catalog's overlap check skips only pairs that cannot overlap: same answers as all pairs."""

from __future__ import annotations

import itertools
import random

from rollback_bot.catalog.loader import _overlap_problems
from rollback_bot.catalog.matchers import Matcher, compile_matchers, overlap_witness


def _every_pair(compiled: list[tuple[str, str, Matcher]]) -> list[str]:
    """The check as it was: every service against every earlier one."""
    problems = []
    for i, (here, _name, matcher) in enumerate(compiled):
        for _h, other, earlier in compiled[:i]:
            mine = {m.label for m in matcher.matchers}
            theirs = {m.label for m in earlier.matchers}
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


def test_same_problems_as_comparing_every_pair() -> None:
    values = ["checkout", "search", "=~check.*", "!=checkout", "!~s.*", ""]
    specs = []
    for service, env in itertools.product(values, [None, "prod", "staging", "=~p.*"]):
        spec = {"service": service} if service else {}
        if env is not None:
            spec["env"] = env
        if spec:
            specs.append(spec)
    specs += [{"service": "checkout"}, {"team": "shop"}, {"service": "checkout", "team": "shop"}]
    compiled = [(f"services[{i}]", f"s{i}", compile_matchers(spec)) for i, spec in enumerate(specs)]
    expected = _every_pair(compiled)
    assert expected  # the catalog has overlaps to find
    assert _overlap_problems(compiled) == expected


def test_a_thousand_distinct_services_have_no_overlap() -> None:
    compiled = [
        (f"services[{i}]", f"svc{i}", compile_matchers({"service": f"svc{i}"})) for i in range(1000)
    ]
    assert _overlap_problems(compiled) == []


def test_same_problems_as_every_pair_on_mixed_label_sets() -> None:
    """Labels first required late, services lacking some labels, values shared or not."""
    rng = random.Random(17)
    labels = ["service", "env", "team", "region"]
    values = ["a", "b", "=~a|b", "!=a", "c"]
    specs = []
    for _ in range(300):
        chosen = rng.sample(labels, rng.randint(1, 3))
        specs.append({label: rng.choice(values) for label in chosen})
    compiled = [(f"services[{i}]", f"s{i}", compile_matchers(spec)) for i, spec in enumerate(specs)]
    expected = _every_pair(compiled)
    assert expected
    assert _overlap_problems(compiled) == expected
