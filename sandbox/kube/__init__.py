"""A loopback Kubernetes API emulator that kubectl and the official client can drive.

See sandbox/README.md for what it implements and what it does not.
"""

from .auth import Policy
from .emulator import KubeEmulator

__all__ = ["KubeEmulator", "Policy"]
