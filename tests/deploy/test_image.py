"""The container image: the Dockerfile's promises, and the image .ci/build-image built.

The build itself (mmdebstrap'ed Debian base, `podman build --isolation chroot`, smoke tests
as build-time RUN steps) is CI's `.ci/build-image` step. Here: what the Dockerfile says, and,
when podman and the built image are on this machine (always under ``CI=true``, where the
build ran first), what the image holds, read from its mounted file system (`podman run` does
not work on this machine).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART, ROOT
from tests.support import tools

DOCKERFILE = ROOT / "Dockerfile"
VERSION = re.search(r'^version = "(.*)"$', (ROOT / "pyproject.toml").read_text(), re.M)
IMAGE = os.environ.get("ROLLBACK_BOT_IMAGE") or f"localhost/rollback-bot:{VERSION and VERSION[1]}"


def stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), one list per stage."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append([])
        if out:
            out[-1].append(line)
    return out


def test_dockerfile_is_multi_stage_and_the_final_stage_is_lean_and_non_root() -> None:
    build, final = stages()
    assert build[0].endswith("AS build")
    assert "python3 -m venv" in " ".join(build)
    joined = "\n".join(final)
    # Only the venv comes from the build stage; no package manager runs in the final one.
    assert "COPY --from=build /opt/rollback-bot /opt/rollback-bot" in joined
    assert "apt-get" not in joined.replace("for tool in pip pip3 apt-get", "")
    assert "pip install" not in joined
    user = next(i for i in final if i.startswith("USER "))
    uid = user.split()[1].split(":")[0]
    assert uid != "0" and uid != "root"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert 'ENTRYPOINT ["rollback-bot"]' in final
    assert 'CMD ["serve"]' in final
    health = next(i for i in final if i.startswith("HEALTHCHECK"))
    assert "/healthz" in health
    smoke = " ".join(i for i in final if i.startswith("RUN rollback-bot --version"))
    assert "rollback-bot check-config /etc/rollback-bot/catalog.yaml" in smoke


def podman() -> str:
    found = shutil.which("podman")
    if not found:
        tools.missing("podman", "apt-get install podman mmdebstrap; then bash .ci/build-image")
    assert found
    return found


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    exe = podman()
    done = subprocess.run(
        [exe, "image", "inspect", IMAGE], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tools.missing(f"the image {IMAGE}", "bash .ci/build-image builds it")
    (info,) = json.loads(done.stdout)
    return dict(info)


@pytest.fixture(scope="module")
def rootfs(built: dict[str, Any]) -> Iterator[Path]:
    exe = podman()
    mounted = subprocess.run(
        [exe, "image", "mount", IMAGE], capture_output=True, text=True, check=True
    )
    try:
        yield Path(mounted.stdout.strip())
    finally:
        subprocess.run([exe, "image", "unmount", IMAGE], capture_output=True, check=False)


def test_built_image_runs_serve_as_non_root_with_a_healthcheck(built: dict[str, Any]) -> None:
    config = built["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["rollback-bot"]
    assert config["Cmd"] == ["serve"]
    assert "/healthz" in " ".join(built["Healthcheck"]["Test"])
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["ROLLBACK_BOT_CATALOG"] == "/etc/rollback-bot/catalog.yaml"
    assert env["PATH"].startswith("/opt/rollback-bot/bin:")


def test_built_image_holds_the_bot_and_no_build_tools(rootfs: Path) -> None:
    venv = rootfs / "opt" / "rollback-bot"
    assert (venv / "bin" / "rollback-bot").exists()
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert (site / "rollback_bot" / "storage" / "migrations").is_dir()
    assert (site / "psycopg").is_dir(), "PostgreSQL driver (the chart's default database)"
    assert not (site / "pip").exists() and not (venv / "bin" / "pip").exists()
    # Compiled at build time: the pod's root file system is read-only.
    assert list((site / "kubernetes" / "client" / "__pycache__").glob("*.cpython-311.pyc"))
    assert list((site / "rollback_bot" / "__pycache__").glob("*.cpython-311.pyc"))
    for tool in ("apt-get", "gcc", "cc", "make", "pip3"):
        assert not (rootfs / "usr" / "bin" / tool).exists(), tool
    # Debian's own Python (bookworm: 3.11), the one the venv links to.
    assert (rootfs / "usr" / "bin" / "python3.11").exists()
    assert "bookworm" in (rootfs / "etc" / "os-release").read_text()
    passwd = (rootfs / "etc" / "passwd").read_text()
    assert "rollback-bot:x:10001:10001:" in passwd
