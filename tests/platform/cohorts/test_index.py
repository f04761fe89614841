"""The in-memory cohort index (oncograph.cohorts.index) against the SQL engine, on the real sample graph.

The index is a cache of PostgreSQL: every answer it gives must be the SQL engine's (the oracle here, run with
``index.disabled()``), under every scope, and never stale once a change has committed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Connection, Engine, Table, create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.util import find_tables

from oncograph.access import Scope, ensure_local_principal, set_project_controlled
from oncograph.cohorts import index
from oncograph.cohorts.fields import FIELDS
from oncograph.cohorts.index.columns import indexable
from oncograph.cohorts.query import count, facets, member_ids, modality_matrix
from oncograph.cohorts.results import HistogramFacet
from oncograph.cohorts.saved import create_from_filter
from oncograph.db.graph_version import read_graph_version
from oncograph.db.materialized import refresh_patient_modalities
from oncograph.lineage.releases import _PATIENT_ROWS

pytestmark = pytest.mark.integration

EVERYTHING = Scope.everything()


def leaf(op: str, field: str, value: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"field": field}
    if value is not None:
        content["value"] = value
    return {"op": op, "content": content}


#: Each operator on fields of each kind: patient columns, nested clinical rows, numbers, booleans, files
#: (scope-dependent), modalities (a materialised view), IDC series through identity links, wildcards.
FILTERS: list[Any] = [
    None,
    leaf("in", "project.project_id", ["TCGA-CHOL", "TCGA-BRCA"]),
    leaf("!=", "project.project_id", "TCGA-BRCA"),
    leaf("exclude", "diagnoses.classification_of_tumor", ["metastasis", "recurrence"]),
    leaf("excludeifany", "diagnoses.classification_of_tumor", ["primary"]),
    leaf("in", "diagnoses.primary_diagnosis", ["*carcinoma, NOS", "Cholangiocarcinoma"]),
    leaf(">=", "diagnoses.age_at_diagnosis", 20000),
    leaf("<", "diagnoses.age_at_diagnosis", 21501),
    leaf("in", "diagnoses.age_at_diagnosis", [21501, 2.5]),
    leaf("is", "demographic.days_to_death", "MISSING"),
    leaf("not", "follow_ups.days_to_follow_up", "MISSING"),
    leaf("=", "demographic.age_is_obfuscated", True),
    leaf("in", "files.data_category", ["Sequencing Reads", "Clinical"]),
    leaf("exclude", "files.access", ["controlled"]),
    leaf("=", "modalities", "slide"),
    {"op": "and", "content": [leaf("=", "modalities", "slide"), leaf("in", "idc.modality", ["MR", "CT"])]},
    {"op": "or", "content": [leaf("=", "primary_site", "Bile Duct"), leaf("=", "links.commons", "pdc")]},
    {"op": "and", "content": []},
    {"op": "or", "content": []},
]


def _facet_fields() -> list[str]:
    return [name for name, f in FIELDS.items() if indexable(f) and not f.identifier]


def _same_facets(fast: tuple[int, list[Any]], slow: tuple[int, list[Any]], where: str) -> None:
    assert fast[0] == slow[0], where
    for a, b in zip(fast[1], slow[1], strict=True):
        ja, jb = a.to_json(), b.to_json()
        if isinstance(a, HistogramFacet):
            ma, mb = ja["stats"].pop("mean"), jb["stats"].pop("mean")
            # the index's mean is exactly rounded; SQL's avg may differ in the last digits
            assert (ma is None and mb is None) or math.isclose(ma, mb, rel_tol=1e-12), (where, a.field)
        assert ja == jb, (where, a.field)


def _compare(conn: Connection, scope: Scope, fields: list[str]) -> None:
    before = index.OUTCOMES["index"]
    for flt in FILTERS:
        where = f"{flt!r} under {scope.to_json()}"
        fast = facets(conn, flt, fields, scope)
        fast_members = member_ids(conn, flt, scope)
        fast_count = count(conn, flt, scope)
        fast_matrix = modality_matrix(conn, flt, scope)
        with index.disabled():
            slow = facets(conn, flt, fields, scope)
            assert fast_members == member_ids(conn, flt, scope), where
            assert fast_count == count(conn, flt, scope) == len(fast_members), where
            assert fast_matrix.to_json() == modality_matrix(conn, flt, scope).to_json(), where
        _same_facets(fast, slow, where)
    assert index.OUTCOMES["index"] - before == 4 * len(FILTERS), "every read above went through the index"


def test_most_fields_are_indexable() -> None:
    names = [name for name, f in FIELDS.items() if indexable(f)]
    assert len(names) >= 0.95 * len(FIELDS)
    assert {"files.access", "modalities", "idc.modality", "diagnoses.age_at_diagnosis"} <= set(names)


def test_index_answers_equal_sql_over_the_sample_graph(sample_engine: Engine) -> None:
    """Every facet of every indexable field, the members, the count and the modality matrix of each filter,
    through the index and through SQL, unrestricted and as a grant-less viewer (controlled files hidden)."""
    fields = _facet_fields()
    with sample_engine.connect() as conn:
        _compare(conn, EVERYTHING, fields)
        _compare(conn, Scope(principal="v", role="viewer"), fields)


@pytest.fixture()
def cloned(clone_sample: Callable[[], str]) -> Iterator[Engine]:
    engine = create_engine(clone_sample())
    yield engine
    index.forget(engine)
    engine.dispose()


def test_scopes_through_the_index_never_leak_controlled_data(cloned: Engine) -> None:
    """Committed: every other TCGA-LIHC file becomes controlled, and TCGA-BRCA a controlled project. Through the
    index, a grant-less scope sees neither (counts, facets, members), a grant brings each back, and every answer
    is SQL's."""
    with cloned.begin() as conn:
        changed = conn.execute(
            text(
                "UPDATE data_file SET access = 'controlled' WHERE id IN (SELECT fp.file_id FROM file_patient fp "
                "JOIN patient p ON p.id = fp.patient_id JOIN project pr ON pr.id = p.project_id "
                "WHERE pr.project_id = 'TCGA-LIHC' AND fp.file_id % 2 = 0)"
            )
        ).rowcount
        refresh_patient_modalities(conn)
    assert changed > 0
    with Session(cloned) as session:
        set_project_controlled(session, "TCGA-BRCA", True, set_by="test")
        session.commit()
    viewer = Scope(principal="v", role="viewer")
    lihc = Scope(principal="c", role="viewer", granted_projects=frozenset({"TCGA-LIHC"}))
    both = Scope(principal="b", role="viewer", granted_projects=frozenset({"TCGA-LIHC", "TCGA-BRCA"}))
    brca = leaf("in", "project.project_id", ["TCGA-BRCA"])
    lihc_only = leaf("in", "project.project_id", ["TCGA-LIHC"])
    with cloned.connect() as conn:
        _, (projects, access) = facets(conn, None, ["project.project_id", "files.access"], viewer)
        assert "TCGA-BRCA" not in dict(projects.buckets)
        assert "controlled" not in dict(access.buckets)
        assert count(conn, brca, viewer) == 0
        assert member_ids(conn, brca, viewer) == []
        _, (lihc_access,) = facets(conn, lihc_only, ["files.access"], lihc)
        assert dict(lihc_access.buckets)["controlled"] > 0
        assert count(conn, brca, lihc) == 0
        assert count(conn, brca, both) > 0
        fields = ["project.project_id", "files.access", "files.data_category", "modalities", "primary_site"]
        for scope in (viewer, lihc, both):
            _compare(conn, scope, fields)


