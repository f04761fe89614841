"""``oncograph worker``: run queued exports (from the API, the CLI or the UI) until Ctrl-C.

Many workers may share one database: each export is claimed by one at a time under a lease, and an export
whose worker died is taken over once its lease expires (docs/adr/0005-export-jobs.md).
"""

from __future__ import annotations

import logging
import threading

import typer

from oncograph.errors import OncographError
from oncograph.export.job import LEASE_SECONDS, new_worker_id
from oncograph.export.worker import work
from oncograph.settings import get_settings
from oncograph_cli.context import store
from oncograph_cli.output import console, exit_with_error, print_json


def worker(
    once: bool = typer.Option(False, "--once", help="Run what is queued now, then exit."),
    poll: float = typer.Option(2.0, "--poll", min=0.05, help="Seconds between looks at the queue."),
    lease: float = typer.Option(
        LEASE_SECONDS, "--lease", min=1.0, help="Seconds a claim lasts without a heartbeat."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print how many exports ran as JSON."),
) -> None:
    """Run export jobs: claim queued exports (and those of dead workers) and run them."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        factory = store()
    except OncographError as exc:
        exit_with_error(str(exc))
    owner = new_worker_id()
    stop = threading.Event()
    if not json_out:
        console.print(f"export worker {owner} ({'until the queue is empty' if once else 'Ctrl-C to stop'})")
    try:
        ran = work(
            factory,
            owner=owner,
            stop=stop,
            once=once,
            poll_seconds=poll,
            lease_seconds=lease,
            endpoint_url=get_settings().s3_endpoint_url,
        )
    except KeyboardInterrupt:
        stop.set()
        ran = -1
    except OncographError as exc:
        exit_with_error(str(exc))
    if json_out:
        print_json({"worker": owner, "exports_run": ran})
    elif ran >= 0:
        console.print(f"export worker {owner}: {ran} export attempt(s) run")
