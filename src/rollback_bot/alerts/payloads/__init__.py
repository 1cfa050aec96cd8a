"""What each sender posts, as pydantic models, and how it becomes ``Alert`` values.

Parsing is pure: no I/O and no clock reads unless the caller leaves out ``received_at``.
A broken payload raises ``AlertPayloadError`` naming the field path and nothing else.
The models are liberal where real senders differ (``endsAt`` missing or Go's zero time
for "unset", ``Z`` or numeric offsets, nanosecond fractions, numbers as label values)
and strict where meaning would be lost (an alert with no name, an unknown status, a
timestamp with no timezone, a value that is not a number).
"""

from rollback_bot.alerts.payloads.alertmanager import parse_alertmanager
from rollback_bot.alerts.payloads.generic import parse_generic
from rollback_bot.alerts.payloads.grafana import parse_grafana

__all__ = ["parse_alertmanager", "parse_generic", "parse_grafana"]
