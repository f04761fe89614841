"""Load IDC's series index into the graph in bulk: ``idc_patient`` -> ``imaging_study`` -> ``imaging_series``.

One run = one index file: a ``source_release`` (``idc v25 (idc-index-data 25.0.5)``) and one
``source_document`` that points to the file by sha256; each series row also records its row number in that
file (``index_row``). The file is read and checked before anything is written; then everything happens in
ONE transaction, so a failure leaves the graph as it was (the run is recorded as failed).

The rows travel as two binary ``COPY`` streams built with Arrow: the groups (one per study, collection and
patient), from which patients and studies are merged, then the series — straight into ``imaging_series``
when it is empty (ids looked up per group on the client), else into a staging table and merged.

Per entity: rows whose values changed are updated (series by ``row_hash``, studies by their columns), rows
seen again move ``last_seen_release_id`` (and are un-retired), new rows are inserted, and the load retires
the rows of the collections it covers that the file no longer has. Re-loading the same file changes
nothing. Merges are ``UPDATE ... FROM`` + ``INSERT ... WHERE NOT EXISTS`` rather than ``INSERT ... ON
CONFLICT DO UPDATE ... WHERE``: the latter locks (and so writes) every conflicting row even when its
``WHERE`` rejects the update, which would turn a no-op re-run into a million row locks. The ``idc`` source
lock makes this the only writer of these tables.

Bulk-load measures (PostgreSQL manual, "Populating a Database"), inside the transaction:

- a table the load writes largely (empty, or a new release touching most rows) gets its indexes dropped
  (the primary key too when no foreign key references it) and built again after the writes, when the role
  owns it;
- when the role may set ``session_replication_role``, the data foreign keys (series -> study and patient,
  study -> patient) are checked with one anti-join per constraint after the writes instead of one trigger
  query per row and constraint; the lineage columns hold the run's own document and release, locked as the
  triggers would lock them. A violation fails the load. Without the privilege the triggers run.
"""

from __future__ import annotations

import difflib
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.documents import pack
from oncograph.db.engine import transaction
from oncograph.errors import NotFoundError, ValidationError
from oncograph.ingest import idc_bulk as bulk
from oncograph.ingest import idc_merge as sql
from oncograph.ingest.progress import Progress
from oncograph.ingest.writer import insert_quarantine
from oncograph.lineage.locks import abandon_stale_runs, source_lock
from oncograph.lineage.runs import RunHandle, ensure_release, finish_run, set_run_release, start_run
from oncograph.sources.idc import IndexFile, SeriesRows, open_index, read_series

log = logging.getLogger(__name__)

TRANSFORM: Final = "ingest_idc"
SOURCE: Final = "idc"
DOCUMENT_SOURCE: Final = "idc_index"
KINDS: Final = ("idc_patient", "imaging_study", "imaging_series")


@dataclass(slots=True)
class KindOutcome:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    retired: int = 0

    def record(self, counts: tuple[int, int, int]) -> None:
        self.inserted, self.updated, self.unchanged = counts

    def as_dict(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
            "retired": self.retired,
        }


@dataclass(slots=True)
class IdcImport:
    """What :func:`import_idc` did.

    Attributes:
        run: the run (transform ``ingest_idc``).
        release: the ``source_release`` label, e.g. ``idc v25 (idc-index-data 25.0.5)``.
        index: the file that was loaded.
        collections: the collections the load covered (and may have retired rows in).
        entities: per kind, ``inserted/updated/unchanged/quarantined/retired``.
        warnings: values stored as NULL or altered while reading (see ``oncograph.sources.idc``).
        bulk: how the load wrote (``index_rebuild``, ``set_based_fk_checks``), for the record.
    """

    run: RunHandle
    release: str
    index: IndexFile
    collections: tuple[str, ...]
    entities: dict[str, KindOutcome] = field(default_factory=lambda: {k: KindOutcome() for k in KINDS})
    warnings: list[str] = field(default_factory=list)
    bulk: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run.id,
            "release": self.release,
            "index": {
                "file": str(self.index.path),
                "sha256": self.index.sha256,
                "rows": self.index.row_count,
            },
            "collections": len(self.collections),
            "entities": {k: v.as_dict() for k, v in self.entities.items()},
            "warnings": self.warnings[:50],
            "bulk": self.bulk,
        }


def import_idc(
    factory: sessionmaker[Session],
    *,
    collections: Sequence[str] | None = None,
    index_path: Path | None = None,
    prefect_flow_run_id: str | None = None,
    progress: Progress | None = None,
) -> IdcImport:
    """Load the IDC series index (every collection, or ``collections``) into the graph.

    The file is read and validated before anything is written. The load is complete for the collections it
    covers: rows of those collections that an earlier release had and this file lacks are retired.

    Args:
        factory: sessions on the oncograph database (migrated).
        collections: IDC ``collection_id`` values (e.g. ``tcga_luad``); ``None`` loads the whole index.
        index_path: another index Parquet file; default the one ``idc-index-data`` ships.
        prefect_flow_run_id: recorded on the run when a flow started it.
        progress: called with ``("IDC index", steps done, 3)``: read, checked, loaded.

    Returns:
        Counts per entity kind, the run and the release.

    Raises:
        IndexFileError: the file is missing or unreadable (nothing is written).
        InputFormatError: the file is not a series index (nothing is written).
        NotFoundError: a requested collection is neither in the file nor stored.
        ValidationError: a foreign key check failed (the load was rolled back).
    """
    step = progress or (lambda label, done, total: None)
    step("IDC index", 0, 3)
    index = open_index(index_path)
    rows = read_series(index, collections=collections)
    step("IDC index", 1, 3)
    bind = factory.kw["bind"]
    with source_lock(bind, SOURCE):
        abandon_stale_runs(bind, TRANSFORM)
        covered = _covered_collections(factory, rows, collections)
        step("IDC index", 2, 3)
        with transaction(factory) as s:
            release_id = ensure_release(
                s, source=SOURCE, release=index.release_label(), details=index.pointer()
            )
            run = start_run(
                s,
                transform=TRANSFORM,
                parameters={
                    "collections": "all" if collections is None else list(collections),
                    "index": str(index.path),
                },
                prefect_flow_run_id=prefect_flow_run_id,
            )
            set_run_release(s, run, release_id)
        result = IdcImport(run, index.release_label(), index, covered)
        try:
            with transaction(factory) as s:
                _load(s, result, rows, release_id=release_id, everything=collections is None)
        except Exception as exc:
            with transaction(factory) as s:
                finish_run(s, run, status="failed", counts={"release": result.release}, error=str(exc))
            raise
        with transaction(factory) as s:
            finish_run(s, run, status="succeeded", counts=result.as_dict())
        step("IDC index", 3, 3)
    log.info("idc run %s loaded %s (%s)", run.id, index.path, result.release)
    return result


