"""The entity kinds of the graph in write order, with their natural keys and parent links."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from oncograph.db.columns import ColumnType, TableSpec, table_spec


@dataclass(frozen=True, slots=True)
class ParentLink:
    """``column`` of this kind's table references ``table``, matched on ``table.key = row[stage_key]``."""

    column: str
    table: str
    key: str
    stage_key: str
    key_type: ColumnType
    required: bool


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    key: str
    key_type: ColumnType
    parents: tuple[ParentLink, ...] = ()
    one_per_parent: bool = False
    """At most one row per (first) parent, e.g. the demographic of a patient: rows are matched by parent, and
    a derived key never replaces a real GDC UUID already stored."""
    spec: TableSpec = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", table_spec(self.name))


_PATIENT = ParentLink("patient_id", "patient", "case_id", "_patient", "uuid", required=True)
_DIAGNOSIS = ParentLink("diagnosis_id", "diagnosis", "diagnosis_id", "_diagnosis", "uuid", required=False)


def _biospecimen(name: str, *, under: str) -> Kind:
    """A biospecimen kind keyed by its GDC UUID ``<name>_id``, of a patient and of the specimen it was cut
    from (``under``, required)."""
    parent = ParentLink(f"{under}_id", under, f"{under}_id", f"_{under}", "uuid", required=True)
    return Kind(name, f"{name}_id", "uuid", (_PATIENT, parent))


KINDS: Final[tuple[Kind, ...]] = (
    Kind("program", "name", "text"),
    Kind(
        "project",
        "project_id",
        "text",
        (ParentLink("program_id", "program", "name", "_program", "text", False),),
    ),
    Kind(
        "patient",
        "case_id",
        "uuid",
        (ParentLink("project_id", "project", "project_id", "_project", "text", False),),
    ),
    Kind("demographic", "demographic_id", "uuid", (_PATIENT,), one_per_parent=True),
    Kind("diagnosis", "diagnosis_id", "uuid", (_PATIENT,)),
    Kind("treatment", "treatment_id", "uuid", (_PATIENT, _DIAGNOSIS)),
    Kind("pathology_detail", "pathology_detail_id", "uuid", (_PATIENT, _DIAGNOSIS)),
    Kind("follow_up", "follow_up_id", "uuid", (_PATIENT,)),
    Kind("exposure", "exposure_id", "uuid", (_PATIENT,)),
    Kind("family_history", "family_history_id", "uuid", (_PATIENT,)),
    Kind("sample", "sample_id", "uuid", (_PATIENT,)),
    _biospecimen("portion", under="sample"),
    _biospecimen("analyte", under="portion"),
    _biospecimen("aliquot", under="analyte"),
    _biospecimen("slide", under="portion"),
    Kind("data_file", "file_id", "uuid"),
)

KIND_BY_NAME: Final = {k.name: k for k in KINDS}

#: Case-document lists and the kind each element becomes (children of the case itself).
CASE_CHILD_LISTS: Final = (
    ("follow_ups", "follow_up"),
    ("exposures", "exposure"),
    ("family_histories", "family_history"),
)
