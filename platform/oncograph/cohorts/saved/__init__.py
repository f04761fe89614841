"""Saved cohorts: frozen, reproducible member lists with the releases and access scope they were made under.

A cohort is a definition — a GDC filter, a fixed list of patient ids, or a set operation over other cohorts —
and numbered versions. A version is frozen: its member list, ``member_hash`` (SHA-256 of the sorted member
case UUIDs, one per line), the source releases its members' rows were last seen in
(:func:`oncograph.lineage.releases.member_releases`) and the scope (principal and grants) it was computed
under. Re-harvests never change a version: graph rows are never deleted, only retired. ``refresh`` computes a new version against current data and reports
the diff; any two versions can be compared.

Visibility: a cohort is visible to its owner, to everyone when ``shared``, and to admins; only its owner (or
an admin) changes it. Deleting is soft.
"""

from oncograph.cohorts.saved.freezing import (
    create_from_filter,
    create_from_ids,
    member_hash,
    refresh,
    set_operation,
)
from oncograph.cohorts.saved.reading import (
    delete,
    diff,
    get,
    list_cohorts,
    member_patient_ids,
    members,
    set_shared,
    version,
)
from oncograph.cohorts.saved.records import SET_OPS, CohortInfo, Diff, MemberPage, SetOp, Version

__all__ = [
    "SET_OPS",
    "CohortInfo",
    "Diff",
    "MemberPage",
    "SetOp",
    "Version",
    "create_from_filter",
    "create_from_ids",
    "delete",
    "diff",
    "get",
    "list_cohorts",
    "member_hash",
    "member_patient_ids",
    "members",
    "refresh",
    "set_operation",
    "set_shared",
    "version",
]
