"""The FastAPI application factory. Building the app connects to nothing: the engine is made on first use.

Request bodies are bounded before they are read (:mod:`oncograph_api.limits`: 413), and the interactive docs
(``/docs``) are served from Swagger UI files installed with the app (package ``swagger-ui-bundle-v2``), so they
work on a machine without internet.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

import oncograph
from oncograph.settings import Settings, get_settings
from oncograph_api import errors
from oncograph_api.deps import ApiState, storable_parameters
from oncograph_api.limits import MAX_BODY_BYTES, BodyLimit
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
    slides,
    survival,
)
from oncograph_api.routers.cohorts import MAX_UPLOAD_BYTES

log = logging.getLogger(__name__)

DOCS_ASSETS = "/docs/assets"
"""Where the Swagger UI files are served."""

DESCRIPTION = """A patient-centric graph of NCI CRDC cancer data (GDC clinical and biospecimen records and
files, IDC imaging, PDC proteomics), with the lineage of every value.

**Authentication.** Every endpoint except `/health` needs an API key, as the `X-API-Key` header or as
`Authorization: Bearer <key>`. Roles: viewers read, curators also save and change cohorts, admins also see
every cohort. Reads are computed under your access scope: records of a controlled project are invisible
without a grant for it (they are not counted, listed or found: a request for one answers 404).

**Filters** use the GDC API's grammar, so a filter copied from the GDC portal works; GET /fields lists the
fields.

**Errors** are RFC 9457 problem documents (`application/problem+json`) with `type`, `title`, `status`,
`detail`, `instance`, and for invalid requests `errors`, each with the location of the problem.

**Limits.** A request body may hold at most 10 MiB (an id file upload 20 MiB: 413 beyond); a filter at most
1,000 nodes, 32 levels, 10,000 values in one leaf and 50,000 in all (422 beyond).

**Paging.** Listings take the GDC API's paging words too: `size` for `limit` and `from` (a zero-based offset,
up to 10,000) besides the cursors, so a script written for the GDC API pages here unchanged."""

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
    resolved = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = resolved.api_threads
        yield

    app = OncographAPI(
        lifespan=lifespan,
        title="oncograph",
        version=oncograph.__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        dependencies=[Depends(storable_parameters)],
        docs_url=None,
        redoc_url=None,
    )
    app.state.oncograph = ApiState(resolved, engine)
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
        slides,
        exports,
        provenance,
    ):
        app.include_router(module.router)
    _offline_docs(app)
    app.add_middleware(BodyLimit, default=MAX_BODY_BYTES, paths={"/cohorts/upload": MAX_UPLOAD_BYTES})
    return app


_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
_CDN = (
    "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js",
    "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css",
    "https://fastapi.tiangolo.com/img/favicon.png",
)


def _swagger_ui_dir() -> Path | None:
    try:
        import swagger_ui_bundle  # type: ignore[import-untyped]
    except ImportError:
        return None
    return Path(str(swagger_ui_bundle.swagger_ui_path))


def _offline_docs(app: FastAPI) -> None:
    """``/docs`` from the Swagger UI files of the ``swagger_ui_bundle`` package (FastAPI's default loads them
    from a CDN, a blank page offline); without the package, the CDN page with a warning in the log."""
    assets = _swagger_ui_dir()
    oauth2_redirect = "/docs/oauth2-redirect"
    if assets is not None:
        app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
        js, css, icon = (f"{DOCS_ASSETS}/{name}" for name in _ASSETS)
    else:
        log.warning("swagger_ui_bundle is not installed: /docs loads Swagger UI from a CDN")
        js, css, icon = _CDN

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            oauth2_redirect_url=oauth2_redirect,
            swagger_js_url=js,
            swagger_css_url=css,
            swagger_favicon_url=icon,
        )

    def redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_api_route(oauth2_redirect, redirect, methods=["GET"], include_in_schema=False)