def _covered_collections(
    factory: sessionmaker[Session], rows: SeriesRows, requested: Sequence[str] | None
) -> tuple[str, ...]:
    """The collections this load is complete for; a requested one that nobody knows is an error."""
    if requested is None:
        return rows.collections
    missing = sorted(
        set(requested) - set(rows.collections) - {q.raw.get("collection_id") for q in rows.quarantined}
    )
    if missing:
        with transaction(factory) as s:
            stored = set(
                s.execute(
                    text("SELECT DISTINCT collection_id FROM idc_patient WHERE collection_id = ANY(:c)"),
                    {"c": missing},
                ).scalars()
            )
        unknown = [c for c in missing if c not in stored]
        if unknown:
            close = {c: difflib.get_close_matches(c, rows.file_collections, n=3) for c in unknown}
            raise NotFoundError(
                f"collection {', '.join(unknown)} is not in the IDC index and not stored",
                hint="IDC collection ids are lower case with underscores (tcga_luad)"
                + "".join(f"; for {c} did you mean {', '.join(m)}" for c, m in close.items() if m),
            )
    return tuple(sorted(set(requested)))


def _load(
    session: Session, result: IdcImport, rows: SeriesRows, *, release_id: int, everything: bool
) -> None:
    run_id = result.run.id
    doc_id = _index_document(session, result.index, release_id=release_id, run_id=run_id)
    params = {"doc": doc_id, "rel": release_id}
    insert_quarantine(
        session,
        (
            {
                "source": DOCUMENT_SOURCE,
                "entity_type": "series",
                "entity_id": q.entity_id,
                "location": q.location,
                "reasons": list(q.reasons),
                "raw": q.raw,
            }
            for q in rows.quarantined
        ),
        run_id=run_id,
    )
    result.entities["imaging_series"].quarantined = len(rows.quarantined)
    result.bulk["set_based_fk_checks"] = skip_triggers = bulk.begin_bulk(
        session, doc_id=doc_id, release_id=release_id
    )
    sql.stage_groups(session, rows.group_chunks())
    merged = {
        "idc_patient": sql.merge_patients(session, params),
        "imaging_study": sql.merge_studies(session, params),
    }
    sql.link_groups(session)
    if sql.is_empty(session, "imaging_series"):
        layout = functools.partial(sql.direct_layout, ids=sql.group_ids(session), params=params)
        merged["imaging_series"] = sql.copy_series(
            session, rows.copy_chunks(layout), params, rows=rows.rows_valid
        )
    else:
        staged = sql.stage_series(session, rows.copy_chunks(sql.stage_layout))
        merged["imaging_series"] = sql.merge_series(session, params, staged=staged)
    entities = result.entities
    for kind, done in merged.items():
        entities[kind].record(done.counts)
    result.bulk["index_rebuild"] = [kind for kind, done in merged.items() if done.rebuilt]
    result.warnings = list(rows.warnings)
    scope = None if everything else list(result.collections)
    for kind in KINDS:
        if not merged[kind].empty:  # a table that was empty has nothing older to retire
            entities[kind].retired = sql.retire(session, kind, release_id=release_id, collections=scope)
    if skip_triggers:
        broken = bulk.foreign_key_violations(session, KINDS)
        if broken:
            raise ValidationError(f"the IDC load broke foreign keys, rolled back: {'; '.join(broken)}")
    sql.drop_staging(session)
    bulk.end_bulk(session, skipped_triggers=skip_triggers)


def _index_document(session: Session, index: IndexFile, *, release_id: int, run_id: int) -> int:
    """The file's ``source_document`` (a pointer to it), stored once per content hash."""
    params = {
        "source": DOCUMENT_SOURCE,
        "type": "index_file",
        "entity": index.name,
        "hash": index.sha256,
        "rel": release_id,
        "run": run_id,
        "location": str(index.path),
        "raw": index.pointer(),
    }
    found = session.execute(
        text(
            "INSERT INTO source_document (source, entity_type, entity_id, content_hash, release_id, run_id, "
            "location, raw_zstd) VALUES (:source, :type, :entity, :hash, :rel, :run, :location, :raw) "
            "ON CONFLICT (source, entity_type, entity_id, content_hash) DO NOTHING RETURNING id"
        ),
        {**params, "raw": pack(params["raw"])},
    ).scalar_one_or_none()
    if found is not None:
        return int(found)
    return int(
        session.execute(
            text(
                "SELECT id FROM source_document WHERE source = :source AND entity_type = :type "
                "AND entity_id = :entity AND content_hash = :hash"
            ),
            params,
        ).scalar_one()
    )
