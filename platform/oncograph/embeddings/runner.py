"""An embedding run: plan, execute (serially here or on Ray through ``oncograph_flows.embed``), store, report.

Each object is stored in its own transaction as soon as its features arrive: the per-tile feature file is
written first (atomically, under ``ONCOGRAPH_FEATURES_ROOT``: ``<home>/features`` by default, or a folder or
``s3://`` prefix every node reaches), then the embedding row that references it with its size and sha256. A run
killed at any point therefore leaves only complete objects behind, and the next run skips them
(:func:`oncograph.embeddings.jobs.plan`): a resumed run ends with the same rows as a clean one. The run's
counts are committed as it goes, so ``oncograph embed`` draws a progress bar from them and the runs listing
shows how far a run got. Runs of this host whose process died are marked ``abandoned`` when the next starts.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.access import Scope
from oncograph.embeddings.compute import Executor, Result
from oncograph.embeddings.encoders import EncoderSpec, get_encoder
from oncograph.embeddings.feature_store import FeatureStore
from oncograph.embeddings.features import write_features_h5
from oncograph.embeddings.jobs import EmbedRequest, Job, plan
from oncograph.embeddings.store import EmbeddingRow, ensure_index, store_embeddings
from oncograph.lineage.runs import RunHandle, finish_run, start_run
from oncograph.settings import Settings

#: Seconds between commits of a running run's counts.
COUNTS_EVERY_S = 1.0


@dataclass(slots=True)
class EmbedSummary:
    run_id: int
    embedded: int = 0
    skipped: int = 0
    failed: int = 0
    unattached: int = 0
    tiles: int = 0
    seconds: float = 0.0
    total: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    encoder: str = ""
    encoder_version: str = ""

    def counts(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "embedded": self.embedded,
            "skipped": self.skipped,
            "failed": self.failed,
            "unattached": self.unattached,
            "tiles": self.tiles,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "embedded": self.embedded,
            "skipped": self.skipped,
            "failed": self.failed,
            "unattached": self.unattached,
            "tiles": self.tiles,
            "seconds": round(self.seconds, 3),
            "encoder": self.encoder,
            "encoder_version": self.encoder_version,
            "failures": self.failures,
        }


def features_name(spec: EncoderSpec, job: Job) -> str:
    """A job's feature file under the features root (:mod:`oncograph.embeddings.feature_store`): one file per
    (encoder version, input), so a re-run overwrites it."""
    version = hashlib.sha256(spec.version.encode()).hexdigest()[:12]
    return f"{spec.name}/{version}/{job.input_sha256}.h5"


def abandon_dead_runs(session: Session) -> int:
    """Mark ``abandoned`` the running embed runs of this host whose process is gone."""
    host = socket.gethostname()
    rows = session.execute(
        text(
            "SELECT id, (parameters ->> 'pid')::int FROM run WHERE status = 'running' AND transform LIKE 'embed_%' "
            "AND parameters ->> 'host' = :h"
        ),
        {"h": host},
    ).all()
    dead = [rid for rid, pid in rows if pid is not None and not _alive(pid)]
    if dead:
        session.execute(
            text(
                "UPDATE run SET status = 'abandoned', finished_at = now(), error = 'the process running it died' "
                "WHERE id = ANY(:ids)"
            ),
            {"ids": dead},
        )
    return len(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pool(spec: EncoderSpec, features: np.ndarray) -> np.ndarray:
    pooled: np.ndarray = features.max(axis=0) if spec.pooling == "max" else features.mean(axis=0)
    return pooled


def _store(
    session: Session, settings: Settings, spec: EncoderSpec, run: RunHandle, result: Result
) -> EmbeddingRow:
    job = result.job
    assert result.features is not None and result.header is not None
    features = np.ascontiguousarray(result.features, dtype=np.float32)
    uri = sha = size = None
    if job.modality == "slide" and result.header.coords is not None:
        attrs = {
            **result.header.details["h5_attrs"],
            "source_uri": job.source_uri,
            "input_sha256": job.input_sha256,
        }
        coords = result.header.coords
        uri, sha, size = FeatureStore.from_settings(settings).write(
            features_name(spec, job), lambda path: write_features_h5(path, coords, features, attrs)
        )
    row = EmbeddingRow(
        patient_id=job.attachment.patient_id,
        object_kind=job.object_kind,
        object_id=job.object_id,
        modality={"slide": "slide", "scan": "radiology", "text": "clinical_text"}[job.modality],
        model=spec.name,
        model_version=spec.version,
        vector=_pool(spec, features).tolist(),
        run_id=run.id,
        source_uri=job.source_uri,
        input_sha256=job.input_sha256,
        attached_by=job.attachment.attached_by,
        features_uri=uri,
        features_sha256=sha,
        features_bytes=size,
        tiles=int(features.shape[0]),
        source_text=job.text,
        details={
            **job.details,
            **{k: v for k, v in result.header.details.items() if k != "h5_attrs"},
            "evidence": job.attachment.evidence,
        },
    )
    store_embeddings(session, [row])
    return row


def _record_failure(session: Session, run: RunHandle, modality: str, source_uri: str, reason: str) -> None:
    session.execute(
        text(
            "INSERT INTO embedding_failure (run_id, modality, source_uri, reason) VALUES (:r, :m, :u, :why) "
            "ON CONFLICT (run_id, source_uri) DO UPDATE SET reason = EXCLUDED.reason"
        ),
        {"r": run.id, "m": modality, "u": source_uri, "why": reason},
    )


def _keep(
    session: Session,
    settings: Settings,
    spec: EncoderSpec,
    run: RunHandle,
    request: EmbedRequest,
    result: Result,
    summary: EmbedSummary,
    dim_seen: set[int],
) -> None:
    """Store one result (or record its failure) and count it."""
    if result.error is not None or result.features is None or len(result.features) == 0:
        reason = result.error or "no features were produced"
        _record_failure(session, run, request.modality, result.job.source_uri, reason)
        summary.failed += 1
        summary.failures.append({"source": result.job.source_uri, "reason": reason})
        return
    row = _store(session, settings, spec, run, result)
    summary.embedded += 1
    summary.tiles += row.tiles or 0
    summary.unattached += not result.job.attachment.attached
    if len(row.vector) not in dim_seen:
        dim_seen.add(len(row.vector))
        ensure_index(session, spec.name, len(row.vector))


def _save_counts(session: Session, run: RunHandle, summary: EmbedSummary) -> None:
    session.execute(
        text("UPDATE run SET counts = CAST(:c AS jsonb) WHERE id = :id"),
        {"c": orjson.dumps(summary.counts()).decode(), "id": run.id},
    )


def embed(
    factory: sessionmaker[Session],
    request: EmbedRequest,
    settings: Settings,
    executor: Executor,
    *,
    scope: Scope,
    principal_id: int | None = None,
    prefect_flow_run_id: str | None = None,
    on_progress: Callable[[EmbedSummary], None] | None = None,
) -> EmbedSummary:
    """Run one embedding run to the end; per-object failures are recorded, never raised."""
    started = time.monotonic()
    with factory() as session, session.begin():
        spec = get_encoder(session, request.encoder, request.modality)
        abandon_dead_runs(session)
        run = start_run(
            session,
            transform=f"embed_{request.modality}s" if request.modality != "text" else "embed_text",
            parameters={
                **request.to_json(),
                "encoder": spec.name,
                "encoder_version": spec.version,
                "host": socket.gethostname(),
                "pid": os.getpid(),
            },
            prefect_flow_run_id=prefect_flow_run_id,
            principal_id=principal_id,
        )
    summary = EmbedSummary(run.id, encoder=spec.name, encoder_version=spec.version)
    try:
        with factory() as session, session.begin():
            planned = plan(session, request, spec, settings, scope)
            summary.skipped = planned.skipped
            summary.total = len(planned.jobs) + planned.skipped + len(planned.failures)
            for uri, reason in planned.failures:
                _record_failure(session, run, request.modality, uri, reason)
                summary.failures.append({"source": uri, "reason": reason})
            summary.failed = len(planned.failures)
            session.execute(
                text("UPDATE run SET projects = CAST(:p AS text[]) WHERE id = :id"),
                {"p": sorted(planned.projects), "id": run.id},
            )
            _save_counts(session, run, summary)
            dim_seen: set[int] = set()
        last = time.monotonic()
        # a slide or a series is committed alone (its feature file is large work); text results, a few
        # hundred bytes each, are committed a batch at a time (one transaction per summary cost more than
        # the encoder); either way a commit holds only complete objects
        per_commit = request.batch_size if request.modality == "text" else 1
        pending: list[Result] = []

        def flush() -> None:
            nonlocal last
            with factory() as session, session.begin():
                for result in pending:
                    _keep(session, settings, spec, run, request, result, summary, dim_seen)
                if time.monotonic() - last >= COUNTS_EVERY_S:
                    _save_counts(session, run, summary)
                    last = time.monotonic()
            pending.clear()
            if on_progress is not None:
                on_progress(summary)

        for result in executor.run(planned.jobs, spec, request):
            pending.append(result)
            if len(pending) >= per_commit:
                flush()
        if pending:
            flush()
        summary.seconds = time.monotonic() - started
        with factory() as session, session.begin():
            finish_run(
                session,
                run,
                status="succeeded",
                counts={**summary.counts(), "seconds": round(summary.seconds, 3)},
            )
    except BaseException as exc:
        with factory() as session, session.begin():
            finish_run(session, run, status="failed", counts=summary.counts(), error=str(exc)[:2000])
        raise
    return summary
