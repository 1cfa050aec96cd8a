"""Child processes of the benches read compiled bytecode, as an installed package does.

``pip install`` compiles a package's modules when it installs them; a checkout run with
``PYTHONDONTWRITEBYTECODE=1`` (this machine's environment) compiles every module of ours
from source in every process instead, about 0.1-0.2 s of a read command's start-up, which
no deployment pays. So the benches compile ``src/rollback_bot`` once into a cache of
their own (``PYTHONPYCACHEPREFIX``, a temporary directory: nothing is written into the
checkout) and start their processes with it; ``--no-bytecode`` measures the other way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child_env(base: dict[str, str], cache_dir: Path | None) -> dict[str, str]:
    """``base`` for child processes: with a compiled cache in ``cache_dir`` (None: as is)."""
    env = dict(base)
    if cache_dir is None:
        return env
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "src" / "rollback_bot")],
        env=env,
        check=True,
    )
    return env


def describe(cache_dir: Path | None) -> str:
    if cache_dir is None:
        dont = os.environ.get("PYTHONDONTWRITEBYTECODE")
        return f"bytecode: as the environment has it (PYTHONDONTWRITEBYTECODE={dont or 'unset'})"
    return "bytecode: src/rollback_bot compiled once, as an installed package is"
