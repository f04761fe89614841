"""Similar patients: nearest neighbours by embedding (pgvector, cosine distance) within a cohort.

A patient's distance to the query patient is the smallest cosine distance between any of its embeddings of
the model and the query vector; the query vector is the mean of the query patient's embeddings of that model
(a patient-level embedding, when the model has one, is used as is).

The ``embedding.vector`` column has no fixed dimension (models differ), so each model gets a partial HNSW index
on ``(vector::vector(dim))`` (:func:`oncograph.embeddings.store.ensure_index`). Small candidate sets are scanned exactly (cheaper than an
approximate index walk and always complete); large ones use the index, over-fetching and falling back to the
exact scan when the cohort filter leaves fewer than ``k`` neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.access import Scope
from oncograph.cohorts.analysis import visible_members
from oncograph.cohorts.patients import resolve_patient, visible_patient_ids
from oncograph.db.models import Principal
from oncograph.embeddings.store import check_model, model_dim
from oncograph.errors import NotFoundError

#: Candidate embeddings up to which the exact scan is used.
EXACT_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class Neighbour:
    case_id: str
    submitter_id: str | None
    project_id: str | None
    distance: float
    object_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "submitter_id": self.submitter_id,
            "project_id": self.project_id,
            "distance": self.distance,
            "similarity": 1.0 - self.distance,
            "nearest_object": self.object_id,
        }


def similar_patients(
    session: Session, candidates: Sequence[int], patient_id: int, model: str, k: int = 10
) -> list[Neighbour]:
    """The ``k`` candidate patients nearest to ``patient_id`` by ``model`` embeddings (itself excluded).

    Raises:
        NotFoundError: the query patient has no embedding of the model (or the model has none at all).
    """
    check_model(model)
    k = max(1, min(int(k), 1000))
    dim = model_dim(session, model)
    if dim is None:
        raise NotFoundError(
            f"no embeddings of model {model!r} yet",
            hint="embeddings are computed by the embedding flows; GET /fields shows embeddings.model values",
        )
    query = session.execute(
        text(
            f"SELECT CAST(avg(vector::vector({dim})) AS text) FROM embedding "
            "WHERE model = :m AND patient_id = :p AND dim = :d"
        ),
        {"m": model, "p": patient_id, "d": dim},
    ).scalar_one()
    if query is None:
        raise NotFoundError(f"the patient has no embedding of model {model!r}")
    others = [c for c in candidates if c != patient_id]
    if not others:
        return []
    n_candidates = session.execute(
        text("SELECT count(*) FROM embedding WHERE model = :m AND dim = :d AND patient_id = ANY(:ids)"),
        {"m": model, "d": dim, "ids": others},
    ).scalar_one()
    params = {"m": model, "d": dim, "q": query, "ids": others, "k": k}
    if n_candidates > EXACT_LIMIT:
        ef = min(1000, max(40, 8 * k))  # an int we computed: safe to inline (SET takes no parameters)
        session.execute(text(f"SET LOCAL hnsw.ef_search = {int(ef)}"))
        rows = session.execute(text(_ANN_SQL.format(dim=dim)), {**params, "fetch": min(10_000, 50 * k)}).all()
        if len(rows) >= k:
            return [_neighbour(r) for r in rows[:k]]
    rows = session.execute(text(_EXACT_SQL.format(dim=dim)), params).all()
    return [_neighbour(r) for r in rows]


_SELECT = (
    "SELECT p.case_id::text, p.submitter_id, pr.project_id, b.distance, b.object_id FROM best b "
    "JOIN patient p ON p.id = b.patient_id LEFT JOIN project pr ON pr.id = p.project_id "
    "ORDER BY b.distance, p.case_id LIMIT :k"
)
_EXACT_SQL = (
    "WITH d AS (SELECT patient_id, object_id, (vector::vector({dim})) <=> CAST(:q AS vector({dim})) AS distance "
    "FROM embedding WHERE model = :m AND dim = :d AND patient_id = ANY(:ids)), "
    "best AS (SELECT DISTINCT ON (patient_id) patient_id, object_id, distance FROM d "
    "ORDER BY patient_id, distance, object_id) " + _SELECT
)
_ANN_SQL = (
    "WITH near AS (SELECT patient_id, object_id, (vector::vector({dim})) <=> CAST(:q AS vector({dim})) AS distance "
    "FROM embedding WHERE model = :m AND dim = :d "
    "ORDER BY (vector::vector({dim})) <=> CAST(:q AS vector({dim})) LIMIT :fetch), "
    "best AS (SELECT DISTINCT ON (patient_id) patient_id, object_id, distance FROM near "
    "WHERE patient_id = ANY(:ids) ORDER BY patient_id, distance, object_id) " + _SELECT
)


def _neighbour(row: Any) -> Neighbour:
    return Neighbour(
        case_id=row[0], submitter_id=row[1], project_id=row[2], distance=float(row[3]), object_id=row[4]
    )


def similar_in_cohort(
    session: Session,
    cohort_id: int,
    principal: Principal,
    *,
    scope: Scope,
    patient: str,
    model: str,
    k: int = 10,
) -> list[Neighbour]:
    """The ``k`` visible members of the cohort's latest version nearest to ``patient`` (a case UUID or barcode
    the scope may see) by cosine distance between embeddings of ``model``.

    Raises:
        NotFoundError: no such cohort, patient, or embeddings of the model for the patient.
        ValidationError: an invalid model name.
    """
    _, members = visible_members(session, cohort_id, principal, None, scope=scope)
    query_patient = resolve_patient(session.connection(), patient, scope)
    return similar_patients(session, members, query_patient, model, k)


def similar_to_patient(
    session: Session, *, scope: Scope, patient: str, model: str, k: int = 10
) -> list[Neighbour]:
    """The ``k`` live patients the scope may see nearest to ``patient`` (a case UUID or barcode it may see) by
    ``model`` embeddings, across the whole graph (itself excluded).

    Raises:
        NotFoundError: no such patient for the scope, or no embeddings of the model for the patient.
        ValidationError: an invalid model name.
    """
    check_model(model)
    query_patient = resolve_patient(session.connection(), patient, scope)
    embedded = session.execute(
        text(
            "SELECT DISTINCT e.patient_id FROM embedding e JOIN patient p ON p.id = e.patient_id "
            "WHERE e.model = :m AND p.retired_release_id IS NULL"
        ),
        {"m": model},
    ).scalars()
    candidates = visible_patient_ids(session.connection(), embedded, scope)
    return similar_patients(session, candidates, query_patient, model, k)


@dataclass(frozen=True, slots=True)
class SimilarObject:
    object_kind: str
    object_id: str
    case_id: str | None
    distance: float

    def to_json(self) -> dict[str, Any]:
        return {
            "object_kind": self.object_kind,
            "object_id": self.object_id,
            "case_id": self.case_id,
            "distance": self.distance,
            "similarity": 1.0 - self.distance,
        }


def similar_objects(
    session: Session, object_kind: str, object_id: str, model: str, *, scope: Scope, k: int = 10
) -> list[SimilarObject]:
    """The ``k`` embedded objects nearest to one object by ``model`` (the object itself first, at distance 0),
    among those of patients the scope may see; objects attached to no patient only for an unrestricted scope."""
    check_model(model)
    k = max(1, min(int(k), 1000))
    row = session.execute(
        text(
            "SELECT dim, CAST(vector AS text) FROM embedding WHERE object_kind = :kind AND object_id = :id "
            "AND model = :m ORDER BY created_at DESC LIMIT 1"
        ),
        {"kind": object_kind, "id": object_id, "m": model},
    ).first()
    if row is None:
        raise NotFoundError(f"no {model!r} embedding of {object_kind} {object_id!r}")
    dim, query = int(row[0]), row[1]
    rows = session.execute(
        text(
            f"SELECT e.object_kind, e.object_id, e.patient_id, p.case_id::text, "
            f"(e.vector::vector({dim})) <=> CAST(:q AS vector({dim})) AS distance FROM embedding e "
            "LEFT JOIN patient p ON p.id = e.patient_id WHERE e.model = :m AND e.dim = :d "
            "ORDER BY distance, e.object_kind, e.object_id"
        ),
        {"q": query, "m": model, "d": dim},
    ).all()
    visible = set(
        visible_patient_ids(session.connection(), sorted({r.patient_id for r in rows if r.patient_id}), scope)
    )
    out = []
    for r in rows:
        if (r.patient_id is None and not scope.unrestricted) or (
            r.patient_id is not None and r.patient_id not in visible
        ):
            continue
        out.append(SimilarObject(r.object_kind, r.object_id, r.case_id, max(0.0, float(r.distance))))
        if len(out) == k:
            break
    return out
