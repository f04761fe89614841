"""``oncograph ingest pdc``: PDC studies, cases and files from the GraphQL API (or the stand-in) into the graph.

**Plan.** The studies named (``PDC000111`` or a study submitter id such as ``S038-3``), else every study of
``studyCatalog``. For each: its ``study`` record, its cases with samples and aliquots
(``paginatedCasesSamplesAliquots``) and its files (``filesPerStudy``, once per ``file_types`` entry if given).
Then the cases named by submitter id (``case``). Each study is fetched whole, then written in one transaction,
so a failure (transport, or a GraphQL ``errors`` answer) leaves nothing of that study behind and everything
written before it intact; the run is marked failed with the error.

**Rows.** Every fetched item is a ``source_document`` (source ``pdc_graphql``, entity type study/case/file); the
graph rows point to it. ``pdc_study`` is keyed by ``pdc_study_id``, ``pdc_case`` by PDC's ``case_id`` or a UUIDv5
of ``(project_submitter_id, case_submitter_id)``, ``pdc_file`` by ``file_id`` or a UUIDv5 of ``(study submitter
id or PDC study id, file_name)``; derived keys set ``key_derived`` and are promoted in place when the real id
arrives. A case listed by a study gets a ``pdc_study_case`` row. Samples, aliquots and demographics (a list in
PDC) stay in the case documents: the recordings contain none to test a table against. An item that is not an
object, lacks its key fields or has a value of the wrong type is quarantined with its raw content.

**Release.** ``source_release`` (source ``pdc``) is the stand-in's recorded-data label or the live harvest date
(:meth:`~oncograph.sources.pdc.client.PdcClient.release_label`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.columns import CoercionError, coerce
from oncograph.db.engine import transaction
from oncograph.db.kinds import Kind, ParentLink
from oncograph.domain.records import content_hash
from oncograph.ingest.mapping import nul_fields
from oncograph.ingest.progress import Progress
from oncograph.ingest.writer import KindCounts, insert_documents, insert_quarantine, upsert_kind
from oncograph.lineage.locks import abandon_stale_runs, source_lock
from oncograph.lineage.runs import RunHandle, ensure_release, finish_run, set_run_release, start_run
from oncograph.sources.pdc.client import PdcClient, PdcPage
from oncograph.sources.pdc.queries import study_key
from oncograph.sources.pdc.records import declared_gdc_case_id, derived_key, files_count_total, natural_key

TRANSFORM: Final = "ingest_pdc"
DOC_SOURCE: Final = "pdc_graphql"

STUDY: Final = Kind("pdc_study", "pdc_study_id", "text")
CASE: Final = Kind("pdc_case", "case_id", "uuid")
_STUDY_LINK: Final = ParentLink("study_row_id", "pdc_study", "pdc_study_id", "_study", "text", required=False)
FILE: Final = Kind("pdc_file", "file_id", "uuid", (_STUDY_LINK,))
PDC_KINDS: Final = (STUDY, CASE, FILE)
_DERIVED_FROM: Final = frozenset(
    {"case_id", "key_derived", "gdc_case_id", "gdc_case_id_field", "file_id", "files_count"}
)
"""Columns set by the mapping itself rather than copied from a field of the same name."""

Entity = Literal["study", "case", "file"]


@dataclass(frozen=True, slots=True)
class Item:
    """One fetched answer item, with where it came from and the study it was fetched for."""

    entity: Entity
    raw: Any
    location: str
    study: str | None = None


@dataclass(slots=True)
class PdcCounts:
    """What a run (or one study) did: per table inserted/updated/unchanged/quarantined, links, notes."""

    kinds: dict[str, KindCounts] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    links: dict[str, int] = field(default_factory=dict)
    documents_new: int = 0
    items: int = 0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, other: PdcCounts) -> None:
        """Accumulate ``other`` into this."""
        for name, kc in other.kinds.items():
            self.kinds.setdefault(name, KindCounts()).add(kc)
        for mine, theirs in ((self.quarantined, other.quarantined), (self.links, other.links)):
            for name, n in theirs.items():
                mine[name] = mine.get(name, 0) + n
        self.documents_new += other.documents_new
        self.items += other.items
        self.notes.extend(other.notes)
        self.problems.extend(other.problems[: max(0, 1000 - len(self.problems))])

    def entities(self) -> dict[str, dict[str, int]]:
        """``{table: {inserted, updated, unchanged, quarantined}}`` for every PDC table."""
        out = {}
        for name in ("pdc_study", "pdc_case", "pdc_study_case", "pdc_file"):
            counts = self.kinds.get(name, KindCounts()).as_dict()
            out[name] = {**counts, "quarantined": self.quarantined.get(name, 0)}
        return out

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able summary (stored in ``run.counts``)."""
        return {
            "items": self.items,
            "documents_new": self.documents_new,
            "entities": self.entities(),
            "links": self.links,
            "notes": self.notes[:100],
            "problems": self.problems[:100],
        }


