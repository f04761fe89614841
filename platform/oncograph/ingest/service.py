"""Ingest batches of source records into the graph: map, validate, quarantine, upsert; one transaction a batch.

A batch either lands whole (its documents, rows, links and quarantine entries) or not at all, so an error or
a killed process never leaves half a batch behind, and re-running a batch is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.engine import transaction
from oncograph.db.kinds import KINDS
from oncograph.db.triggers import restore_row_triggers, skip_row_triggers
from oncograph.domain import Problem, SourceRecord
from oncograph.domain.records import content_hash
from oncograph.ingest.mapping import MappedRecord, map_record
from oncograph.ingest.owners import Claims, check_child_owners, owner_claims
from oncograph.ingest.writer import (
    LINKS,
    EncodedDocuments,
    KindCounts,
    UpsertPlan,
    encode_documents,
    encode_rows,
    insert_documents,
    insert_quarantine,
    plan_upsert,
    run_upsert,
    write_links,
)

log = logging.getLogger(__name__)


#: The graph kind a quarantined record is counted under.
_QUARANTINE_KIND = {"case": "patient", "file": "data_file", "project": "project"}


@dataclass(slots=True)
class IngestCounts:
    """What a run (or one batch) did, per entity kind."""

    kinds: dict[str, KindCounts] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    links: dict[str, dict[str, int]] = field(default_factory=dict)
    records: int = 0
    documents_new: int = 0
    problems: list[Problem] = field(default_factory=list)
    retired: dict[str, int] = field(default_factory=dict)

    def add(self, other: IngestCounts) -> None:
        for name, kc in other.kinds.items():
            self.kinds.setdefault(name, KindCounts()).add(kc)
        for name, n in other.quarantined.items():
            self.quarantined[name] = self.quarantined.get(name, 0) + n
        for link, lc in other.links.items():
            mine = self.links.setdefault(link, {"staged": 0, "resolved": 0, "inserted": 0})
            for k, v in lc.items():
                mine[k] += v
        for name, n in other.retired.items():
            self.retired[name] = self.retired.get(name, 0) + n
        self.records += other.records
        self.documents_new += other.documents_new
        self.problems.extend(other.problems[: max(0, 1000 - len(self.problems))])

    def entities(self) -> dict[str, dict[str, int]]:
        """``{kind: {inserted, updated, unchanged, quarantined[, retired]}}`` for every kind touched."""
        out: dict[str, dict[str, int]] = {}
        for kind in KINDS:
            counts = self.kinds.get(kind.name)
            quarantined = self.quarantined.get(kind.name, 0)
            retired = self.retired.get(kind.name, 0)
            if counts is None and not quarantined and not retired:
                continue
            out[kind.name] = {**(counts or KindCounts()).as_dict(), "quarantined": quarantined}
            if retired:
                out[kind.name]["retired"] = retired
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "documents_new": self.documents_new,
            "entities": self.entities(),
            "links": self.links,
            "problems": [str(p) for p in self.problems[:50]],
        }


def batched(records: Iterable[SourceRecord], size: int) -> Iterator[list[SourceRecord]]:
    it = iter(records)
    while batch := list(islice(it, size)):
        yield batch


@dataclass(frozen=True, slots=True)
class Encoded:
    """What the statements of one write bind, for one list of good records: their documents (with content
    hashes; then the shared documents they name, once each), each kind's upsert plan and the file links, all
    encoded as JSON. A row's ``_doc`` is its record's position in that list (the statements look the
    document ids up by it)."""

    count: int
    """How many records it was encoded for."""
    documents: EncodedDocuments
    upserts: list[UpsertPlan]
    links: list[tuple[str, str, int]]
    """(link, its rows as JSON, how many rows)."""


def encode(good: Sequence[MappedRecord]) -> Encoded:
    """Encode the writes of ``good`` (CPU only: :func:`prepare_batch` does it off the writing thread)."""
    docs = [
        {
            "source": m.record.source,
            "entity_type": m.record.entity_type,
            "entity_id": m.entity_id,
            "content_hash": content_hash(m.record.raw),
            "location": m.record.path,
            "raw": m.record.raw,
        }
        for m in good
    ]
    shared = {(m.record.source, doc.ref): (m.record.source, doc) for m in good for doc in m.record.shared}
    docs += [  # after the records' documents, so that a row's _doc is its record's position
        {
            "source": source,
            "entity_type": doc.entity_type,
            "entity_id": doc.content_hash,
            "content_hash": doc.content_hash,
            "location": doc.location,
            "raw": doc.raw,
        }
        for source, doc in shared.values()
    ]
    for index, m in enumerate(good):
        for rows in m.rows.values():
            for row in rows:
                row["_doc"] = index
    upserts = [
        plan_upsert(kind, rows) for kind in KINDS if (rows := _merge_by_key(good, kind.name, kind.key))
    ]
    links = []
    for link in LINKS:
        link_rows = [row for m in good for row in m.links.get(link, [])]
        if link_rows:
            links.append((link, encode_rows(link_rows), len(link_rows)))
    return Encoded(len(good), encode_documents(docs), upserts, links)


@dataclass(slots=True)
class PreparedBatch:
    """A batch mapped, validated and encoded in memory (no database needed), ready to write.

    Case records that arrive without a GDC UUID are mapped at write time, when stored patients can be
    looked up by submitter id (such a batch is encoded at write time too).
    """

    records: Sequence[SourceRecord]
    mapped: list[MappedRecord]
    deferred: list[SourceRecord]
    claims: list[Claims]
    """Each mapped record's child ids, for the check of child owners (``owners.owner_claims``)."""
    encoded: Encoded | None = None
    """The writes of the mapped records without problems; used unless the database check of child owners
    refuses one of them (then the rest is encoded again)."""


