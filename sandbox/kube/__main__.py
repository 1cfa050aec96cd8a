"""`python -m sandbox.kube --port 0`: run the emulator as a process for demos and scripts."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .emulator import KubeEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.kube", description=__doc__)
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 picks a free one)"
    )
    parser.add_argument("--kubeconfig-out", help="write a kubeconfig pointing at the emulator here")
    parser.add_argument(
        "--namespace", default="default", help="namespace of the written kubeconfig context"
    )
    parser.add_argument(
        "--state", help="YAML file to load objects from at start and save to at exit"
    )
    parser.add_argument(
        "--ready-delay", type=float, default=0.3, help="seconds until a new pod is ready"
    )
    args = parser.parse_args(argv)

    # Handlers first: a parent that reads LISTENING may signal at once, and a SIGTERM
    # before the handler exists would kill the process without saving --state.
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    emulator = KubeEmulator(ready_delay=args.ready_delay, state_file=args.state)
    emulator.start(port=args.port)
    if args.kubeconfig_out:
        emulator.write_kubeconfig(args.kubeconfig_out, namespace=args.namespace)
    print(f"LISTENING {emulator.port}", flush=True)
    done.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
