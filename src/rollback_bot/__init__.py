"""rollback-bot: a Slack chat-ops bot that coordinates Kubernetes rollbacks during incidents.

The package layout is the architecture: ``alerts`` and ``web`` take input, ``rollbacks`` and
``incidents`` decide, ``executors`` and ``kube`` act on the cluster, ``slack`` speaks,
``storage`` remembers, and ``app`` wires them together (see docs/architecture.md).
"""

__version__ = "0.1.0"