def prepare_batch(records: Sequence[SourceRecord]) -> PreparedBatch:
    """Map, validate and encode ``records`` (CPU only, so it can run while the previous batch is written:
    the writing thread then mostly waits for PostgreSQL, with the GIL released)."""
    mapped, deferred = [], []
    for r in records:
        if (
            r.entity_type == "case"
            and not r.document.get("case_id")
            and not r.document.get("id")
            and not r.problems
        ):
            deferred.append(r)
        else:
            mapped.append(map_record(r))
    encoded = None if deferred else encode([m for m in mapped if not m.problems])
    return PreparedBatch(records, mapped, deferred, [owner_claims(m) for m in mapped], encoded)


def ingest_batch(
    factory: sessionmaker[Session],
    records: Sequence[SourceRecord] | PreparedBatch,
    *,
    release_id: int,
    run_id: int,
) -> IngestCounts:
    """Ingest one batch in one transaction and return what it did."""
    with transaction(factory) as session:
        return write_batch(session, records, release_id=release_id, run_id=run_id)


def write_batch(
    session: Session, records: Sequence[SourceRecord] | PreparedBatch, *, release_id: int, run_id: int
) -> IngestCounts:
    """Map (unless prepared), validate and write a batch inside the caller's transaction.

    A record is quarantined (with its reasons, in the same transaction) instead of failing the batch when it
    has problems, when it gives a child id (diagnosis, treatment, sample ...) that another case already owns,
    or when the database refuses it anyway: the good records of the batch are written in a savepoint, and a
    refused savepoint is split in halves until the refused record is alone.
    """
    batch = records if isinstance(records, PreparedBatch) else prepare_batch(records)
    counts = IngestCounts(records=len(batch.records))
    mapped = list(batch.mapped)
    claims = list(batch.claims)
    if batch.deferred:
        resolver = _resolve_submitters(session, batch.records)
        late = [map_record(r, case_ids_by_submitter=resolver) for r in batch.deferred]
        mapped += late
        claims += [owner_claims(m) for m in late]
    unrefused = [i for i, m in enumerate(mapped) if not m.problems]
    check_child_owners(session, [mapped[i] for i in unrefused], [claims[i] for i in unrefused])
    good = [m for m in mapped if not m.problems]
    encoded = batch.encoded if batch.encoded is not None and batch.encoded.count == len(good) else None
    refused = _write_isolating(session, good, counts, release_id=release_id, run_id=run_id, encoded=encoded)
    bad = [m for m in mapped if m.problems]
    for m in bad:
        qkind = _QUARANTINE_KIND[m.record.entity_type]
        counts.quarantined[qkind] = counts.quarantined.get(qkind, 0) + 1
        counts.problems.extend(m.problems)
    insert_quarantine(session, (_quarantine_entry(m) for m in bad), run_id=run_id)
    if refused:
        log.warning("%d record(s) refused by the database were quarantined", len(refused))
    return counts


