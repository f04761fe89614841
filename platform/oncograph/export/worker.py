"""The export worker: claim queued exports (and those whose worker died) one at a time and run them.

Pure core: it takes a session factory and knows nothing of Prefect or HTTP. ``oncograph worker`` runs it
standalone, ``oncograph serve`` on a background thread, and the Prefect flow ``process_export_queue`` once.

Claiming is ``SELECT … FOR UPDATE SKIP LOCKED`` on the oldest export that is ``queued``, or ``running`` with
an expired lease (its worker stopped heartbeating: killed, crashed or cut off). Many workers may poll the same
database; each export is held by one at a time.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.models import Export
from oncograph.export.job import (
    LEASE_SECONDS,
    MAX_ATTEMPTS,
    new_worker_id,
    run_claimed,
    take,
)
from oncograph.export.options import Progress
from oncograph.lineage.runs import RunHandle

log = logging.getLogger(__name__)


def claim_next(
    factory: sessionmaker[Session],
    owner: str,
    *,
    lease_seconds: float = LEASE_SECONDS,
    max_attempts: int = MAX_ATTEMPTS,
    prefect_flow_run_id: str | None = None,
) -> tuple[int, RunHandle] | None:
    """Claim the oldest claimable export for ``owner``; None when there is none. A dead worker's export that
    has had ``max_attempts`` attempts is marked ``abandoned`` instead (with its run)."""
    while True:
        with factory() as session, session.begin():
            row = session.execute(
                select(Export)
                .where(
                    or_(
                        Export.status == "queued",
                        and_(
                            Export.status == "running",
                            or_(Export.lease_expires_at.is_(None), Export.lease_expires_at < func.now()),
                        ),
                    )
                )
                .order_by(Export.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if row is None:
                return None
            if row.status == "running" and row.attempts >= max_attempts:
                _abandon(session, row)
                continue
            run = take(
                session, row, owner, lease_seconds=lease_seconds, prefect_flow_run_id=prefect_flow_run_id
            )
            return row.id, run


def _abandon(session: Session, row: Export) -> None:
    message = f"its workers died {row.attempts} times (last: {row.lease_owner}); not retried again"
    if row.run_id is not None:
        session.execute(
            text(
                "UPDATE run SET status = 'abandoned', finished_at = now(), error = coalesce(error, :e) "
                "WHERE id = :id AND status = 'running'"
            ),
            {"id": row.run_id, "e": "the worker stopped heartbeating (killed or crashed)"},
        )
    session.execute(
        text(
            "UPDATE export SET status = 'abandoned', error = :e, finished_at = now(), lease_owner = NULL, "
            "lease_expires_at = NULL WHERE id = :id"
        ),
        {"e": message, "id": row.id},
    )
    log.warning("export %s abandoned: %s", row.id, message)


def work(
    factory: sessionmaker[Session],
    *,
    owner: str | None = None,
    stop: threading.Event | None = None,
    once: bool = False,
    poll_seconds: float = 2.0,
    lease_seconds: float = LEASE_SECONDS,
    max_attempts: int = MAX_ATTEMPTS,
    endpoint_url: str | None = None,
    progress: Progress | None = None,
    prefect_flow_run_id: str | None = None,
) -> int:
    """Run exports until ``stop`` is set (or, with ``once``, until none is left to claim); returns how many
    attempts ran. A failed export is recorded on its record and the loop goes on."""
    owner = owner or new_worker_id()
    stop = stop or threading.Event()
    ran = 0
    while not stop.is_set():
        try:
            claimed = claim_next(
                factory,
                owner,
                lease_seconds=lease_seconds,
                max_attempts=max_attempts,
                prefect_flow_run_id=prefect_flow_run_id,
            )
        except Exception:
            log.exception("export worker %s: cannot claim a job", owner)
            claimed = None
            if once:
                raise
        if claimed is None:
            if once:
                break
            stop.wait(poll_seconds)
            continue
        export_id, run = claimed
        ran += 1
        log.info("export worker %s: running export %s", owner, export_id)
        try:
            run_claimed(
                factory,
                export_id,
                owner,
                run,
                progress=progress,
                endpoint_url=endpoint_url,
                lease_seconds=lease_seconds,
            )
        except Exception as exc:
            log.warning("export %s failed: %s", export_id, exc)
    return ran


def start_worker_thread(
    factory: sessionmaker[Session], *, endpoint_url: str | None = None, poll_seconds: float = 2.0
) -> tuple[threading.Thread, threading.Event]:
    """A daemon thread running :func:`work`; set the returned event to stop it after its current job."""
    stop = threading.Event()
    thread = threading.Thread(
        target=work,
        kwargs={"stop": stop, "endpoint_url": endpoint_url, "poll_seconds": poll_seconds},
        args=(factory,),
        name="export-worker",
        daemon=True,
    )
    thread.start()
    return thread, stop


__all__ = ["claim_next", "start_worker_thread", "work"]
