"""Outside programs the tests run (kubectl, Alertmanager): found, skipped, or failed for.

On a developer's machine a missing tool skips the tests that need it, saying how to get it.
Under ``CI=true`` it fails them instead: CI installs every tool first, so a missing one
there is a broken CI, not a reason to pass with less tested.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sandbox.realk8s.binaries import default_bin_dir


def missing(tool: str, hint: str) -> None:
    """Skip (or, under CI, fail) the calling test because ``tool`` is not installed."""
    reason = f"{tool} is not installed ({hint})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def kubectl() -> str:
    """The kubectl to run: the one on the PATH, else the pinned one `.ci/build-realk8s` built."""
    found = shutil.which("kubectl")
    if found:
        return found
    pinned = default_bin_dir() / "kubectl"
    if os.access(pinned, os.X_OK):
        return str(pinned)
    missing("kubectl", "bash .ci/build-realk8s builds the pinned one")
    raise AssertionError("unreachable")


def kubectl_dir() -> Path:
    return Path(kubectl()).parent
