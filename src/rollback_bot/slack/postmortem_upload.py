"""What ``/rollback export`` uploads: the postmortem document and its picture as a PNG."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rollback_bot.ids import format_incident_id
from rollback_bot.incidents.queries import Queries

if TYPE_CHECKING:  # serve loads the postmortem modules on the first export, not at start
    from rollback_bot.incidents import postmortem


def postmortem_upload(
    queries: Queries, incident_id: int, fmt: str, *, names: postmortem.Names | None
) -> list[dict[str, Any]]:
    """``file_uploads`` for ``files_upload_v2``: the document first, then the PNG.

    Raises ``NotFound`` for an unknown incident."""
    from rollback_bot.incidents import postmortem, postmortem_picture

    name = format_incident_id(incident_id)
    pm = queries.postmortem_document(incident_id, names=names)
    content = "".join(postmortem.export(pm, fmt))
    picture = postmortem_picture.png(pm.marks, title=f"{name} {pm.head['incident']['service']}")
    return [
        {
            "content": content,
            "filename": f"postmortem-{name}.{fmt}",
            "title": f"Postmortem {name}",
        },
        {
            "content": picture,
            "filename": f"postmortem-{name}-timeline.png",
            "title": f"{name} on one time axis",
            "alt_txt": f"The timeline of {name}: alerts, acknowledgement, approvals, "
            "rollback steps, health checks, mitigation and resolution",
        },
    ]
