"""Similar patients by embedding (pgvector cosine) on the real sample graph's patients.

The vectors are random (seeded): the embeddings issue fills real ones; these tests check the neighbour search
itself against a brute-force numpy computation, on both the exact path and the HNSW index path.
"""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from oncograph import embeddings
from oncograph.access import Scope
from oncograph.cohorts.query import count
from oncograph.embeddings import similar
from oncograph.errors import NotFoundError, ValidationError

MODEL = "test-uni/v1"
DIM = 16


def _load(session: Session, n: int = 300) -> tuple[list[int], dict[int, np.ndarray]]:
    """Embeddings for ``n`` real patients: one slide each, two for every tenth patient."""
    rng = np.random.default_rng(7)
    pids = [r[0] for r in session.execute(text("SELECT id FROM patient ORDER BY id LIMIT :n"), {"n": n})]
    rows: list[embeddings.EmbeddingRow] = []
    vectors: dict[int, np.ndarray] = {}
    for i, pid in enumerate(pids):
        count_objects = 2 if i % 10 == 0 else 1
        vs = rng.normal(size=(count_objects, DIM)).astype(np.float32)
        vectors[pid] = vs
        for j, v in enumerate(vs):
            rows.append(
                embeddings.EmbeddingRow(pid, "slide", f"slide-{pid}-{j}", "slide", MODEL, "1", v.tolist())
            )
    assert embeddings.store_embeddings(session, rows) == len(rows)
    session.flush()
    return pids, vectors


def _brute(vectors: dict[int, np.ndarray], query_pid: int, candidates: list[int], k: int) -> list[int]:
    q = vectors[query_pid].mean(axis=0)
    q = q / np.linalg.norm(q)
    best = []
    for pid in candidates:
        if pid == query_pid:
            continue
        vs = vectors[pid] / np.linalg.norm(vectors[pid], axis=1, keepdims=True)
        best.append((float(np.min(1 - vs @ q)), pid))
    return [pid for _, pid in sorted(best)[:k]]


def _ids(session: Session, neighbours: list[similar.Neighbour]) -> list[int]:
    case_to_pid = dict(session.execute(text("SELECT case_id::text, id FROM patient")).all())
    return [case_to_pid[n.case_id] for n in neighbours]


def test_exact_neighbours_match_numpy(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as s:
        pids, vectors = _load(s)
        cohort = pids[::2]
        for query in (pids[0], pids[5], pids[10]):
            got = similar.similar_patients(s, cohort, query, MODEL, k=7)
            assert _ids(s, got) == _brute(vectors, query, cohort, 7)
            assert all(0 <= n.distance <= 2 for n in got)
            assert got == sorted(got, key=lambda n: n.distance)
        # only cohort members come back, never the query patient itself
        got = similar.similar_patients(s, cohort, pids[0], MODEL, k=500)
        assert set(_ids(s, got)) == set(cohort) - {pids[0]}


def test_index_path_matches_the_exact_path(
    sample_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with sample_factory() as s:
        pids, vectors = _load(s)
        name = embeddings.ensure_index(s, MODEL, DIM)
        assert embeddings.ensure_index(s, MODEL, DIM) == name  # idempotent
        assert (
            s.execute(text("SELECT count(*) FROM pg_indexes WHERE indexname = :n"), {"n": name}).scalar_one()
            == 1
        )
        monkeypatch.setattr(similar, "EXACT_LIMIT", 10)
        got = similar.similar_patients(s, pids, pids[3], MODEL, k=5)
        assert _ids(s, got) == _brute(vectors, pids[3], pids, 5)


def test_store_is_an_upsert_and_filters_see_embeddings(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as s:
        _load(s, 20)
        _load(s, 20)
        assert s.execute(text("SELECT count(*) FROM embedding")).scalar_one() == 22
        scope = Scope.everything()
        by_model = {"op": "in", "content": {"field": "embeddings.model", "value": [MODEL]}}
        assert count(s.connection(), by_model, scope) == 20
        by_modality = {"op": "in", "content": {"field": "modalities", "value": ["embedding"]}}
        assert count(s.connection(), by_modality, scope) == 20


def test_errors_are_clear(sample_factory: sessionmaker[Session]) -> None:
    with sample_factory() as s:
        with pytest.raises(NotFoundError, match="no embeddings of model"):
            similar.similar_patients(s, [1, 2], 1, MODEL)
        pids, _ = _load(s, 5)
        outsider = s.execute(text("SELECT max(id) FROM patient")).scalar_one()
        with pytest.raises(NotFoundError, match="has no embedding"):
            similar.similar_patients(s, pids, outsider, MODEL)
        with pytest.raises(ValidationError, match="invalid model name"):
            similar.similar_patients(s, pids, pids[0], "x'; DROP TABLE embedding; --")
        with pytest.raises(ValidationError, match="dimension"):
            embeddings.ensure_index(s, MODEL, 5000)
        assert similar.similar_patients(s, [pids[0]], pids[0], MODEL) == []
