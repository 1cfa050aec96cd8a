"""A real Kubernetes control plane on loopback, built from Go modules by .ci/build-realk8s.

See README.md beside this file; ``python -m sandbox.realk8s --kubeconfig-out FILE`` runs it
as a process.
"""

from .binaries import BinariesMissing, default_bin_dir, missing_binaries, versions
from .control_plane import (
    ADMIN,
    ALICE,
    CRASH_ANNOTATION,
    CRASH_IMAGE_MARKER,
    MALLORY,
    NODE_NAME,
    ROLLBACK_BOT,
    TEST_NAMESPACE,
    USERS,
    ControlPlaneError,
    Identity,
    RealControlPlane,
    iter_audit,
    wait_until,
)

__all__ = [
    "ADMIN",
    "ALICE",
    "CRASH_ANNOTATION",
    "CRASH_IMAGE_MARKER",
    "MALLORY",
    "NODE_NAME",
    "ROLLBACK_BOT",
    "TEST_NAMESPACE",
    "USERS",
    "BinariesMissing",
    "ControlPlaneError",
    "Identity",
    "RealControlPlane",
    "default_bin_dir",
    "iter_audit",
    "missing_binaries",
    "versions",
    "wait_until",
]
