"""Problem documents (RFC 9457) of the error responses."""

from __future__ import annotations

from pydantic import Field

from oncograph_api.schemas.base import _Output


class ProblemError(_Output):
    loc: str = Field(description="Where in the request: `query.limit`, `body.filters.content[0].op`.")
    msg: str = Field(description="What is wrong there.")


class Problem(_Output):
    """An RFC 9457 problem document (media type application/problem+json): every error has this shape."""

    type: str = Field(
        description="A URI naming the kind of problem.", examples=["urn:oncograph:problem:not-found"]
    )
    title: str = Field(description="A short summary of the kind of problem.", examples=["Not found"])
    status: int = Field(description="The HTTP status code.", examples=[404])
    detail: str = Field(description="What went wrong this time.", examples=["no cohort 42"])
    instance: str = Field(description="The path of the request.", examples=["/cohorts/42"])
    hint: str | None = Field(default=None, description="What to do next, when known.")
    errors: list[ProblemError] | None = Field(
        default=None, description="Every problem of a request that failed validation, each with its location."
    )
