"""Where field values live: a *source* is the set of ``(patient id, value)`` rows of one field, computed under
an access :class:`~oncograph.access.Scope` (controlled files without a grant never appear), and the builders
that make sources of patient, project, child-table, file, IDC and embedding columns. Retired rows (no longer
in the source's current release) are never values. The registry of named fields is
:mod:`oncograph.cohorts.fields`; modalities are :mod:`oncograph.cohorts.modalities`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Table,
    Text,
    and_,
    cast,
    func,
    lateral,
    select,
    true,
)

from oncograph.access import Scope
from oncograph.access.policy import controlled_file, visible_file
from oncograph.db.models import (
    DataFile,
    Embedding,
    FilePatient,
    IdentityLink,
    Patient,
    Program,
    Project,
)
from oncograph.db.models.imaging import IdcPatient, ImagingSeries

PATIENT: Table = Patient.__table__  # type: ignore[assignment]
PROJECT: Table = Project.__table__  # type: ignore[assignment]
DATA_FILE: Table = DataFile.__table__  # type: ignore[assignment]
FILE_PATIENT: Table = FilePatient.__table__  # type: ignore[assignment]
IDENTITY_LINK: Table = IdentityLink.__table__  # type: ignore[assignment]
IDC_PATIENT: Table = IdcPatient.__table__  # type: ignore[assignment]
IMAGING_SERIES: Table = ImagingSeries.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Source:
    """Rows ``SELECT pid, value FROM froms WHERE where``: one per value a patient has."""

    pid: ColumnElement[Any]
    value: ColumnElement[Any]
    froms: tuple[FromClause, ...]
    where: tuple[ColumnElement[bool], ...] = ()
    restricted: ColumnElement[bool] | None = None
    """For a source whose rows depend on the scope: true on the rows a scope sees only with a grant for the
    row's patient's project (controlled files). The in-memory index (:mod:`oncograph.cohorts.index`) loads the
    unrestricted rows with this flag and applies each scope's grants itself; a scope-dependent source without
    it is answered by SQL only."""

    def select(self, *conditions: ColumnElement[bool]) -> Select[Any]:
        return (
            select(self.pid.label("pid"), self.value.label("value"))
            .select_from(*self.froms)
            .where(*self.where, *conditions)
        )


def live(table: FromClause) -> ColumnElement[bool]:
    return table.c.retired_release_id.is_(None)


def patient_col(column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        p = PATIENT.alias("fp")
        return Source(p.c.id, p.c[column], (p,), (live(p),))

    return build


def project_col(column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        p = PATIENT.alias("fp")
        pr = PROJECT.alias("fpr")
        return Source(p.c.id, pr.c[column], (p.join(pr, pr.c.id == p.c.project_id),), (live(p),))

    return build


def project_array(column: str) -> Callable[[Scope], Source]:
    """An array column of the project, one value per element (``project.primary_site`` is a list)."""

    def build(scope: Scope) -> Source:
        p = PATIENT.alias("fp")
        pr = PROJECT.alias("fpr")
        values = lateral(select(func.unnest(pr.c[column]).label("v"))).alias("fpv")
        froms = p.join(pr, pr.c.id == p.c.project_id).join(values, true())
        return Source(p.c.id, values.c.v, (froms,), (live(p),))

    return build


def program_name(scope: Scope) -> Source:
    p = PATIENT.alias("fp")
    pr = PROJECT.alias("fpr")
    pg: FromClause = Program.__table__.alias("fpg")
    froms = p.join(pr, pr.c.id == p.c.project_id).join(pg, pg.c.id == pr.c.program_id)
    return Source(p.c.id, pg.c.name, (froms,), (live(p),))


def child_col(model: type[Any], column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        t = model.__table__.alias(f"f_{model.__tablename__}")
        return Source(t.c.patient_id, t.c[column], (t,), (live(t),))

    return build


def file_col(column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        fp = FILE_PATIENT.alias("ffp")
        f = DATA_FILE.alias("ff")
        return Source(
            fp.c.patient_id,
            f.c[column],
            (fp.join(f, f.c.id == fp.c.file_id),),
            (visible_file(scope, f, fp.c.patient_id),),
            restricted=controlled_file(f),
        )

    return build


def idc_froms() -> tuple[FromClause, FromClause, FromClause]:
    link = IDENTITY_LINK.alias("fl")
    ip = IDC_PATIENT.alias("fip")
    froms = link.join(
        ip,
        and_(
            link.c.commons == "idc",
            ip.c.collection_id == link.c.namespace,
            ip.c.patient_id == link.c.external_id,
        ),
    )
    return link, ip, froms


def idc_collection(scope: Scope) -> Source:
    link, ip, froms = idc_froms()
    return Source(link.c.patient_id, ip.c.collection_id, (froms,), (live(ip),))


def idc_series_col(column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        link, ip, froms = idc_froms()
        s = IMAGING_SERIES.alias("fs")
        return Source(
            link.c.patient_id,
            s.c[column],
            (froms.join(s, s.c.idc_patient_id == ip.c.id),),
            (live(ip), live(s)),
        )

    return build


def link_commons(scope: Scope) -> Source:
    link = IDENTITY_LINK.alias("fl")
    return Source(link.c.patient_id, link.c.commons, (link,))


def embedding_col(column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        e: FromClause = Embedding.__table__.alias("fe")
        return Source(e.c.patient_id, e.c[column], (e,), (e.c.patient_id.is_not(None),))

    return build


def patient_col_text(column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        p = PATIENT.alias("fp")
        return Source(p.c.id, cast(p.c[column], Text), (p,), (live(p),))

    return build


def child_col_uuid(model: type[Any], column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        t = model.__table__.alias(f"f_{model.__tablename__}")
        return Source(t.c.patient_id, cast(t.c[column], Text), (t,), (live(t),))

    return build
