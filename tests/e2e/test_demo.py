"""``rollback-bot demo`` as a newcomer runs it: a separate process, loopback only."""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import kubernetes
import requests

from sandbox.demo import run_demo

REPO = Path(__file__).resolve().parents[2]
# Generous: the demo takes seconds, but a loaded 2-core CI machine must not fail it.
DEMO_TIMEOUT = 120


def _env(tmp_path: Path) -> dict[str, str]:
    # The demo makes its directory under the temporary directory: keep it in tmp_path.
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "ROLLBACK_BOT_CATALOG"}}
    return {**env, "TMPDIR": str(tmp_path), "PYTHONIOENCODING": "utf-8"}


def _demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rollback_bot.cli", "demo", *args]


def test_demo_tells_the_whole_incident_and_ends_by_itself(tmp_path: Path) -> None:
    done = subprocess.run(
        _demo_command(),
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=DEMO_TIMEOUT,
    )

    out = done.stdout
    assert done.returncode == 0, done.stderr + out
    # The alert with its button, the request with Approve/Deny, both people.
    assert "FIRING · HighErrorRate · checkout (production)" in out
    assert "[⏪ Roll back checkout]" in out
    assert "[Approve] [Deny]" in out
    assert "Cannot approve R-1: you requested this rollback" in out
    # The rollback, in the bot's states and in the cluster.
    assert re.search(r"R-1: requested → approved → executing .* → verifying .* → done", out)
    assert "patch deployments shop/checkout" in out
    assert "revision 3, image registry.local/checkout:v1, 2/2 available" in out
    assert "rolled back to revision 1" in out
    # The alert card is edited in place and tells the result and what runs now.
    card = out[out.index("the alert card, edited in place, now reads:") :]
    assert "R-1 rolled back to revision 1 `registry.local/checkout:v1`" in card
    assert "Running now: revision 3 `registry.local/checkout:v1`" in card
    # The trace on the cluster: who did it and why, as kubectl rollout history shows it.
    assert re.search(
        r"3\s+rollback-bot R-1 \(INC-1\): .*requested by U0ALICE, approved by U0BOB", out
    )
    assert "RollbackStarted" in out and "RolledBack" in out
    # A second Roll back proposes no bad release: v2 is known bad, nothing is proposed.
    second = out[
        out.index("on the card again") : out.index("Alertmanager sends HighErrorRate resolved")
    ]
    assert "Rolls back to" not in second
    assert (
        "revision 2 `registry.local/checkout:v2`: known bad: rolled back from (R-1, INC-1)"
        in second
    )
    # Mitigated on evidence: the rollout alone did not mitigate it; the alert resolving did.
    assert "NOT marked mitigated" in out
    # The postmortem, printed and written.
    assert "# Postmortem INC-1: HighErrorRate on checkout" in out
    assert re.search(r"time to acknowledge \d+\.\d s, time to mitigate \d+\.\d s", out)
    written = list(tmp_path.glob("rollback-bot-demo-*/postmortem-INC-1.md"))
    assert len(written) == 1
    assert "| U0BOB | rollback.approved |" in written[0].read_text(encoding="utf-8")
    # The story only: the bot's logs and tracebacks go to bot.log.
    assert "Traceback" not in out + done.stderr
    assert "INFO" not in out + done.stderr
    assert "rollback-bot demo --keep" in out


def test_demo_keep_stays_up_until_interrupted(tmp_path: Path) -> None:
    process = subprocess.Popen(
        _demo_command("--keep"),
        cwd=REPO,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        lines = _lines_until(process, "Press Ctrl-C to stop.")
        text = "\n".join(lines)
        bot_url = re.search(r"^\s+bot\s+(http://127\.0\.0\.1:\d+)\s+\(", text, re.M)
        kubeconfig = re.search(r"^\s+kubeconfig\s+(\S+)$", text, re.M)
        assert bot_url and kubeconfig, text
        assert requests.get(f"{bot_url[1]}/healthz", timeout=10).status_code == 200

        # The printed kubeconfig reaches the still-running cluster (kubectl reads the same
        # file; tests/sandbox/test_kubectl.py covers kubectl against the emulator).
        api = kubernetes.config.new_client_from_config(config_file=kubeconfig[1])
        try:
            deployment = kubernetes.client.AppsV1Api(api).read_namespaced_deployment(
                "checkout", "shop"
            )
        finally:
            api.close()
        assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
        assert deployment.spec.template.spec.containers[0].image == "registry.local/checkout:v1"
        assert f"kubectl --kubeconfig {kubeconfig[1]} -n shop rollout history" in text

        # The printed driver commands reach the running bot as signed Slack requests.
        assert "$ python -m sandbox.slack send --user U0BOB '/rollback status'" in text
        assert "$ python -m sandbox.slack send --user U0ALICE '/rollback drill checkout'" in text
        status = _drive(tmp_path, "send", "--user", "U0BOB", "/rollback status")
        assert status.returncode == 0, status.stderr
        assert status.stdout.splitlines() == [
            "only you see:",
            "  | No active rollbacks.",
            "  | No open incidents.",  # the demo's incident resolved
        ]
        history = _drive(tmp_path, "send", "--user", "U0ALICE", "/rollback history checkout")
        assert history.returncode == 0, history.stderr
        assert "3 · `registry.local/checkout:v1`" in history.stdout, history.stdout
        drill = _drive(tmp_path, "send", "--user", "U0ALICE", "/rollback drill checkout")
        assert drill.returncode == 0, drill.stderr
        # The incident was mitigated: its card offers no Roll back any more, and says so.
        click = _drive(tmp_path, "click", "INC-1", "rollback", "--user", "U0ALICE")
        assert click.returncode == 2
        assert "no message shows a rollback button for INC-1" in click.stderr
        missing = _drive(tmp_path, "click", "R-9", "approve", "--user", "U0BOB")
        assert missing.returncode == 2
        assert "no message shows a approve button for R-9" in missing.stderr
        assert "Traceback" not in status.stderr + history.stderr + drill.stderr + click.stderr
        assert "Traceback" not in missing.stderr

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=DEMO_TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Stopping." in process.stdout.read()  # type: ignore[union-attr]
    try:
        requests.get(f"{bot_url[1]}/healthz", timeout=2)
        still_listening = True
    except requests.ConnectionError:
        still_listening = False
    assert not still_listening


def test_demo_fails_clearly_when_it_cannot_make_its_directory(tmp_path: Path) -> None:
    occupied = tmp_path / "demo"
    occupied.write_text("a file, not a directory")
    out, err = io.StringIO(), io.StringIO()

    assert run_demo(directory=occupied, out=out, err=err) == 1

    assert "rollback-bot demo: FAILED" in err.getvalue()
    assert str(occupied) in err.getvalue()


def _drive(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m sandbox.slack send|click`` as the demo prints it (state in TMPDIR)."""
    return subprocess.run(
        [sys.executable, "-m", "sandbox.slack", *args],
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=DEMO_TIMEOUT,
    )


def _lines_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    """Read stdout lines until ``marker``; fail with what was read if the demo stops first."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, ""):
            lines.put(line.rstrip("\n"))
            if line.strip() == marker:
                break
        else:
            lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=DEMO_TIMEOUT)
        except queue.Empty:
            raise AssertionError("demo printed nothing for too long:\n" + "\n".join(seen)) from None
        if line is None:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError("demo ended early:\n" + "\n".join(seen) + "\n" + stderr)
        seen.append(line)
        if line.strip() == marker:
            return seen
