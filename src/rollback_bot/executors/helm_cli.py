"""The real ``helm`` binary, run as a subprocess: the one seam the Helm executor acts through.

The binary is ``HELM_BIN`` (default ``helm`` on the PATH). The kubeconfig and context are
passed on the command line, never inherited by accident; the person a change is made for
is impersonated with ``--kube-as-user``/``--kube-as-group``, as the Kubernetes client
does. Output is captured and redacted; a failure is an ``ExecutionError`` whose message
says what helm said, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rollback_bot import redaction
from rollback_bot.kube.model import Actor, ExecutionError

Run = Callable[..., subprocess.CompletedProcess[str]]
_SAID = 600  # characters of helm's own words kept in a message


@dataclass(frozen=True)
class HelmRun:
    argv: tuple[str, ...]  # redacted, for the record
    stdout: str  # redacted
    stderr: str  # redacted


@dataclass
class HelmCli:
    binary: str = field(default_factory=lambda: os.environ.get("HELM_BIN") or "helm")
    kubeconfig: str | None = None
    context: str | None = None
    home: Path | None = None  # helm's cache/config/data dirs; default: a temp dir
    run: Run = subprocess.run

    def rollback(
        self,
        release: str,
        revision: int,
        *,
        namespace: str,
        timeout_seconds: int,
        wait: bool,
        dry_run: bool,
        actor: Actor | None = None,
    ) -> HelmRun:
        """``helm rollback <release> <revision> -n <namespace> [--wait] --timeout Ns``."""
        args = [
            "rollback",
            release,
            str(revision),
            f"--namespace={namespace}",
            f"--timeout={timeout_seconds}s",
        ]
        if wait:
            args.append("--wait")
        if dry_run:
            args.append("--dry-run")
        what = f"helm rollback {release} {revision} -n {namespace}" + (
            " --dry-run" if dry_run else ""
        )
        return self._helm(args, what=what, timeout=timeout_seconds + 60, actor=actor)

    def version(self) -> str:
        return self._helm(["version", "--short"], what="helm version", timeout=30).stdout.strip()

    # -- running --------------------------------------------------------------

    def _argv(self, args: Sequence[str], actor: Actor | None) -> list[str]:
        argv = [self.binary, *args]
        if self.kubeconfig:
            argv.append(f"--kubeconfig={self.kubeconfig}")
        if self.context:
            argv.append(f"--kube-context={self.context}")
        if actor is not None and actor.kube_user:
            argv.append(f"--kube-as-user={actor.kube_user}")
            argv += [f"--kube-as-group={g}" for g in actor.kube_groups]
        return argv

    def _env(self) -> dict[str, str]:
        home = self.home or Path(tempfile.gettempdir()) / "rollback-bot-helm"
        env = dict(os.environ)
        for var, sub in (
            ("HELM_CACHE_HOME", "cache"),
            ("HELM_CONFIG_HOME", "config"),
            ("HELM_DATA_HOME", "data"),
        ):
            env.setdefault(var, str(home / sub))
        return env

    def _helm(
        self, args: Sequence[str], *, what: str, timeout: int, actor: Actor | None = None
    ) -> HelmRun:
        argv = self._argv(args, actor)
        try:
            done = self.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self._env(),
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise ExecutionError(
                f"cannot run {what}: the helm binary {self.binary!r} was not found; "
                "install helm 3 or set HELM_BIN to its path"
            ) from None
        except PermissionError:
            raise ExecutionError(
                f"cannot run {what}: {self.binary!r} is not executable (HELM_BIN)"
            ) from None
        except subprocess.TimeoutExpired:
            raise ExecutionError(
                f"{what} did not finish within {timeout} s; the release may be left "
                "pending: check `helm history`",
                retryable=False,
            ) from None
        result = HelmRun(
            argv=tuple(redaction.redact_text(a) for a in argv),
            stdout=redaction.redact_text(done.stdout or ""),
            stderr=redaction.redact_text(done.stderr or ""),
        )
        if done.returncode != 0:
            said = _last_words(result.stderr or result.stdout)
            raise ExecutionError(f"{what} failed (exit {done.returncode}): {said}")
        return result


def _last_words(text: str) -> str:
    """helm's error, without the noise: its ``Error:`` line(s), clipped."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error:")]
    said = "; ".join(errors or lines[-3:]) or "no output"
    return said if len(said) <= _SAID else said[: _SAID - 1] + "…"
