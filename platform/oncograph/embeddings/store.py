"""The embedding store: vectors per object (slide, series, text), model and model version, in pgvector.

The ``embedding.vector`` column has no fixed dimension (models differ), so each model gets a partial HNSW index
on ``(vector::vector(dim))`` (:func:`ensure_index`), created on demand. Functions take a Session and never
commit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.errors import ValidationError

_MODEL = re.compile(r"^[A-Za-z0-9._:/@+-]{1,200}$")


@dataclass(frozen=True, slots=True)
class EmbeddingRow:
    patient_id: int
    object_kind: str
    object_id: str
    modality: str
    model: str
    model_version: str
    vector: Sequence[float]
    run_id: int | None = None


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
        payload.append(
            {
                "patient_id": r.patient_id,
                "object_kind": r.object_kind,
                "object_id": r.object_id,
                "modality": r.modality,
                "model": r.model,
                "model_version": r.model_version,
                "dim": len(r.vector),
                "vector": "[" + ",".join(repr(float(x)) for x in r.vector) + "]",
                "run_id": r.run_id,
            }
        )
    if not payload:
        return 0
    session.execute(
        text(
            "INSERT INTO embedding (patient_id, object_kind, object_id, modality, model, model_version, dim, "
            "vector, run_id) VALUES (:patient_id, :object_kind, :object_id, :modality, :model, :model_version, "
            ":dim, CAST(:vector AS vector), :run_id) "
            "ON CONFLICT (object_kind, object_id, model, model_version) DO UPDATE SET "
            "patient_id = EXCLUDED.patient_id, modality = EXCLUDED.modality, dim = EXCLUDED.dim, "
            "vector = EXCLUDED.vector, run_id = EXCLUDED.run_id"
        ),
        payload,
    )
    return len(payload)
