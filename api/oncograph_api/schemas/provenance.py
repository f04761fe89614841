"""Runs and lineage."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from oncograph_api.schemas.base import _Output


class RunPublic(_Output):
    id: int = Field(description="Run id.")
    transform: str = Field(description="What ran.", examples=["harvest_gdc"])
    code_version: str = Field(description="oncograph version that ran it.")
    status: str = Field(description="running, succeeded, failed or abandoned.")
    parameters: dict[str, Any] = Field(description="Its parameters.")
    counts: dict[str, Any] = Field(description="What it counted (inserted, updated, ...).")
    error: str | None = Field(description="Why it failed.")
    started_at: dt.datetime = Field(description="Start.")
    finished_at: dt.datetime | None = Field(description="End; null while running.")
    prefect_flow_run_id: str | None = Field(description="The Prefect flow run, when a flow ran it.")
    source_release: str | None = Field(description="The source release it harvested.")


class RunPage(_Output):
    data: list[RunPublic] = Field(description="Runs, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for older runs; null on the last page.")


class LineagePublic(_Output):
    id: str = Field(description="The id asked for.")
    records: list[dict[str, Any]] = Field(
        description="Graph rows of any kind with that id: kind, key, source document, first/last seen release."
    )
    documents: list[dict[str, Any]] = Field(
        description="Every stored version of their source documents (`current`: the one the row is built from), "
        "with release and run."
    )
