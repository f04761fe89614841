"""The embedding store: vectors per object (slide, series, text), model and model version, in pgvector.

The ``embedding.vector`` column has no fixed dimension (models differ), so each model gets a partial HNSW index
on ``(vector::vector(dim))`` (:func:`ensure_index`), created on demand. Functions take a Session and never
commit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.errors import ValidationError

_MODEL = re.compile(r"^[A-Za-z0-9._:/@+-]{1,200}$")


@dataclass(frozen=True, slots=True)
class EmbeddingRow:
    patient_id: int | None
    object_kind: str
    object_id: str
    modality: str
    model: str
    model_version: str
    vector: Sequence[float]
    run_id: int | None = None
    source_uri: str | None = None
    input_sha256: str | None = None
    attached_by: str = "graph"
    features_uri: str | None = None
    features_sha256: str | None = None
    features_bytes: int | None = None
    tiles: int | None = None
    source_text: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


_COLUMNS = (
    "patient_id",
    "object_kind",
    "object_id",
    "modality",
    "model",
    "model_version",
    "dim",
    "vector",
    "run_id",
    "source_uri",
    "input_sha256",
    "attached_by",
    "features_uri",
    "features_sha256",
    "features_bytes",
    "tiles",
    "source_text",
    "details",
)
_VALUES = ", ".join(
    {"vector": "CAST(:vector AS vector)", "details": "CAST(:details AS jsonb)"}.get(c, f":{c}")
    for c in _COLUMNS
)
_UPDATE = ", ".join(
    f"{c} = EXCLUDED.{c}" for c in _COLUMNS if c not in ("object_kind", "object_id", "model", "model_version")
)
_UPSERT = (
    f"INSERT INTO embedding ({', '.join(_COLUMNS)}) VALUES ({_VALUES}) "
    f"ON CONFLICT (object_kind, object_id, model, model_version) DO UPDATE SET {_UPDATE}, created_at = now()"
)


def check_model(model: str) -> str:
    if not isinstance(model, str) or not _MODEL.match(model):
        raise ValidationError(
            f"invalid model name {str(model)[:100]!r}",
            hint="model names use letters, digits and . _ : / @ + -",
        )
    return model


def model_dim(session: Session, model: str) -> int | None:
    dims = session.execute(
        text("SELECT DISTINCT dim FROM embedding WHERE model = :m"), {"m": check_model(model)}
    ).scalars()
    found = sorted(int(d) for d in dims)
    if len(found) > 1:
        raise ValidationError(f"model {model!r} has vectors of several dimensions {found}")
    return found[0] if found else None


def index_name(model: str, dim: int) -> str:
    return "ix_embedding_hnsw_" + hashlib.sha1(f"{model}\x00{dim}".encode()).hexdigest()[:16]


def ensure_index(session: Session, model: str, dim: int) -> str:
    """Create (if absent) the partial HNSW cosine index of one model; returns its name."""
    check_model(model)
    if not (0 < dim <= 2000):
        raise ValidationError(f"dimension {dim} is outside 1..2000 (pgvector's HNSW limit)")
    name = index_name(model, dim)
    literal = model.replace("'", "''")  # the name matched _MODEL, so it holds no quote; doubled anyway
    session.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {name} ON embedding USING hnsw ((vector::vector({dim})) vector_cosine_ops) "
            f"WHERE model = '{literal}' AND dim = {dim}"
        )
    )
    return name


def store_embeddings(session: Session, rows: Iterable[EmbeddingRow]) -> int:
    """Insert or replace embeddings (unique per object, model and version); returns rows written."""
    payload = []
    for r in rows:
        check_model(r.model)
        values = {c: getattr(r, c) for c in _COLUMNS if c not in ("dim", "vector", "details")}
        values["dim"] = len(r.vector)
        values["vector"] = "[" + ",".join(repr(float(x)) for x in r.vector) + "]"
        values["details"] = orjson.dumps(r.details, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        payload.append(values)
    if not payload:
        return 0
    session.execute(text(_UPSERT), payload)
    return len(payload)