@dataclass(frozen=True, slots=True)
class PdcIngest:
    """The run and the source release of one import."""

    run: RunHandle
    release_id: int
    release: str


def ingest_pdc(
    factory: sessionmaker[Session],
    client: PdcClient,
    *,
    studies: Sequence[str] | None = None,
    file_types: Sequence[str] = (),
    cases: Sequence[str] = (),
    page_size: int | None = None,
    on_unit: Callable[[str, PdcCounts], None] | None = None,
    progress: Progress | None = None,
) -> tuple[PdcIngest, PdcCounts]:
    """Import PDC studies (with their cases and files) and cases by submitter id; one transaction per study.

    Args:
        factory: session factory of a migrated database.
        client: a PDC client (or anything with its methods).
        studies: ``PDC000111`` ids or study submitter ids; None means every study of ``studyCatalog``.
        file_types: ``filesPerStudy`` file types to fetch (e.g. ``RAW``); empty means all.
        cases: case submitter ids to fetch with ``case`` (e.g. ``01BR001``).
        page_size: ``limit`` of paged queries (default: the client's).
        on_unit: called after each study (and the named cases) is written, with its label and counts.
        progress: called with ``("PDC studies", units written, units in all)`` (the named cases are one unit).

    Raises:
        SourceError: PDC failed or answered with GraphQL errors (earlier studies stay written).
    """
    bind = factory.kw["bind"]
    with source_lock(bind, "pdc"):
        abandon_stale_runs(bind, TRANSFORM)
        release = client.release_label()
        with transaction(factory) as s:
            release_id = ensure_release(s, source="pdc", release=release, details={"url": client.url})
            parameters = {"studies": studies, "file_types": list(file_types), "cases": list(cases)}
            run = start_run(s, transform=TRANSFORM, parameters={**parameters, "pdc_url": client.url})
            set_run_release(s, run, release_id)
        handle = PdcIngest(run, release_id, release)
        total = PdcCounts()
        try:
            selectors = list(studies) if studies is not None else client.study_catalog()
            units = len(selectors) + (1 if cases else 0)
            if progress is not None:
                progress("PDC studies", 0, units)
            for done, (label, items) in enumerate(_units(client, selectors, file_types, cases, page_size), 1):
                with transaction(factory) as s:
                    unit = write_items(s, items, release_id=release_id, run_id=run.id)
                total.add(unit)
                if on_unit is not None:
                    on_unit(label, unit)
                if progress is not None:
                    progress("PDC studies", done, units)
            with transaction(factory) as s:
                total.links["pdc_file_study_resolved_later"] = link_files_to_studies(s)
        except BaseException as exc:
            with transaction(factory) as s:
                summary = {"release": release, "totals": total.as_dict()}
                finish_run(s, run, status="failed", counts=summary, error=f"{type(exc).__name__}: {exc}")
            raise
        with transaction(factory) as s:
            finish_run(s, run, status="succeeded", counts={"release": release, "totals": total.as_dict()})
    return handle, total


