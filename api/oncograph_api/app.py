"""The FastAPI application factory. Building the app connects to nothing: the engine is made on first use."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from sqlalchemy import Engine

import oncograph
from oncograph.settings import Settings, get_settings
from oncograph_api import errors
from oncograph_api.deps import ApiState, storable_parameters
from oncograph_api.routers import (
    cohorts,
    exports,
    facets,
    fields,
    health,
    patients,
    projects,
    provenance,
    similar,
    survival,
)

DESCRIPTION = """A patient-centric graph of NCI CRDC cancer data (GDC clinical and biospecimen records and
files, IDC imaging, PDC proteomics), with the lineage of every value.

**Authentication.** Every endpoint except `/health` needs an API key, as the `X-API-Key` header or as
`Authorization: Bearer <key>`. Roles: viewers read, curators also save and change cohorts, admins also see
every cohort. Reads are computed under your access scope: records of a controlled project are invisible
without a grant for it (they are not counted, listed or found: a request for one answers 404).

**Filters** use the GDC API's grammar, so a filter copied from the GDC portal works; GET /fields lists the
fields.

**Errors** are RFC 9457 problem documents (`application/problem+json`) with `type`, `title`, `status`,
`detail`, `instance`, and for invalid requests `errors`, each with the location of the problem."""

TAGS = [
    {"name": "patients", "description": "Projects, patient listings and one patient's whole graph."},
    {"name": "cohort building", "description": "Fields, facet counts and the modality matrix of a filter."},
    {"name": "cohorts", "description": "Saved, versioned cohorts: create, share, refresh, diff, combine."},
    {"name": "cohort analysis", "description": "Survival curves and similar patients within a cohort."},
    {"name": "exports", "description": "ML-ready dataset exports of cohorts: asynchronous jobs, manifests."},
    {"name": "provenance", "description": "Runs and the lineage of any record."},
    {"name": "service", "description": "Health."},
]


class OncographAPI(FastAPI):
    """FastAPI whose OpenAPI document gives error responses the problem+json media type."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = errors.problem_media_types(super().openapi())
        return self.openapi_schema


def create_app(engine: Engine | None = None, settings: Settings | None = None) -> FastAPI:
    """The API app.

    Args:
        engine: the database to serve; default: the one the settings name (made on the first request).
        settings: default: :func:`oncograph.settings.get_settings` (the environment).
    """
    app = OncographAPI(
        title="oncograph",
        version=oncograph.__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        dependencies=[Depends(storable_parameters)],
    )
    app.state.oncograph = ApiState(settings or get_settings(), engine)
    errors.install(app)
    for module in (
        health,
        fields,
        projects,
        patients,
        facets,
        cohorts,
        survival,
        similar,
        exports,
        provenance,
    ):
        app.include_router(module.router)
    return app
