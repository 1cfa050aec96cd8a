"""The differential suite: each scenario runs on the emulator and on the real control plane.

``--difference-table FILE`` writes the differences the run found (scenario, what differs,
why it does not matter for the bot) as the Markdown table kept in sandbox/README.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.kube import KubeEmulator
from sandbox.realk8s import RealControlPlane
from tests.support.realk8s import real_control_plane, unique_name  # noqa: F401

from .backends import EMULATOR_POLICY, EmulatorBackend, RealBackend
from .known import FOUND, KNOWN

# Small enough that a scenario can push a resourceVersion out of the emulator's watch
# history with a few dozen writes (the real apiserver's watch cache starts at its own
# start-up, so early versions are out of it already).
WATCH_HISTORY = 64


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--difference-table",
        default=None,
        help="write the emulator/real differences found as a Markdown table to this file",
    )


@pytest.fixture
def backends(
    real_control_plane: RealControlPlane,  # noqa: F811
    tmp_path: Path,
) -> Iterator[tuple[EmulatorBackend, RealBackend]]:
    namespace = unique_name("diff")
    kube = KubeEmulator(ready_delay=0.05, policy=EMULATOR_POLICY, watch_history=WATCH_HISTORY)
    kube.start()
    real = RealBackend(real_control_plane, namespace)
    try:
        emu = EmulatorBackend(kube, real_control_plane.binary("kubectl"), tmp_path, namespace)
        yield emu, real
    finally:
        kube.stop()
        real.cleanup()


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = session.config.getoption("--difference-table", default=None)
    if not target or not FOUND:
        return
    rows = ["| scenario | what differs (real → emulator) | why it does not matter for the bot |"]
    rows.append("|---|---|---|")
    for name in sorted(FOUND):
        lines = FOUND[name]
        shown = "<br>".join(_cell(line) for line in lines[:6])
        if len(lines) > 6:
            shown += f"<br>… {len(lines) - 6} more"
        why = KNOWN.get(name, "**not yet explained**")
        rows.append(f"| `{name}` | {shown} | {_cell(why)} |")
    Path(target).write_text("\n".join(rows) + "\n")


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")
