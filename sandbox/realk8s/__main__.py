"""`python -m sandbox.realk8s --kubeconfig-out FILE`: run the real control plane as a process.

Prints ``LISTENING <apiserver port>`` on stdout once every component is ready, then serves
until SIGINT or SIGTERM and stops every process it started.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .binaries import BinariesMissing
from .control_plane import ControlPlaneError, RealControlPlane


class _Stop(Exception):
    """A signal arrived while the control plane was still starting."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.realk8s", description=__doc__)
    parser.add_argument(
        "--kubeconfig-out",
        help="write a kubeconfig here (contexts admin, rollback-bot, alice, mallory)",
    )
    parser.add_argument(
        "--bin-dir",
        help="directory with the built binaries (default: where .ci/build-realk8s puts them)",
    )
    parser.add_argument(
        "--work-dir", help="keep state and logs here instead of a temporary directory"
    )
    args = parser.parse_args(argv)

    done = threading.Event()
    starting = True

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        done.set()
        # A signal during start-up must still stop what already runs: unwind start().
        if starting:
            raise _Stop(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    plane = RealControlPlane(bin_dir=args.bin_dir, work_dir=args.work_dir, log=log)
    try:
        plane.start()
    except BinariesMissing as exc:
        print(f"sandbox.realk8s: {exc}", file=sys.stderr)
        return 2
    except ControlPlaneError as exc:
        print(f"sandbox.realk8s: {exc}", file=sys.stderr)
        return 1
    except _Stop:
        return 130
    starting = False
    try:
        if args.kubeconfig_out:
            plane.write_kubeconfig(Path(args.kubeconfig_out))
            log(f"kubeconfig: {args.kubeconfig_out}")
        print(f"LISTENING {plane.port}", flush=True)
        done.wait()
    finally:
        plane.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
