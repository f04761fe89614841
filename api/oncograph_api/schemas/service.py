"""Service payloads: health, fields and projects."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from oncograph_api.schemas.base import SuppressedCount, _Output


class Health(_Output):
    status: Literal["ok"] = Field(description="`ok` when the API and its database answer.")
    database: Literal["ok"] = Field(description="`ok` when `SELECT 1` succeeded.")
    version: str = Field(description="The oncograph version serving the API.", examples=["0.1.0"])


class FieldInfo(_Output):
    field: str = Field(
        description="The GDC field path, usable in filters and facets.", examples=["diagnoses.stage"]
    )
    type: Literal["string", "integer", "number", "boolean"] = Field(description="The value type.")
    facet: Literal["terms", "histogram"] = Field(description="The facet kind POST /facets computes for it.")
    nested: bool = Field(
        description="A patient may have several values (one per diagnosis, sample, file...)."
    )
    description: str = Field(description="What the field holds.")
    values: list[str] | None = Field(
        default=None, description="The known values, for enumerations oncograph defines."
    )
    identifier: bool = Field(
        default=False,
        description="Its values name single patients or records (ids, barcodes, file names): aggregate-only "
        "keys may not filter or facet on it.",
    )
    unit: str | None = Field(
        default=None, description="The unit of a numeric field: days, years, calendar year or bytes."
    )


class FieldList(_Output):
    data: list[FieldInfo] = Field(description="Every field of the registry, in registry order.")
    count: int = Field(description="Number of fields.")


class ProjectPublic(_Output):
    project_id: str = Field(description="GDC project id.", examples=["TCGA-BRCA"])
    name: str | None = Field(description="Project name.")
    program: str | None = Field(description="Program name.", examples=["TCGA"])
    primary_site: list[str] | None = Field(description="Primary sites of the project.")
    disease_type: list[str] | None = Field(description="Disease types of the project.")
    controlled: bool = Field(description="Controlled: its data is visible only with a grant (you hold one).")
    patients: SuppressedCount


class ProjectList(_Output):
    data: list[ProjectPublic] = Field(description="The projects you may see, by project id.")
    count: int = Field(description="Number of projects.")