def _units(
    client: PdcClient,
    selectors: list[str],
    file_types: Sequence[str],
    cases: Sequence[str],
    page_size: int | None,
) -> Iterable[tuple[str, list[Item]]]:
    """(label, items) per study, then the named cases; each unit is fetched completely before it is yielded."""
    by_id = client.studies([s for s in selectors if study_key(s) == "pdc_study_id"])
    for selector in selectors:
        page = by_id.get(selector) or client.study(selector)
        items = _items("study", page, client.url, selector)
        for cases_page in client.iter_study_cases(selector, page_size=page_size):
            items += _items("case", cases_page, client.url, selector)
        types: list[str | None] = [*file_types] or [None]
        for file_type in types:
            for files_page in client.iter_study_files(selector, file_type=file_type, page_size=page_size):
                items += _items("file", files_page, client.url, selector)
        yield f"study {selector}", items
    if cases:
        yield "cases", [i for sub in cases for i in _items("case", client.cases(sub), client.url, None)]


def _items(entity: Entity, page: PdcPage, url: str, study: str | None) -> list[Item]:
    return [Item(entity, raw, page.location(url, i), study) for i, raw in enumerate(page.items)]


# ---------------------------------------------------------------------------------------------- mapping


def _columns(kind: Kind, raw: dict[str, Any], problems: list[str], where: str) -> dict[str, Any]:
    """The kind's columns the item carries (absent fields are not written), coerced to their types."""
    row: dict[str, Any] = {}
    for column, column_type in kind.spec.columns.items():
        if column in raw and column not in _DERIVED_FROM:
            try:
                row[column] = coerce(raw[column], column_type)
            except CoercionError as exc:
                problems.append(f"{where} > {column}: {exc}")
    return row


def _key(item: Item, kind: Kind, problems: list[str]) -> dict[str, Any]:
    """``{key, key_derived}``: PDC's UUID, else a UUIDv5 of the natural key, else a problem."""
    assert item.entity in ("case", "file")
    raw, where = item.raw, item.location
    if raw.get(kind.key):
        try:
            return {kind.key: coerce(raw[kind.key], "uuid"), "key_derived": False}
        except CoercionError as exc:
            problems.append(f"{where} > {kind.key}: {exc}")
            return {}
    natural = natural_key(item.entity, raw, item.study)
    if natural is None:
        problems.append(f"{where}: no {kind.key} and no natural key; the {item.entity} cannot be keyed")
        return {}
    return {kind.key: derived_key(item.entity, natural), "key_derived": True}


def map_item(item: Item) -> tuple[dict[str, Any] | None, list[str]]:
    """The graph row of one item (key and ``key_derived`` included), or None and the problems."""
    where, raw = item.location, item.raw
    problems: list[str] = []
    if not isinstance(raw, dict):
        return None, [f"{where}: expected a JSON object, got {type(raw).__name__}: {str(raw)[:80]!r}"]
    nul = nul_fields(raw)
    if nul:
        return None, [f"{where}: a NUL character (\\x00) in {', '.join(nul[:3])}, which cannot be stored"]
    kind = _kind(item.entity)
    row = _columns(kind, raw, problems, where)
    if item.entity == "study":
        if not isinstance(raw.get("pdc_study_id"), str) or not raw["pdc_study_id"]:
            problems.append(f"{where}: no pdc_study_id")
        if "filesCount" in raw:
            row["files_count"] = files_count_total(raw)
    else:
        if item.entity == "case" and not raw.get("case_submitter_id"):
            problems.append(f"{where}: no case_submitter_id")
        row.update(_key(item, kind, problems))
    if item.entity == "case" and ("gdc_case_id" in raw or "externalReferences" in raw):
        gdc, source, problem = declared_gdc_case_id(raw)
        row.update(gdc_case_id=gdc, gdc_case_id_field=source)
        problems.extend([f"{where}: {problem}"] if problem else [])
    return (None, problems) if problems else (row, [])


# ---------------------------------------------------------------------------------------------- writing


