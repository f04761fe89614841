"""The whole API against its own OpenAPI document: schemathesis calls every operation in-process (ASGI) with
generated requests, valid and invalid, and checks each response.

- ``test_api_conforms_to_its_openapi``: every operation, as a curator with a grant for every project (so the
  write endpoints run and nothing is hidden), through the examples, coverage and fuzzing phases, positive and
  negative data.
- ``test_without_a_key_every_operation_answers_401``: every operation without a key: a documented 401 problem
  document (``/health`` needs no key).

Checks: no 5xx, documented status codes, content types and headers, the response schema of each status, invalid
requests refused with a 4xx, valid ones accepted (where the schema can say what is valid, see
``SEMANTIC_INPUTS``), 405 with a correct ``Allow`` for undeclared methods, and no operation served without a
key. Both run on this module's private copy of the sample graph (``api_db``): the cohorts that the fuzzer
creates, shares, refreshes and deletes live there only.

The curator's requests often name cohorts that exist (the ``flatmap_*`` hooks swap a generated valid id for one
the ``curator`` fixture saved), so the success responses of the cohort endpoints are checked too, not only their
404s.

Bounded and reproducible: a fixed seed, at most ``MAX_EXAMPLES`` generated requests per operation in the fuzzing
phase (plus the schema's examples and the coverage phase's boundary and invalid cases; about 1,500 requests in
all), no example database.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from api.harness import ApiDb
from fastapi import FastAPI

from oncograph.db import transaction
from oncograph.embeddings import EmbeddingRow, store_embeddings
from oncograph.settings import Settings
from oncograph_api.app import create_app
from oncograph_api.schemas import PG_BIGINT_MAX, PG_INT_MAX

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20250101
MAX_EXAMPLES = 20

CHECKS: dict[str, Any] = {
    name: {"enabled": True}
    for name in (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "missing_required_header",
        "ignored_auth",
        "unsupported_method",
        "allow_header_conformance",
    )
}
# Not run: `use_after_free`, `ensure_resource_availability` and `object_level_authorization` need stateful
# sequences of calls (links between operations), which this test does not make; `max_response_time` is
# machine-dependent.

SEMANTIC_INPUTS = {
    "GET /patients": "`filters` is JSON text in the GDC grammar; `cursor` is an opaque token of a previous page",
    "POST /facets": "`filters` follows the GDC grammar and `facets` names fields of GET /fields",
    "POST /cohorts": "`filters` follows the GDC grammar, and exactly one of `filters` and `ids` is given",
    "POST /cohorts/upload": "the body must be an id file (text, TSV/CSV with an id column, or JSON)",
    "GET /cohorts/{cohort_id}/survival": "`group_by` names a categorical field of GET /fields",
    "POST /survival": "`filters` follows the GDC grammar and `group_by` names a categorical field of GET /fields",
    "POST /cohorts/{cohort_id}/exports": "`ratios` add up to 1 and `split_by` names fields of the export schema",
}
"""Operations whose validity the JSON schema cannot express (a filter grammar, a field registry, opaque cursors,
file formats): a schema-valid request may rightly answer 422, so `positive_data_acceptance` is off for them
(invalid requests are still checked to be refused)."""

SHADOWED_PATHS = {
    "POST /cohorts/upload": "GET and DELETE /cohorts/upload are GET and DELETE /cohorts/{cohort_id}",
    "POST /cohorts/set-operations": "GET and DELETE /cohorts/set-operations are /cohorts/{cohort_id}",
}
"""POST-only literal paths that the `/cohorts/{cohort_id}` routes also match: an undeclared GET or DELETE there
is routed to those operations and answers their 422 (``cohort_id`` is not an integer), not 405; so
`unsupported_method` is off for them (OPTIONS still gets a 405 naming only POST, see `allow_header_conformance`)."""


def _config(max_examples: int, *, authenticated: bool) -> schemathesis.Config:
    operations: list[dict[str, Any]] = []
    if authenticated:
        operations += [
            {"include-name": name, "checks": {"positive_data_acceptance": {"enabled": False}}}
            for name in SEMANTIC_INPUTS
        ]
        operations += [
            {"include-name": name, "checks": {"unsupported_method": {"enabled": False}}}
            for name in SHADOWED_PATHS
        ]
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # Hypothesis' health checks judge the generation (slow or much-filtered data for free-form filter
            # objects), not the API; the bound is max-examples
            "suppress-health-check": ["all"],
            "generation": {
                "max-examples": max_examples,
                "database": "none",
                "mode": "all" if authenticated else "positive",
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": authenticated},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "checks": CHECKS
            if authenticated
            else {
                **CHECKS,
                # without a key every request is refused: nothing to accept, and no key to leave out
                "positive_data_acceptance": {"enabled": False},
                "ignored_auth": {"enabled": False},
            },
            "operations": operations,
        }
    )


class _Target:
    """An ASGI app that forwards to the app under test, which the ``target`` fixture sets on this module's
    database.

    The schemas are loaded at import (so that each operation is a test of its own) from the OpenAPI document of
    an app without a database: building the app connects to nothing, and ``/openapi.json`` needs none.
    (``schemathesis.pytest.from_fixture`` would load them from a fixture, but fails under pytest 9.2.)
    """

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/openapi.json":
            await SCHEMA_APP(scope, receive, send)
            return
        if self.app is None:
            raise RuntimeError("the app under test is set by the `target` fixture")
        await self.app(scope, receive, send)


SCHEMA_APP = create_app(settings=Settings(database_url=None))
TARGET = _Target()
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", TARGET, config=_config(MAX_EXAMPLES, authenticated=True)
)
keyless = schemathesis.openapi.from_asgi("/openapi.json", TARGET, config=_config(3, authenticated=False))


COHORTS: dict[str, list[int]] = {"kept": [], "disposable": []}
"""Cohorts that the ``curator`` fixture saves: the fuzzer's cohort ids are often replaced by one of them, so that
the cohort endpoints answer 200 too, not only 404 (DELETE gets the disposable ones)."""


def _valid_id(value: Any, maximum: int = PG_BIGINT_MAX) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= maximum


@schema.hook
def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any] | None) -> Any:
    value = (path_parameters or {}).get("cohort_id")
    operation = context.operation
    # only a valid id is replaced (by another valid one): a negative case's invalid id stays invalid
    if operation is None or path_parameters is None or not _valid_id(value):
        return st.just(path_parameters)
    if operation.method.upper() == "DELETE":
        # never one of the kept cohorts, whatever the fuzzer drew
        disposable = COHORTS["disposable"]
        choices = disposable if value in COHORTS["kept"] else [value, *disposable]
    else:
        choices = [value, *COHORTS["kept"]]
    return st.sampled_from([{**path_parameters, "cohort_id": c} for c in choices])


@schema.hook
def flatmap_query(context: schemathesis.HookContext, query: dict[str, Any] | None) -> Any:
    """Also ask for what the kept cohorts have: version 1 (diff), a patient with embeddings of model ``uni``
    (similar); only when the replaced values were valid, so that a negative case stays negative."""
    operation = context.operation
    if operation is None or query is None:
        return st.just(query)
    if operation.path.endswith("/diff") and _valid_id(query.get("from"), PG_INT_MAX):
        also = {k: v for k, v in query.items() if k != "to" or not _valid_id(v, PG_INT_MAX)} | {"from": 1}
    elif operation.path.endswith("/similar") and all(
        isinstance(query.get(k), str) for k in ("patient", "model")
    ):
        also = {**query, "patient": "TCGA-BH-A0EA", "model": "uni"}
    else:
        return st.just(query)
    return st.sampled_from([query, also])


@pytest.fixture(scope="module", autouse=True)
def target(api_db: ApiDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # exports the fuzzer starts are written under a temporary root, never under ~/.oncograph
    settings = Settings(
        database_url=api_db.url, min_cell_count=0, export_root=str(tmp_path_factory.mktemp("exports"))
    )
    TARGET.app = create_app(api_db.engine, settings)
    yield
    TARGET.app = None


@pytest.fixture(scope="module")
def curator(api_db: ApiDb) -> Iterator[dict[str, str]]:
    projects = [r.project_id for r in api_db.rows("SELECT project_id FROM project ORDER BY project_id")]
    headers = api_db.user("fuzz-curator", "curator", grants=projects)
    client = api_db.client()
    barcodes = [
        r.submitter_id
        for r in api_db.rows(
            "SELECT submitter_id FROM patient WHERE retired_release_id IS NULL ORDER BY submitter_id LIMIT 12"
        )
    ]

    def save(body: dict[str, Any], path: str = "/cohorts") -> int:
        response = client.post(path, headers=headers, json=body)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    # the disposable ones first: they get the small ids, which the examples and the fuzzer draw most
    COHORTS["disposable"] = [save({"name": f"scratch {i}", "ids": barcodes[i : i + 2]}) for i in range(8)]
    chol = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL"]}}
    kept = [
        save({"name": "chol", "filters": chol}),
        save({"name": "picked", "ids": barcodes[:6], "shared": True}),
        save({"name": "everyone", "filters": {}}),
    ]
    kept.append(save({"op": "union", "cohorts": kept[:2], "name": "chol+picked"}, "/cohorts/set-operations"))
    COHORTS["kept"] = kept
    # embeddings of model `uni` (the example of GET /cohorts/{id}/similar) for the example patient and others
    rows = api_db.rows(
        "SELECT id, case_id::text AS case_id FROM patient WHERE submitter_id = ANY(:b)",
        b=[*barcodes, "TCGA-BH-A0EA"],
    )
    with transaction(api_db.sessions) as s:
        store_embeddings(
            s,
            [
                EmbeddingRow(
                    r.id, "patient", r.case_id, "clinical_text", "uni", "1", [1.0, i % 3, i % 5, 1.0]
                )
                for i, r in enumerate(rows)
            ],
        )
    yield headers
    COHORTS["kept"], COHORTS["disposable"] = [], []


@schema.parametrize()
def test_api_conforms_to_its_openapi(case: schemathesis.Case[Any], curator: dict[str, str]) -> None:
    case.call_and_validate(headers=curator)


@keyless.parametrize()
def test_without_a_key_every_operation_answers_401(case: schemathesis.Case[Any]) -> None:
    response = case.call_and_validate()
    if case.operation.label == "GET /health":
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 401, response.text
    assert response.headers["content-type"][0].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == ['Bearer realm="oncograph"']
    body = response.json()
    assert body["status"] == 401 and body["type"] == "urn:oncograph:problem:unauthenticated", body
