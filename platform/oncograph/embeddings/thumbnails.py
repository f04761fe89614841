"""Thumbnails of embedded slides, for the patient page: rendered from the slide file the embedding was made
from, on the server, so no client ever learns (or names) a server path.

:func:`slide_thumbnail` finds the embedding by id, applies the caller's scope (an embedding of a patient the
scope may not see does not exist; an unattached one only exists for an unrestricted scope), opens the file
recorded in ``source_uri`` only when it is a local file of this server, and returns a PNG no larger than
``max_px`` on its longer side. How an embedding row is shown to clients (without server paths) is
:func:`oncograph.cohorts.patient_detail.public_embedding`.
"""

from __future__ import annotations

import io

from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.access import Scope
from oncograph.cohorts.patient_detail import local_source
from oncograph.cohorts.patients import visible_patient_ids
from oncograph.errors import NotFoundError, ValidationError

MAX_THUMBNAIL_PX = 1024


def slide_thumbnail(session: Session, embedding_id: int, scope: Scope, *, max_px: int = 512) -> bytes:
    """A PNG thumbnail of the slide behind embedding ``embedding_id``.

    Raises:
        NotFoundError: no such slide embedding for the scope, or its file is not on this server.
        ValidationError: ``max_px`` outside 16..1024, or the file no longer opens as a slide.
    """
    if not 16 <= max_px <= MAX_THUMBNAIL_PX:
        raise ValidationError(f"max_px must be in 16..{MAX_THUMBNAIL_PX}, got {max_px}", hint="e.g. 512")
    row = session.execute(
        text("SELECT patient_id, modality, source_uri FROM embedding WHERE id = :i"), {"i": embedding_id}
    ).first()
    missing = NotFoundError(
        f"no slide embedding {embedding_id}", hint="GET /patients/{id} lists a patient's embeddings"
    )
    if row is None or row.modality != "slide":
        raise missing
    if row.patient_id is None:
        if not scope.unrestricted:
            raise missing
    elif not visible_patient_ids(session.connection(), [row.patient_id], scope):
        raise missing
    path = local_source(row.source_uri)
    if path is None:
        raise NotFoundError(
            f"the slide of embedding {embedding_id} is not a file on this server",
            hint="thumbnails are rendered for slides embedded from this server's local files",
        )
    import numpy as np
    from PIL import Image

    from oncograph.embeddings.slides import open_slide, thumbnail_rgba

    slide, _ = open_slide(path, 1.0)  # the scale is not needed for a picture
    try:
        rgba = thumbnail_rgba(slide, max_px)
    finally:
        slide.close()
    image = Image.fromarray(np.asarray(rgba), "RGBA")
    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
    out = io.BytesIO()
    Image.alpha_composite(background, image).convert("RGB").save(out, format="PNG", optimize=True)
    return out.getvalue()


__all__ = ["MAX_THUMBNAIL_PX", "slide_thumbnail"]
