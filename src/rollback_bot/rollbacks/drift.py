"""The approved plan is the executed plan: what a person saw is compared with the cluster now.

A form previews "from revision 4 (v2) to revision 3 (v1)"; if a hotfix lands before the
person submits, or before the approver clicks, the cluster no longer runs what they
decided about. The bot then asks again instead of acting on a decision nobody made.
What is compared is the running release (revision and image), not the resourceVersion:
status updates bump that every few seconds without changing what runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollback_bot.executors.base import Plan


@dataclass(frozen=True)
class Seen:
    """The running release a person saw when they decided."""

    revision: str | None
    image: str | None

    @classmethod
    def of_plan(cls, plan: Plan) -> Seen:
        return cls(_text(plan.from_revision), plan.from_image)

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "image": self.image}

    @classmethod
    def from_dict(cls, data: object) -> Seen | None:
        """None for anything that is not what ``to_dict`` wrote (older forms had nothing)."""
        if not isinstance(data, dict):
            return None
        revision, image = data.get("revision"), data.get("image")
        if not all(isinstance(v, str | None) for v in (revision, image)):
            return None
        return cls(revision, image)

    def describe(self) -> str:
        if self.revision and self.image:
            return f"revision {self.revision} ({self.image})"
        if self.revision:
            return f"revision {self.revision}"
        return self.image or "an unknown release"


def moved(seen: Seen, now: Plan) -> str | None:
    """How the running release changed since ``seen``, or None when it did not."""
    return changed(seen, Seen.of_plan(now))


def changed(seen: Seen, current: Seen) -> str | None:
    """How ``current`` differs from the release a person saw, or None when it does not."""
    if seen.revision is None and seen.image is None:
        return None  # nothing was shown to compare (flag and blue-green forms)
    if (seen.revision, seen.image) == (current.revision, current.image):
        return None
    return f"it ran {seen.describe()} when you decided, and runs {current.describe()} now"


def _text(revision: int | str | None) -> str | None:
    return None if revision is None else str(revision)
