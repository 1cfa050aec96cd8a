"""Each scenario on the emulator and on the real control plane; the normalised results
must be equal, or the difference must be a known one (see known.py and sandbox/README.md)."""

from __future__ import annotations

import pytest

from .backends import EmulatorBackend, RealBackend
from .known import FOUND, KNOWN, compare
from .scenarios import SCENARIOS


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_result(name: str, backends: tuple[EmulatorBackend, RealBackend]) -> None:
    emulator, real = backends
    run = SCENARIOS[name]
    expected = run(real)
    got = run(emulator)
    differences = compare(expected, got)
    if differences:
        FOUND[name] = differences
    if name in KNOWN:
        if not differences:
            pytest.fail(f"{name} no longer differs: remove it from known.py and the README")
        pytest.xfail(f"{KNOWN[name]} | " + "; ".join(differences))
    assert not differences, "\n".join(differences)