def write_items(session: Session, items: Sequence[Item], *, release_id: int, run_id: int) -> PdcCounts:
    """Map, quarantine and upsert one unit of items inside the caller's transaction."""
    counts = PdcCounts(items=len(items))
    good: list[tuple[Item, dict[str, Any]]] = []
    bad: list[dict[str, Any]] = []
    for item in items:
        row, problems = map_item(item)
        if row is None:
            table = f"pdc_{item.entity}"
            counts.quarantined[table] = counts.quarantined.get(table, 0) + 1
            counts.problems.extend(problems)
            raw = item.raw if isinstance(item.raw, dict) else {}
            key = raw.get("pdc_study_id") or raw.get(f"{item.entity}_id") or raw.get("case_submitter_id")
            entry = {"source": DOC_SOURCE, "entity_type": item.entity, "entity_id": str(key) if key else None}
            bad.append({**entry, "location": item.location, "reasons": problems, "raw": item.raw})
        else:
            good.append((item, row))
    insert_quarantine(session, bad, run_id=run_id)
    if not good:
        return counts
    _resolve_keys(session, good)
    studies = {i.study: str(r["pdc_study_id"]) for i, r in good if i.entity == "study" and i.study}
    _resolve_file_studies(session, [(i, r) for i, r in good if i.entity == "file"], studies)
    docs = [
        {"source": DOC_SOURCE, "entity_type": i.entity, "entity_id": str(r[_kind(i.entity).key]),
         "content_hash": content_hash(i.raw), "location": i.location, "raw": i.raw}
        for i, r in good
    ]  # fmt: skip
    doc_ids, counts.documents_new = insert_documents(session, docs, release_id=release_id, run_id=run_id)
    for (_, row), doc_id in zip(good, doc_ids, strict=True):
        row["_doc"] = doc_id
    for kind in PDC_KINDS:
        merged: dict[Any, dict[str, Any]] = {}
        for item, row in good:
            if _kind(item.entity) is kind:
                merged.setdefault(row[kind.key], {}).update(row)
        if merged:
            counts.kinds[kind.name] = upsert_kind(session, kind, list(merged.values()), release_id=release_id)
    links = [
        {"_study": studies[i.study], "_case": r["case_id"], "_doc": r["_doc"]}
        for i, r in good
        if i.entity == "case" and i.study in studies
    ]
    if links:
        counts.kinds["pdc_study_case"] = _upsert_study_cases(session, links, release_id=release_id)
    for selector in sorted({i.study for i, _ in good if i.study and i.study not in studies}):
        n_cases = sum(1 for i, _ in good if i.entity == "case" and i.study == selector)
        n_files = sum(1 for i, r in good if i.entity == "file" and i.study == selector and "_study" not in r)
        unlinked = [f"{n_cases} cases stored without a study link"] if n_cases else []
        unlinked += [f"{n_files} files stored without a study"] if n_files else []
        counts.notes.append(
            f"study {selector}: PDC returned no study record; {', '.join(unlinked) or 'nothing else'}"
        )
    return counts


def _kind(entity: Entity) -> Kind:
    return {"study": STUDY, "case": CASE, "file": FILE}[entity]


_NATURAL_MATCH: Final[dict[Literal["case", "file"], tuple[str, str, str]]] = {
    "case": ("pdc_case", "case_id", "t.project_submitter_id = d.a AND t.case_submitter_id = d.b"),
    "file": (
        "pdc_file",
        "file_id",
        "(t.study_submitter_id = d.a OR t.pdc_study_id = d.a) AND t.file_name = d.b",
    ),
}


