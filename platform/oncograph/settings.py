"""One typed settings tree, read from ``ONCOGRAPH_*`` environment variables, built on demand."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Nothing reads the environment at import time; call :func:`get_settings`."""

    model_config = SettingsConfigDict(env_prefix="ONCOGRAPH_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(
        default=Path("~/.oncograph"),
        description="Data directory: the embedded PostgreSQL cluster and local state live here.",
        examples=["~/.oncograph"],
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of a PostgreSQL >= 15 server with pgvector. Unset: start the embedded "
        "PostgreSQL under `home`.",
        examples=["postgresql+psycopg://oncograph:secret@db:5432/oncograph"],
    )
    database_iam_auth: bool = Field(
        default=False,
        description="Sign in to the database with an AWS RDS IAM token made for each new connection (15 minutes "
        "valid, used only to connect): `database_url` names the user and host and no password. AWS "
        "credentials and region come from the AWS chain (EKS Pod Identity in the cloud). See docs/deploy.md.",
    )
    gdc_url: str = Field(
        default="https://api.gdc.cancer.gov",
        description="Base URL of the GDC API (or of a local GDC-compatible server).",
        examples=["http://127.0.0.1:8765"],
    )
    pdc_url: str = Field(
        default="https://pdc.cancer.gov/graphql",
        description="PDC GraphQL endpoint (or a local PDC-compatible stand-in).",
        examples=["http://127.0.0.1:8766/graphql"],
    )
    gdc_page_size: int = Field(default=500, ge=1, le=10_000, description="Hits per GDC page request.")
    gdc_timeout_s: float = Field(default=60.0, gt=0, description="Timeout of one GDC HTTP request, seconds.")
    gdc_max_attempts: int = Field(default=8, ge=1, description="Attempts per GDC request before giving up.")
    gdc_backoff_base_s: float = Field(
        default=0.5, ge=0, description="First retry delay; doubles each attempt, with full jitter."
    )
    gdc_backoff_max_s: float = Field(
        default=30.0, ge=0, description="Upper bound of one retry delay, seconds."
    )
    ingest_batch_size: int = Field(
        default=1000, ge=1, description="Documents per ingest transaction (one batch = one transaction)."
    )
    min_cell_count: int = Field(
        default=0,
        ge=0,
        description="Small-count suppression of aggregate patient counts in the API (facet buckets, totals, "
        "the modality matrix, project counts): a count from 1 to min_cell_count - 1 is returned as the "
        "string '<min_cell_count>'. 0 turns suppression off.",
        examples=[0, 11],
    )
    cohort_index: bool = Field(
        default=True,
        description="Answer cohort counts, members, facets and the modality matrix from the in-memory cohort "
        "index where it can (ADR 0010); false sends every cohort read to SQL.",
    )
    cohort_answer_cache: bool = Field(
        default=True,
        description="Remember the cohort index's answers until the graph version moves; false computes "
        "every answer (benchmarks).",
    )
    api_threads: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="Requests an API process works on at once, in threads (the rest wait their turn, first come "
        "first served). Request work holds Python's GIL for most of its CPU time, so many at once only take "
        "turns at random: under 32 clients on 2 cores, 4 answered /facets faster and fairer than the 40 of "
        "anyio's default (docs/performance.md). Raise it when requests mostly wait on a remote database.",
    )
    export_root: str | None = Field(
        default=None,
        description="Where API-started exports are written (a folder or s3://bucket/prefix); unset = "
        "<home>/exports. API clients name only a folder under it.",
    )
    features_root: str | None = Field(
        default=None,
        description="Where per-tile feature files (HDF5, one per slide and encoder version) are written and "
        "read: a folder or s3://bucket/prefix that every process that embeds or exports reaches; unset = "
        "<home>/features (one machine).",
        examples=["s3://oncograph-features/features"],
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint for exports to s3:// (MinIO, a local moto server); unset = AWS. Credentials "
        "come from the environment (boto3's chain).",
    )

    ray_address: str | None = Field(
        default=None,
        description="Ray cluster to run embeddings on (`auto`, `ray://head:10001`, `head:6379`). Unset: Ray's own "
        "RAY_ADDRESS, else a local Ray starts for the run.",
        examples=["ray://ray-head:10001"],
    )
    embed_batch_size: int = Field(
        default=64, ge=1, le=4096, description="Tiles, slices or texts per encoder call."
    )
    embed_actors: int | None = Field(
        default=None,
        ge=1,
        description="Encoder actors: unset = one per GPU when the cluster has GPUs, else one per node.",
    )
    embed_readers: int = Field(
        default=2, ge=1, description="Objects read and tiled at once (CPU tasks, overlapping the encoder)."
    )
    embed_reader_cpus: float = Field(
        default=0.5, gt=0, description="Ray CPUs each reader task reserves (fractional: readers mostly wait)."
    )
    embed_threads: int | None = Field(
        default=None, ge=1, description="Torch threads of a CPU encoder actor; unset = the node's cores."
    )

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
