"""``oncograph ingest gdc-portal PATH...``: import GDC Data Portal downloads (TSV, JSON, biotab, sheets).

Every file's format is detected from its content before anything is written, so an unknown layout fails the
whole command cleanly. Each file is its own ``source_release`` (a portal export does not say which data
release it came from: the file name and content hash identify it). Files that carry cases are imported
before files that only link to cases (sample sheets, manifests, file tables), so links resolve.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.engine import transaction
from oncograph.domain import SourceRecord
from oncograph.ingest.service import IngestCounts, batched, ingest_batch
from oncograph.lineage.runs import RunHandle, ensure_release, finish_run, start_run
from oncograph.sources.gdc.portal import detect_format, read_portal_file


@dataclass(frozen=True, slots=True)
class FileOutcome:
    path: str
    format: str
    records: int
    file_problems: list[str]


def _file_release(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"portal export {path.name} sha256:{digest}"


def _priority(fmt: str) -> int:
    if "clinical" in fmt or "biospecimen" in fmt or "cases" in fmt or fmt == "biotab_clinical":
        return 0
    if fmt.endswith("_tsv") or fmt == "api_hits_json":
        return 1
    return 2


def import_portal_files(
    factory: sessionmaker[Session],
    paths: Sequence[Path],
    *,
    batch_size: int = 1000,
    on_batch: Callable[[Path, int], None] | None = None,
) -> tuple[RunHandle, IngestCounts, list[FileOutcome]]:
    """Import portal files; returns the run, the counts and a per-file summary.

    Raises:
        InputFormatError: a file's layout is unknown (nothing is written).
    """
    formats = {path: str(detect_format(path)) for path in paths}
    ordered = sorted(paths, key=lambda p: (_priority(formats[p]), str(p)))
    with transaction(factory) as s:
        run = start_run(s, transform="import_gdc_portal", parameters={"paths": [str(p) for p in paths]})
    total = IngestCounts()
    outcomes: list[FileOutcome] = []
    try:
        for path in ordered:
            portal = read_portal_file(path)
            with transaction(factory) as s:
                release_id = ensure_release(
                    s,
                    source="gdc_portal",
                    release=_file_release(path),
                    details={"file": path.name, "format": formats[path]},
                )
            records: list[SourceRecord] = list(portal.records)
            for batch in batched(records, batch_size):
                total.add(ingest_batch(factory, batch, release_id=release_id, run_id=run.id))
                if on_batch is not None:
                    on_batch(path, len(batch))
            total.problems.extend(portal.problems)
            outcomes.append(
                FileOutcome(str(path), formats[path], len(records), [str(p) for p in portal.problems])
            )
    except Exception as exc:
        with transaction(factory) as s:
            finish_run(
                s,
                run,
                status="failed",
                counts={"totals": total.as_dict()},
                error=f"{type(exc).__name__}: {exc}",
            )
        raise
    with transaction(factory) as s:
        finish_run(
            s,
            run,
            status="succeeded",
            counts={"totals": total.as_dict(), "files": [asdict(o) for o in outcomes]},
        )
    return run, total, outcomes