def _resolve_keys(session: Session, good: list[tuple[Item, dict[str, Any]]]) -> None:
    """A derived key yields to a stored real one; a real key promotes a stored derived row in place."""
    for entity, (table, key, match) in _NATURAL_MATCH.items():
        rows = [
            (i, r, n)
            for i, r in good
            if i.entity == entity and (n := natural_key(entity, i.raw, i.study)) is not None
        ]
        derived = [{"k": r[key], "a": n[0], "b": n[1]} for _, r, n in rows if r["key_derived"]]
        if derived:
            sql = (
                f"SELECT d.k, CAST(t.{key} AS text) FROM jsonb_to_recordset(CAST(:p AS jsonb)) "
                f"AS d(k text, a text, b text) JOIN {table} t ON {match} AND NOT t.key_derived"
            )
            result = session.execute(text(sql), {"p": orjson.dumps(derived).decode()})
            found: dict[str, str] = {str(k): str(v) for k, v in result}
            for _, r, _ in rows:
                if r["key_derived"] and r[key] in found:
                    r.update({key: found[r[key]], "key_derived": False})
        promote = [{"old": derived_key(entity, n), "new": r[key]} for _, r, n in rows if not r["key_derived"]]
        if promote:
            session.execute(
                text(
                    f"UPDATE {table} t SET {key} = CAST(p.new AS uuid), key_derived = false, updated_at = now() "
                    "FROM jsonb_to_recordset(CAST(:p AS jsonb)) AS p(old text, new text) "
                    f"WHERE t.{key} = CAST(p.old AS uuid) AND t.key_derived "
                    f"AND NOT EXISTS (SELECT 1 FROM {table} x WHERE x.{key} = CAST(p.new AS uuid))"
                ),
                {"p": orjson.dumps(promote).decode()},
            )


def _resolve_file_studies(
    session: Session, files: list[tuple[Item, dict[str, Any]]], studies: dict[str, str]
) -> None:
    """``_study`` (the PDC study id the file row links to): the item's, the unit's study, or a stored study."""
    wanted = set()
    for item, row in files:
        sid = item.raw.get("pdc_study_id") or studies.get(item.study or "")
        if sid:
            row["_study"] = sid
        elif item.raw.get("study_submitter_id") or item.study:
            wanted.add(str(item.raw.get("study_submitter_id") or item.study))
    if not wanted:
        return
    result = session.execute(
        text(
            "SELECT study_submitter_id, min(pdc_study_id) FROM pdc_study WHERE study_submitter_id = ANY(:s) "
            "GROUP BY study_submitter_id HAVING count(*) = 1"
        ),
        {"s": sorted(wanted)},
    )
    stored = {str(k): str(v) for k, v in result}
    for item, row in files:
        ref = str(item.raw.get("study_submitter_id") or item.study)
        if "_study" not in row and ref in stored:
            row["_study"] = stored[ref]


def _upsert_study_cases(session: Session, links: list[dict[str, Any]], *, release_id: int) -> KindCounts:
    """Insert study-case links (lineage: the case document that listed it); refresh last-seen of known ones."""
    sql = (
        "WITH s AS (SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS s(_study text, _case uuid, _doc bigint)), "
        "m AS (SELECT DISTINCT ON (st.id, c.id) st.id AS sid, c.id AS cid, s._doc FROM s "
        "JOIN pdc_study st ON st.pdc_study_id = s._study JOIN pdc_case c ON c.case_id = s._case ORDER BY st.id, c.id), "
        "ins AS (INSERT INTO pdc_study_case (study_row_id, case_row_id, source_document_id, first_seen_release_id, "
        "last_seen_release_id) SELECT sid, cid, _doc, :rel, :rel FROM m ON CONFLICT (study_row_id, case_row_id) "
        "DO NOTHING RETURNING 1), "
        "seen AS (UPDATE pdc_study_case t SET last_seen_release_id = :rel, retired_release_id = NULL FROM m "
        "WHERE t.study_row_id = m.sid AND t.case_row_id = m.cid "
        "AND (t.last_seen_release_id <> :rel OR t.retired_release_id IS NOT NULL) RETURNING 1) "
        "SELECT (SELECT count(*) FROM m), (SELECT count(*) FROM ins), (SELECT count(*) FROM seen)"
    )
    resolved, inserted, _ = session.execute(
        text(sql), {"rows": orjson.dumps(links).decode(), "rel": release_id}
    ).one()
    return KindCounts(int(inserted), 0, int(resolved) - int(inserted))


def link_files_to_studies(session: Session) -> int:
    """Link stored files whose study arrived after them (by PDC study id or study submitter id)."""
    result = session.execute(
        text(
            "UPDATE pdc_file f SET study_row_id = s.id, updated_at = now() FROM pdc_study s "
            "WHERE f.study_row_id IS NULL AND (f.pdc_study_id = s.pdc_study_id "
            "OR (f.pdc_study_id IS NULL AND f.study_submitter_id = s.study_submitter_id))"
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
