"""Shared pieces of the API payloads: the base models, storable-text checks, integer limits, filter bodies and
suppressed counts (see :mod:`oncograph_api.schemas` for the conventions)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

SuppressedCount = Annotated[
    int | str,
    Field(
        description='A patient count, or "<N>" when small-count suppression hides a count from 1 to N - 1.',
        examples=[1036, "<11"],
    ),
]

EXAMPLE_FILTER: dict[str, Any] = {
    "op": "and",
    "content": [
        {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-BRCA"]}},
        {"op": ">=", "content": {"field": "diagnoses.age_at_diagnosis", "value": 18250}},
    ],
}
FilterBody = Annotated[
    dict[str, Any] | None,
    Field(
        description="A GDC filter (the GDC API's grammar, so a filter copied from the portal works); null or "
        "{} means every visible patient. GET /fields lists the fields.",
        examples=[EXAMPLE_FILTER],
    ),
]


PG_INT_MAX = 2**31 - 1
"""The largest PostgreSQL ``integer`` (cohort version numbers)."""
PG_BIGINT_MAX = 2**63 - 1
"""The largest PostgreSQL ``bigint`` (row ids): a larger id in a request is invalid, not a server error."""
JSON_INT_MAX = 2**53 - 1
"""The largest integer that every JSON reader holds exactly (a double): the bound of ids in JSON bodies."""

UNSTORABLE_TEXT = "text must not contain NUL (U+0000) characters or unpaired surrogates"


def unstorable_text(value: Any, path: str = "") -> str | None:
    """Where (``path`` extended into ``value``) the first string that PostgreSQL cannot hold is: one with a NUL
    character or an unpaired surrogate (JSON can escape both), in ``value`` or the lists and dicts in it; None
    when every string is storable."""
    if isinstance(value, str):
        if "\x00" in value:
            return path
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = unstorable_text(key, where)
            if found is None:
                found = unstorable_text(item, where)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = unstorable_text(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[int, BeforeValidator(_integral)]
"""An integer of a strict input model as JSON Schema reads one: 3 or 3.0, not "3", 3.5 or true."""


class _Input(BaseModel):
    # Strict: a value of the wrong JSON type is an error (`"shared": 0` is not read as false); and NaN or Infinity
    # (which Python's JSON reader takes) are no numbers.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        where = unstorable_text(data)
        if where is not None:
            raise ValueError(f"{UNSTORABLE_TEXT} (at {where or 'the body'})")
        return data


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """An output whose records carry the source's own columns besides the documented ones."""

    model_config = ConfigDict(extra="allow")
