"""The one typed client through which the UI reaches oncograph: the REST API over HTTP, never the database.

Every call returns the API's JSON (typed below where pages rely on its shape) or raises :class:`ApiError`,
whose ``str()`` is a sentence a researcher can act on (the API's problem ``detail`` and ``hint``; a refused
connection names the URL and how to start the API). The key goes in the ``X-API-Key`` header and lives only in
the Streamlit session (or the UI process's environment), never in the browser.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypedDict, cast

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 30.0


class ApiError(Exception):
    """An API call that did not succeed: ``status`` (0: no answer), ``title`` and a readable message."""

    def __init__(self, status: int, title: str, detail: str, hint: str | None = None) -> None:
        self.status, self.title, self.detail, self.hint = status, title, detail, hint
        super().__init__(f"{detail} ({hint})" if hint else detail)


class FieldInfo(TypedDict):
    field: str
    type: str
    facet: str
    nested: bool
    description: str
    values: list[Any] | None
    identifier: bool
    unit: str | None


class Bucket(TypedDict, total=False):
    key: Any
    count: int | str
    # histogram buckets
    to: float


class Facet(TypedDict, total=False):
    field: str
    type: str
    buckets: list[dict[str, Any]]
    missing: int | str
    other_values: int | str
    interval: float | None
    stats: dict[str, Any]


class ModalityMatrix(TypedDict):
    total: int | str
    modalities: dict[str, int | str]
    combinations: list[dict[str, Any]]


class Facets(TypedDict):
    total: int | str
    facets: list[Facet]
    modality_matrix: ModalityMatrix | None


class Cohort(TypedDict):
    id: int
    name: str
    description: str | None
    owner: str
    kind: str
    definition: dict[str, Any]
    shared: bool
    created_at: str
    deleted: bool
    versions: int
    latest: dict[str, Any]
    size: int
    member_hash: str
    releases: list[Any]


class Export(TypedDict):
    id: int
    cohort_id: int
    cohort_version: int
    destination: str
    status: str
    attempts: int
    progress: dict[str, Any]
    error: str | None
    options: dict[str, Any]
    created_at: str
    finished_at: str | None
    manifest: dict[str, Any] | None


class Run(TypedDict):
    id: int
    transform: str
    code_version: str
    status: str
    parameters: dict[str, Any]
    counts: dict[str, Any]
    error: str | None
    started_at: str
    finished_at: str | None
    prefect_flow_run_id: str | None
    source_release: str | None


def _problem(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = str(body.get("detail") or response.reason_phrase or "the API refused the request")
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, dict) and first.get("msg"):
            where = f" at {first['loc']}" if first.get("loc") else ""
            detail = f"{detail}: {first['msg']}{where}"
    hint = body.get("hint")
    if response.status_code == 401 and not hint:
        hint = "log in with a valid API key"
    return ApiError(response.status_code, str(body.get("title") or response.status_code), detail, hint)


class ApiClient:
    """oncograph's REST API for one key. Methods mirror the endpoints; all raise :class:`ApiError`."""

    def __init__(self, base_url: str, key: str | None, *, timeout: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"X-API-Key": key} if key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ----------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiError(
                0, "timeout", f"the API at {self.base_url} did not answer in time ({exc.__class__.__name__})",
                "try again; a large cohort or export may take longer",
            ) from exc  # fmt: skip
        except httpx.HTTPError as exc:
            raise ApiError(
                0, "unreachable", f"cannot reach the oncograph API at {self.base_url}: {exc}",
                "start it with `oncograph serve`, or set ONCOGRAPH_API_URL to where it runs",
            ) from exc  # fmt: skip
        if response.status_code >= 400:
            raise _problem(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    # -- service ------------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._json("GET", "/health"))

    def fields(self) -> list[FieldInfo]:
        return cast(list[FieldInfo], self._json("GET", "/fields")["data"])

    def projects(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._json("GET", "/projects")["data"])

    # -- building -----------------------------------------------------------------------------------------

    def facets(
        self,
        filters: dict[str, Any] | None,
        fields: Sequence[str],
        *,
        modality_matrix: bool = False,
        size: int = 50,
        bins: int = 10,
        intervals: dict[str, float] | None = None,
    ) -> Facets:
        body: dict[str, Any] = {
            "filters": filters, "facets": list(fields), "modality_matrix": modality_matrix, "size": size,
            "bins": bins,
        }  # fmt: skip
        if intervals:
            body["intervals"] = intervals
        return cast(Facets, self._json("POST", "/facets", json=body))

    def survival(
        self, filters: dict[str, Any] | None, group_by: str | None = None, max_groups: int = 6
    ) -> dict[str, Any]:
        body = {"filters": filters, "group_by": group_by, "max_groups": max_groups}
        return cast(dict[str, Any], self._json("POST", "/survival", json=body))

    def patients(self, filters: dict[str, Any] | None, *, limit: int = 25) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if filters:
            params["filters"] = json.dumps(filters)
        return cast(dict[str, Any], self._json("GET", "/patients", params=params))

    # -- cohorts ------------------------------------------------------------------------------------------

    def cohorts(self) -> list[Cohort]:
        return cast(list[Cohort], self._json("GET", "/cohorts")["data"])

    def cohort(self, cohort_id: int) -> Cohort:
        return cast(Cohort, self._json("GET", f"/cohorts/{int(cohort_id)}"))

    def create_cohort(
        self,
        name: str,
        *,
        description: str | None = None,
        filters: dict[str, Any] | None = None,
        ids: Sequence[str] | None = None,
    ) -> Cohort:
        body: dict[str, Any] = {"name": name, "description": description or None}
        if ids is not None:
            body["ids"] = list(ids)
        else:
            body["filters"] = filters
        return cast(Cohort, self._json("POST", "/cohorts", json=body))

    def refresh(self, cohort_id: int) -> dict[str, Any]:
        return cast(dict[str, Any], self._json("POST", f"/cohorts/{int(cohort_id)}/refresh"))

    def diff(self, cohort_id: int, from_version: int, to_version: int) -> dict[str, Any]:
        params = {"from": from_version, "to": to_version}
        return cast(dict[str, Any], self._json("GET", f"/cohorts/{int(cohort_id)}/diff", params=params))

    def set_operation(self, op: str, cohort_ids: Sequence[int], name: str) -> Cohort:
        body = {"op": op, "cohorts": [int(c) for c in cohort_ids], "name": name}
        return cast(Cohort, self._json("POST", "/cohorts/set-operations", json=body))

    def members(self, cohort_id: int, *, limit: int = 50) -> dict[str, Any]:
        path = f"/cohorts/{int(cohort_id)}/members"
        return cast(dict[str, Any], self._json("GET", path, params={"limit": limit}))

    def cohort_survival(self, cohort_id: int, group_by: str | None = None) -> dict[str, Any]:
        params = {"group_by": group_by} if group_by else {}
        path = f"/cohorts/{int(cohort_id)}/survival"
        return cast(dict[str, Any], self._json("GET", path, params=params))

    # -- exports ------------------------------------------------------------------------------------------

    def start_export(self, cohort_id: int, body: dict[str, Any]) -> Export:
        return cast(Export, self._json("POST", f"/cohorts/{int(cohort_id)}/exports", json=body))

    def export(self, export_id: int) -> Export:
        return cast(Export, self._json("GET", f"/exports/{int(export_id)}"))

    def exports(self) -> list[Export]:
        return cast(list[Export], self._json("GET", "/exports")["data"])

    def export_file(self, export_id: int, name: str) -> bytes:
        return self._send("GET", f"/exports/{int(export_id)}/files/{name}").content

    # -- patients, runs, lineage --------------------------------------------------------------------------

    def patient(self, patient: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._json("GET", f"/patients/{_segment(patient)}"))

    def similar(self, patient: str, model: str, k: int = 5) -> list[dict[str, Any]]:
        path = f"/patients/{_segment(patient)}/similar"
        return cast(list[dict[str, Any]], self._json("GET", path, params={"model": model, "k": k})["data"])

    def thumbnail(self, embedding_id: int, max_px: int = 256) -> bytes:
        path = f"/embeddings/{int(embedding_id)}/thumbnail"
        return self._send("GET", path, params={"max_px": max_px}).content

    def lineage(self, entity: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._json("GET", f"/lineage/{_segment(entity)}"))

    def runs(self, *, limit: int = 100, transform: str | None = None) -> list[Run]:
        params: dict[str, Any] = {"limit": limit}
        if transform:
            params["transform"] = transform
        return cast(list[Run], self._json("GET", "/runs", params=params)["data"])


def _segment(value: str) -> str:
    """A user-typed id as one URL path segment (it cannot reach another endpoint)."""
    from urllib.parse import quote

    return quote(str(value).strip(), safe="")


__all__ = [
    "DEFAULT_API_URL",
    "ApiClient",
    "ApiError",
    "Cohort",
    "Export",
    "Facet",
    "Facets",
    "FieldInfo",
    "ModalityMatrix",
    "Run",
]
