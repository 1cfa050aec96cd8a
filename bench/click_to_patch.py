"""How long from "Approve" to the Deployment patched, beside ``kubectl rollout undo``.

The promise is that the bot is faster than a person with kubectl, not slower:
once the second person approves, the patch must reach the API server in less
time than it takes kubectl just to start, discover and patch. Both run against
the same loopback Kubernetes emulator; ours is measured from the signed click
leaving the client to the moment the emulator stores the rolled-back template.

    python -m bench.click_to_patch [--runs 9]

Prints the medians and their ratio (the target is 0.5 or less).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rollback_bot.storage.models import Rollback
from sandbox.stack import LoopbackStack, deployment_manifest, wait_until

NS = "shop"
CHANNEL = "C0BENCH"
ALICE, BOB = "U0ALICE", "U0BOB"
CATALOG: dict[str, Any] = {
    "services": [
        {
            "name": "checkout",
            "namespace": NS,
            "deployment": "checkout",
            "environment": "production",
            "channel": CHANNEL,
            "match": {"service": "checkout"},
            "policy": {"requesters": {"users": [ALICE]}, "approvers": {"users": [BOB]}},
            "health": {"timeout_seconds": 30, "wait_seconds": 0},
        }
    ]
}


def _image(stack: LoopbackStack, name: str) -> str:
    dep = stack.kube.get("deployments", NS, name) or {}
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def _roll_forward(stack: LoopbackStack, name: str, version: int) -> tuple[str, str]:
    """A new healthy version; returns (previous image, new image)."""
    previous = _image(stack, name)
    image = f"registry.local/{name}:v{version}"
    stack.set_image(NS, name, image)
    stack.wait_available(NS, name, timeout=30)
    return previous, image


def _approval_button(stack: LoopbackStack, rollback_id: int) -> tuple[str, str]:
    from rollback_bot.slack.ui import action_ids
    from rollback_bot.slack.ui.values import read_button_value

    def find() -> tuple[str, str] | None:
        for message in reversed(stack.slack.messages(CHANNEL)):
            for block in message.get("blocks") or []:
                for element in block.get("elements", []) if block.get("type") == "actions" else []:
                    if element.get("action_id") != action_ids.APPROVE:
                        continue
                    ids = read_button_value(element["value"])
                    if int(ids.get("rollback_id", 0)) == rollback_id:
                        return message["ts"], element["value"]
        return None

    return wait_until(find, timeout=30)


def _request(stack: LoopbackStack) -> int:
    from sqlalchemy import func, select

    from rollback_bot.slack.ui import action_ids

    assert stack.services is not None
    seen = len(stack.slack.views)
    stack.driver.command("checkout", user_id=ALICE, channel_id=CHANNEL)
    update = wait_until(
        lambda: next((v for v in stack.slack.views[seen:] if v["op"] == "update"), None),
        timeout=30,
    )
    with stack.services.uow(read_only=True) as uow:
        before = uow.session.scalar(select(func.max(Rollback.id))) or 0
    stack.driver.submit_view(
        callback_id=action_ids.REQUEST_MODAL,
        user_id=ALICE,
        private_metadata=update["view"]["private_metadata"],
        values={action_ids.REASON_BLOCK: {action_ids.REASON_INPUT: "bench"}},
    )

    def created() -> int | None:
        with stack.services.uow(read_only=True) as uow:  # type: ignore[union-attr]
            latest = uow.session.scalar(select(func.max(Rollback.id))) or 0
        return latest if latest > before else None

    return int(wait_until(created, timeout=30))


def _state(stack: LoopbackStack, rollback_id: int) -> str:
    assert stack.services is not None
    with stack.services.uow(read_only=True) as uow:
        row = uow.rollbacks.get(id=rollback_id)
    return row.state if row else "?"


def _has_image(stack: LoopbackStack, name: str, image: str) -> Callable[[], bool]:
    return lambda: _image(stack, name) == image


def _is_done(stack: LoopbackStack, rollback_id: int) -> Callable[[], bool]:
    return lambda: _state(stack, rollback_id) == "done"


def ours(stack: LoopbackStack, runs: int) -> list[float]:
    from rollback_bot.slack.ui import action_ids

    stack.deploy(NS, deployment_manifest("checkout", "registry.local/checkout:v0"))
    stack.wait_available(NS, "checkout", timeout=30)
    times = []
    for run in range(runs):
        previous, _ = _roll_forward(stack, "checkout", run + 1)
        rollback_id = _request(stack)
        ts, value = _approval_button(stack, rollback_id)
        start = time.perf_counter()
        stack.driver.click(
            action_id=action_ids.APPROVE,
            value=value,
            user_id=BOB,
            channel_id=CHANNEL,
            message_ts=ts,
        )
        stack.kube.wait_for(_has_image(stack, "checkout", previous), timeout=30)
        times.append(time.perf_counter() - start)
        wait_until(_is_done(stack, rollback_id), timeout=60)
    return times


def kubectl(stack: LoopbackStack, runs: int, workdir: Path) -> list[float]:
    kubeconfig = stack.kube.write_kubeconfig(workdir / "kubeconfig")
    stack.deploy(NS, deployment_manifest("manual", "registry.local/manual:v0"))
    stack.wait_available(NS, "manual", timeout=30)
    times = []
    for run in range(runs):
        previous, _ = _roll_forward(stack, "manual", run + 1)
        command = [
            "kubectl", "--kubeconfig", kubeconfig, "--cache-dir", str(workdir / "cache"),
            "-n", NS, "rollout", "undo", "deployment/manual",
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        stack.kube.wait_for(_has_image(stack, "manual", previous), timeout=30)
        times.append(time.perf_counter() - start)
        stack.wait_available(NS, "manual", timeout=30)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir}/bench.db"
        with LoopbackStack(catalog=CATALOG, database_url=url, ready_delay=0.02) as stack:
            bot = ours(stack, args.runs)
            manual = kubectl(stack, args.runs, workdir)
    bot_ms = statistics.median(bot) * 1000
    manual_ms = statistics.median(manual) * 1000
    ratio = bot_ms / manual_ms
    print(f"approval click -> deployment patched (median of {args.runs}): {bot_ms:8.1f} ms")
    print(f"kubectl rollout undo process        (median of {args.runs}): {manual_ms:8.1f} ms")
    verdict = "meets" if ratio <= 0.5 else "misses"
    print(f"ratio ours/kubectl: {ratio:.2f} ({verdict} the target of 0.50 or less)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