def test_a_committed_change_is_seen_at_once(cloned: Engine) -> None:
    """Answers (cached ones included) follow every commit that changed the graph: no stale answer."""
    flt = leaf("in", "project.project_id", ["TCGA-CHOL"])
    with cloned.connect() as conn:
        before = count(conn, flt, EVERYTHING)
        assert count(conn, flt, EVERYTHING) == before  # cached now
        version = read_graph_version(conn).version
        conn.rollback()
    with cloned.begin() as conn:
        retired = conn.execute(
            text(
                "UPDATE patient SET retired_release_id = (SELECT min(id) FROM source_release) "
                "WHERE id IN (SELECT p.id FROM patient p JOIN project pr ON pr.id = p.project_id "
                "WHERE pr.project_id = 'TCGA-CHOL' ORDER BY p.id LIMIT 3)"
            )
        ).rowcount
    assert retired == 3
    with cloned.connect() as conn:
        assert read_graph_version(conn).version == version + 1
        loads = index.OUTCOMES["index"]
        assert count(conn, flt, EVERYTHING) == before - 3
        assert index.OUTCOMES["index"] == loads + 1
        with index.disabled():
            assert count(conn, flt, EVERYTHING) == before - 3


def test_a_bulk_load_in_replica_mode_moves_the_version(cloned: Engine) -> None:
    """The IDC bulk load skips per-row triggers (``session_replication_role = replica``); the version moves."""
    with cloned.connect() as conn:
        version = read_graph_version(conn).version
        conn.rollback()
    with cloned.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("UPDATE imaging_series SET modality = modality WHERE modality = 'MR'"))
    with cloned.connect() as conn:
        assert read_graph_version(conn).version == version + 1


