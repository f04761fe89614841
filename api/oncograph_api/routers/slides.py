"""``GET /embeddings/{id}/thumbnail``: a PNG of an embedded slide, rendered on the server (the patient page
shows it; no server path ever reaches a client)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from oncograph.embeddings.thumbnails import MAX_THUMBNAIL_PX, slide_thumbnail
from oncograph_api.deps import CallerDep, SessionDep
from oncograph_api.errors import parameter, problem_responses
from oncograph_api.schemas import PG_BIGINT_MAX

router = APIRouter(tags=["patients"])


@router.get(
    "/embeddings/{embedding_id}/thumbnail",
    summary="Thumbnail of an embedded slide",
    description="A PNG thumbnail (longer side `max_px`) of the slide a slide embedding was made from, when the "
    "slide is a local file of this server (the patient detail's embeddings say `thumbnail: true`). 404 for an "
    "embedding of a patient you may not see.",
    responses={200: {"content": {"image/png": {}}}, **problem_responses(401, 404, 422)},
    response_class=Response,
)
def thumbnail(
    embedding_id: Annotated[int, Path(ge=1, le=PG_BIGINT_MAX, description="Embedding id.")],
    caller: CallerDep,
    session: SessionDep,
    max_px: Annotated[int, Query(ge=16, le=MAX_THUMBNAIL_PX, description="Longer side in pixels.")] = 512,
) -> Response:
    with parameter("path.embedding_id"):
        png = slide_thumbnail(session, embedding_id, caller.scope, max_px=max_px)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})
