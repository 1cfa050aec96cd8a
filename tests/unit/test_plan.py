"""A plan's stored JSON: the rows already in databases must read back, and new rows look alike."""

from __future__ import annotations

import json

from rollback_bot.executors.base import Plan

GRADUAL = Plan(
    strategy="gradual",
    from_revision=3,
    to_revision=1,
    from_image="registry.local/checkout:v2",
    to_image="registry.local/checkout:v1",
    steps=(50, 20, 5, 0),
    changes=("image: registry.local/checkout:v2 -> registry.local/checkout:v1",),
    warnings=("revisionHistoryLimit is 2 (< 3)",),
    detail={"stable": "checkout-v1", "canary": "checkout-v2", "replicas": {"total": 4}},
)

# Exactly what the hand-written to_dict stored, key order included.
STORED = (
    '{"strategy": "gradual", "from_revision": 3, "to_revision": 1, '
    '"from_image": "registry.local/checkout:v2", "to_image": "registry.local/checkout:v1", '
    '"steps": [50, 20, 5, 0], '
    '"changes": ["image: registry.local/checkout:v2 -> registry.local/checkout:v1"], '
    '"warnings": ["revisionHistoryLimit is 2 (< 3)"], '
    '"detail": {"stable": "checkout-v1", "canary": "checkout-v2", "replicas": {"total": 4}}}'
)


def test_the_stored_form_is_unchanged() -> None:
    assert json.dumps(GRADUAL.to_dict()) == STORED


def test_a_stored_plan_reads_back_equal() -> None:
    assert Plan.from_dict(json.loads(STORED)) == GRADUAL
    instant = Plan("instant", 2, 1, "a:v2", "a:v1")
    assert Plan.from_dict(json.loads(json.dumps(instant.to_dict()))) == instant


def test_a_row_missing_optional_keys_takes_the_defaults() -> None:
    plan = Plan.from_dict({"strategy": "flag", "detail": {"flag": "new-checkout"}})

    assert plan == Plan(strategy="flag", detail={"flag": "new-checkout"})
    assert plan.steps == () and plan.to_revision is None
