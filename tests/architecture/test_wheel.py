"""The product wheel carries the product only: no emulator, no Slack stand-in, no tests."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("rollback_bot-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_only_the_rollback_bot_package(wheel: zipfile.ZipFile) -> None:
    top = {name.split("/")[0] for name in wheel.namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"rollback_bot"}


def test_the_wheel_carries_the_migrations_and_the_sample_catalog(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "rollback_bot/storage/migrations/env.py" in names
    assert "rollback_bot/storage/migrations/versions/0001_initial.py" in names
    assert "rollback_bot/sample_catalog.yaml" in names


def test_no_stand_in_code_rides_along(wheel: zipfile.ZipFile) -> None:
    mentions = [n for n in wheel.namelist() if n.endswith(".py") and b"sandbox" in wheel.read(n)]
    # cli.py names the sandbox once: `demo` imports it lazily, or says how to install it.
    assert mentions == ["rollback_bot/cli.py"]
