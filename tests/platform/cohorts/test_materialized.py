"""``patient_modality`` (materialised, migration 0007) holds exactly what the live modality definition in
``oncograph.cohorts.fields`` computes, under every scope, and linking refreshes it."""

from __future__ import annotations

from sqlalchemy import Connection, select, text

from oncograph.access import Scope
from oncograph.cohorts.fields import FIELDS, live_modalities
from oncograph.db.materialized import refresh_patient_modalities

SCOPES = (
    Scope.everything(),
    Scope(principal="v", role="viewer"),
    Scope(principal="g", role="viewer", granted_projects=frozenset({"TCGA-BRCA"})),
)


def _pairs(conn: Connection, source: object) -> set[tuple[int, str]]:
    src = source  # a Source
    return {(int(p), str(v)) for p, v in conn.execute(src.select())}  # type: ignore[attr-defined]


def test_view_matches_the_live_definition_under_every_scope(sample_conn: Connection) -> None:
    # make some files controlled (and the view stale), then refresh as linking does
    sample_conn.execute(
        text(
            "UPDATE data_file SET access = 'controlled' WHERE id IN (SELECT fp.file_id FROM file_patient fp "
            "JOIN patient p ON p.id = fp.patient_id JOIN project pr ON pr.id = p.project_id "
            "WHERE pr.project_id IN ('TCGA-BRCA', 'TCGA-LIHC'))"
        )
    )
    refresh_patient_modalities(sample_conn)
    for scope in SCOPES:
        live = _pairs(sample_conn, live_modalities(scope))
        viewed = _pairs(sample_conn, FIELDS["modalities"].source(scope))
        assert viewed == live, scope
        assert {m for _, m in live} >= {"slide", "rnaseq", "mr", "ct"}
    everything = _pairs(sample_conn, live_modalities(SCOPES[0]))
    restricted = _pairs(sample_conn, live_modalities(SCOPES[1]))
    assert restricted < everything  # the controlled files took some modalities away
    stored = sample_conn.execute(select(text("count(*)")).select_from(text("patient_modality"))).scalar_one()
    assert stored == len(everything)