def test_a_refreshed_modality_view_moves_the_version(cloned: Engine) -> None:
    """``patient_modality`` is a materialised view (no trigger sees its refresh): the refresh alone, in a
    transaction of its own, moves the version, so modalities read through the index follow it."""
    slide = leaf("=", "modalities", "slide")
    with cloned.begin() as conn:
        retire = "UPDATE {} SET retired_release_id = (SELECT min(id) FROM source_release) WHERE {}"
        conn.execute(text(retire.format("data_file", "is_slide")))
        conn.execute(text(retire.format("imaging_series", "modality = 'SM'")))
    with cloned.connect() as conn:
        stale_view = count(conn, slide, EVERYTHING)  # the view still lists the retired slides
        version = read_graph_version(conn).version
        conn.rollback()
    with cloned.begin() as conn:
        refresh_patient_modalities(conn)
    with cloned.connect() as conn:
        assert read_graph_version(conn).version == version + 1
        after = count(conn, slide, EVERYTHING)
        with index.disabled():
            assert after == count(conn, slide, EVERYTHING)
    assert after < stale_view
    assert after == 0


def test_uncommitted_changes_read_through_sql(sample_conn: Connection) -> None:
    """A transaction that changed the graph reads its own changes (the index cannot see them)."""
    flt = leaf("in", "project.project_id", ["TCGA-CHOL"])
    before = count(sample_conn, flt, EVERYTHING)
    sample_conn.execute(
        text(
            "UPDATE patient SET retired_release_id = (SELECT min(id) FROM source_release) "
            "WHERE id = (SELECT p.id FROM patient p JOIN project pr ON pr.id = p.project_id "
            "WHERE pr.project_id = 'TCGA-CHOL' ORDER BY p.id LIMIT 1)"
        )
    )
    pending = index.OUTCOMES["pending"]
    assert count(sample_conn, flt, EVERYTHING) == before - 1
    assert index.OUTCOMES["pending"] == pending + 1


def test_every_table_the_fields_and_releases_read_moves_the_version(sample_conn: Connection) -> None:
    triggered = {
        r[0]
        for r in sample_conn.execute(
            text("SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = 'graph_changed'")
        )
    }
    read: set[str] = set(_PATIENT_ROWS) | {"patient", "data_file", "file_patient", "identity_link"}
    for f in FIELDS.values():
        for t in find_tables(f.source(EVERYTHING).select(), include_aliases=True, include_joins=True):
            base = getattr(t, "element", t)
            if isinstance(base, Table):
                read.add(base.name)
    read.discard("patient_modality")  # a materialised view: refresh_patient_modalities marks it
    assert {"project", "program", "embedding", "imaging_series", "idc_patient"} <= read
    assert read - triggered == set()


def test_cohort_versions_frozen_through_the_index_equal_sql(sample_factory: sessionmaker[Session]) -> None:
    """Members, member hash and releases of a version frozen from the index are those SQL freezes."""
    flt = leaf("in", "project.project_id", ["TCGA-CHOL", "TCGA-BRCA"])
    with sample_factory() as session:
        owner = ensure_local_principal(session)
        session.flush()
        fast = create_from_filter(session, name="fast", filters=flt, owner=owner, scope=EVERYTHING)
        with index.disabled():
            slow = create_from_filter(session, name="slow", filters=flt, owner=owner, scope=EVERYTHING)
    assert fast.to_json()["latest"]["size"] > 0
    for key in ("size", "member_hash", "releases"):
        assert fast.to_json()["latest"][key] == slow.to_json()["latest"][key], key


@pytest.mark.parametrize(
    "values",
    [
        [b"6a6a3e0a-29cf-4c56-a4c6-2d2d0c4bb8c1", b"", b"0b2c3f2e-8f0a-4b53-9d38-1f4cf9b2d0a7"],
        [b"TCGA-AA", b"", b"TCGA-AAAA", b"b"],
        [],
    ],
)
def test_member_digest_is_the_hash_of_the_joined_lines(values: list[bytes]) -> None:
    """Full-width values (case UUIDs) are joined by numpy, others by Python: both hash what the SQL hash does
    (the non-empty values joined by newlines)."""
    array = np.array(values, np.bytes_) if values else np.zeros(0, "S36")
    expected = hashlib.sha256(b"\n".join(v for v in values if v)).hexdigest()
    assert index._lines_digest(array) == expected


def test_member_references_are_checked_per_statement(sample_conn: Connection) -> None:
    with (
        pytest.raises(IntegrityError, match="names no cohort version or patient"),
        sample_conn.begin_nested(),
    ):
        sample_conn.execute(text("INSERT INTO cohort_member VALUES (-1, -1)"))
