"""The real Kubernetes control plane as a pytest fixture.

``real_control_plane`` (session scope) starts etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok once per test session from the binaries ``.ci/build-realk8s`` built
(see ``sandbox/realk8s``), and stops them all at the end. Use it from a test package by
importing it into that package's ``conftest.py``::

    from tests.support.realk8s import real_control_plane  # noqa: F401

Missing binaries skip the tests that need them on a developer's machine, with the build
command in the reason; under ``CI=true`` they fail instead, because CI builds them first and
a silent skip there would hide that the real-cluster tests never ran.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.realk8s import RealControlPlane, default_bin_dir, missing_binaries
from sandbox.realk8s.binaries import BUILD_SCRIPT, SERVER_BINARIES

log = logging.getLogger("tests.realk8s")

# The tests drive the cluster with the kubectl pinned to the server's version, not whatever
# kubectl the machine has, and with the helm built beside it.
REQUIRED = (*SERVER_BINARIES, "kubectl", "helm")


def _say(config: pytest.Config, message: str) -> None:
    """Log, and show on the terminal even with output captured: start-up time is worth
    seeing in every run, not only in failed ones."""
    log.info(message)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line(f"[realk8s] {message}")


def require_binaries() -> Path:
    """The bin directory, or skip (fail under ``CI=true``) when binaries are missing."""
    bin_dir = default_bin_dir()
    missing = missing_binaries(bin_dir, REQUIRED)
    if missing:
        reason = (
            f"real control plane binaries missing in {bin_dir} ({', '.join(missing)}); "
            f"build them with {BUILD_SCRIPT}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return bin_dir


@pytest.fixture(scope="session")
def real_control_plane(request: pytest.FixtureRequest) -> Iterator[RealControlPlane]:
    bin_dir = require_binaries()
    plane = RealControlPlane(bin_dir=bin_dir, log=lambda m: _say(request.config, m))
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
        _say(request.config, "real control plane stopped")


def unique_name(prefix: str) -> str:
    """A DNS-1123 name no other test in the session uses (they share one cluster)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
