"""Where the real control plane's binaries are, and which versions they must be.

The versions live in ``versions.env`` beside this file, the one place both
``.ci/build-realk8s`` (which sources it) and the launcher (which parses it) read them, so
the launcher always looks in the bin directory the build script fills.
"""

from __future__ import annotations

import os
from pathlib import Path

VERSIONS_FILE = Path(__file__).with_name("versions.env")
CACHE_ENV = "ROLLBACK_BOT_REALK8S_CACHE"
BIN_DIR_ENV = "ROLLBACK_BOT_REALK8S_BIN_DIR"
BUILD_SCRIPT = ".ci/build-realk8s"

# What the launcher runs; kubectl and helm are built alongside for tests and CI's PATH.
SERVER_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
ALL_BINARIES = (*SERVER_BINARIES, "kubectl", "helm")


class BinariesMissing(RuntimeError):
    """The binaries are not built: one line that says which and how to build them."""


def versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines (comments and blank lines skipped), as the shell reads them."""
    pinned: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"{path}: not a KEY=VALUE line: {raw!r}")
        pinned[key] = value.strip().strip("'\"")
    return pinned


def version_key(pinned: dict[str, str] | None = None) -> str:
    """The cache sub-directory for these versions; the same formula as .ci/build-realk8s."""
    v = pinned or versions()
    return (
        f"k8s-{v['KUBERNETES_VERSION']}_etcd-{v['ETCD_VERSION']}"
        f"_kwok-{v['KWOK_VERSION']}_helm-{v['HELM_VERSION']}"
    )


def default_bin_dir() -> Path:
    """``$ROLLBACK_BOT_REALK8S_BIN_DIR``, else the build script's cache directory."""
    explicit = os.environ.get(BIN_DIR_ENV)
    if explicit:
        return Path(explicit)
    cache = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache/rollback-bot/realk8s")
    return Path(cache) / version_key() / "bin"


def missing_binaries(bin_dir: Path, names: tuple[str, ...] = SERVER_BINARIES) -> list[str]:
    return [n for n in names if not os.access(bin_dir / n, os.X_OK)]


def require_binaries(bin_dir: Path, names: tuple[str, ...] = SERVER_BINARIES) -> Path:
    """Return ``bin_dir`` when every binary is there, else raise :class:`BinariesMissing`."""
    missing = missing_binaries(bin_dir, names)
    if missing:
        raise BinariesMissing(
            f"real control plane binaries missing in {bin_dir} ({', '.join(missing)}): "
            f"run {BUILD_SCRIPT} to build them (about 20 minutes cold, seconds when cached)"
        )
    return bin_dir
