"""One child id, one case: a record that gives a diagnosis, treatment, sample ... id that another case owns is
refused (quarantined), never written.

Left alone, such a record would either move the child to the other case without a word (an upsert by id
updates its ``patient_id``) or fail its whole batch on a unique constraint (a demographic is matched by its
patient, so a reused ``demographic_id`` collides). The first owner wins: the one already stored, else the
earliest record of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.db.kinds import KINDS, Kind
from oncograph.domain import Problem
from oncograph.ingest.mapping import MappedRecord

#: Kinds whose rows belong to one patient (their ``_patient`` parent), by name.
_OWNED: dict[str, Kind] = {k.name: k for k in KINDS if any(p.stage_key == "_patient" for p in k.parents)}


Claims = dict[tuple[str, str], str]
"""``{(kind, child id): case id}`` for every patient-owned row of a mapped record."""


def owner_claims(m: MappedRecord) -> Claims:
    """What :func:`check_child_owners` checks of a record (CPU only: computed off the writing thread)."""
    out: Claims = {}
    for name, rows in m.rows.items():
        kind = _OWNED.get(name)
        if kind is None:
            continue
        key = kind.key
        for row in rows:
            out[(name, row[key])] = row["_patient"]
    return out


def _stored_owners(session: Session, keys: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    """The case id that owns each stored child id (one query for every kind)."""
    parts: list[str] = []
    params: dict[str, object] = {}
    for i, (name, ids) in enumerate(sorted(keys.items())):
        kind = _OWNED[name]
        # identifiers come from the kinds registry, never from input; the ids (canonical UUIDs, mapped) are
        # one comma-separated text: binding them as a list cost the driver ~3 us an id (~0.35 s of 5,000 cases)
        parts.append(
            f"SELECT CAST(:n{i} AS text), CAST(t.{kind.key} AS text), CAST(p.case_id AS text) FROM {name} t "
            f"JOIN patient p ON p.id = t.patient_id "
            f"WHERE t.{kind.key} = ANY(CAST(string_to_array(:k{i}, ',') AS uuid[]))"
        )
        params[f"n{i}"] = name
        params[f"k{i}"] = ",".join(sorted(ids))
    if not parts:
        return {}
    rows = session.execute(text(" UNION ALL ".join(parts)), params)
    return {(str(name), str(key)): str(case) for name, key, case in rows}


def check_child_owners(
    session: Session, mapped: Sequence[MappedRecord], claims: Sequence[Claims] | None = None
) -> int:
    """Add a problem to each record that claims a child id another case owns; returns how many got one.

    ``claims``: each record's :func:`owner_claims`, when already computed."""
    if claims is None:
        claims = [owner_claims(m) for m in mapped]
    wanted: dict[str, set[str]] = {}
    for claim in claims:
        for name, key in claim:
            wanted.setdefault(name, set()).add(key)
    owners = _stored_owners(session, wanted)
    stored = set(owners)
    refused = 0
    for m, claim in zip(mapped, claims, strict=True):
        clashes = [
            (name, key, owners[(name, key)])
            for (name, key), case in claim.items()
            if owners.get((name, key), case) != case
        ]
        if not clashes:
            owners.update(claim)
            continue
        refused += 1
        for name, key, owner in clashes[:3]:
            where = "is stored under" if (name, key) in stored else "is given earlier in this batch to"
            m.problems.append(
                Problem(
                    m.record.path,
                    f"{name} {key} {where} case {owner}: one id cannot belong to two cases; the source "
                    "reuses it, so fix that row (or import the source that has it right)",
                )
            )
        if len(clashes) > 3:
            m.problems.append(Problem(m.record.path, f"... and {len(clashes) - 3} more ids of other cases"))
    return refused