def _write_isolating(
    session: Session,
    good: list[MappedRecord],
    counts: IngestCounts,
    *,
    release_id: int,
    run_id: int,
    encoded: Encoded | None = None,
) -> list[MappedRecord]:
    """Write ``good`` (``encoded``: its writes, when already encoded) in a savepoint; when the database
    refuses it, bisect to find the refused records.

    Returns the refused records, each with a problem saying what the database said.
    """
    if not good:
        return []
    try:
        with session.begin_nested():
            part = _write_rows(session, encoded or encode(good), release_id=release_id, run_id=run_id)
    except (DataError, IntegrityError) as exc:
        if len(good) == 1:
            (m,) = good
            m.problems.append(Problem(m.record.path, f"the database refused the record: {_db_message(exc)}"))
            return good
        half = len(good) // 2
        return _write_isolating(
            session, good[:half], counts, release_id=release_id, run_id=run_id
        ) + _write_isolating(session, good[half:], counts, release_id=release_id, run_id=run_id)
    counts.add(part)
    return []


def _db_message(exc: DataError | IntegrityError) -> str:
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(orig).splitlines()[0]
    detail = getattr(diag, "message_detail", None)
    return f"{primary} ({detail})" if detail else str(primary)


def _write_rows(session: Session, encoded: Encoded, *, release_id: int, run_id: int) -> IngestCounts:
    counts = IngestCounts()
    skipped = skip_row_triggers(session)
    doc_ids, counts.documents_new = insert_documents(
        session, encoded.documents, release_id=release_id, run_id=run_id
    )
    for plan in encoded.upserts:
        counts.kinds[plan.kind.name] = run_upsert(session, plan, release_id=release_id, doc_ids=doc_ids)
    for link, link_rows, staged in encoded.links:
        resolved, inserted = write_links(session, link, link_rows)
        counts.links[link] = {"staged": staged, "resolved": resolved, "inserted": inserted}
    if skipped:
        restore_row_triggers(session)
    return counts


def _merge_by_key(mapped: Sequence[MappedRecord], kind: str, key: str) -> list[dict[str, Any]]:
    """Rows of one kind across a batch, one per key (later records win; columns are merged). A row is
    copied only when another one shares its key (the mapped rows are never changed)."""
    merged: dict[Any, dict[str, Any]] = {}
    for m in mapped:
        for row in m.rows.get(kind, ()):
            k = row[key]
            found = merged.get(k)
            merged[k] = row if found is None else {**found, **row}
    return list(merged.values())


def _resolve_submitters(session: Session, records: Sequence[SourceRecord]) -> dict[str, str]:
    """case_id by submitter_id, for case records that arrive without their GDC UUID."""
    wanted: set[str] = set()
    known: dict[str, str] = {}
    for r in records:
        if r.entity_type != "case":
            continue
        sub, cid = r.document.get("submitter_id"), r.document.get("case_id")
        if isinstance(sub, str) and cid:
            known[sub] = str(cid).lower()
        elif isinstance(sub, str):
            wanted.add(sub)
    missing = wanted - known.keys()
    if missing:
        rows = session.execute(
            text(
                "SELECT submitter_id, min(CAST(case_id AS text)) FROM patient WHERE submitter_id = ANY(:subs) "
                "GROUP BY submitter_id HAVING count(*) = 1"
            ),
            {"subs": sorted(missing)},
        )
        known.update({str(s): str(c) for s, c in rows})
    return known


def _quarantine_entry(m: MappedRecord) -> dict[str, Any]:
    return {
        "source": m.record.source,
        "entity_type": m.record.entity_type,
        "entity_id": m.record.entity_id,
        "location": m.record.path,
        "reasons": [str(p) for p in m.problems],
        "raw": m.record.whole_raw(),
    }
