"""Fixtures of the export tests: a private copy of the real sample graph per test module (exports commit, and
``run_export`` opens its own sessions), principals, saved cohorts and a helper that queues and runs exports.

Exports take seconds, so each module exports its main cohort once (module fixtures) and many tests read it.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker
from support.db import clone_database, drop_database

from oncograph.access import Scope, add_principal, grant, scope_for
from oncograph.cohorts import saved
from oncograph.db.models import Export, Principal
from oncograph.export.job import ExportOptions, ExportResult, Progress, create_export, run_export

_counter = itertools.count()


@dataclass
class Cohort:
    id: int
    version_id: int
    owner: Principal


@dataclass
class ExportDB:
    """One private clone of the sample graph and helpers to make principals and cohorts and run exports."""

    url: str
    engine: Engine
    factory: sessionmaker[Session]

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(query), params).all())

    def execute(self, query: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(query), params)

    def connect(self) -> Connection:
        return self.engine.connect()

    def principal(self, name: str, role: str = "curator", grants: Sequence[str] = ()) -> Principal:
        with self.factory() as s, s.begin():
            p = add_principal(s, name, role)
            for project in grants:
                grant(s, name, project, None)
        return p

    def scope(self, principal: Principal) -> Scope:
        with self.factory() as s:
            return scope_for(s, principal)

    def cohort(
        self, filters: Mapping[str, Any], owner: Principal, scope: Scope, *, shared: bool = False
    ) -> Cohort:
        with self.factory() as s, s.begin():
            info = saved.create_from_filter(
                s,
                name=f"cohort {next(_counter)}",
                filters=dict(filters),
                owner=owner,
                scope=scope,
                shared=shared,
            )
            v = saved.version(s, info.id, owner, scope=Scope.everything())
        return Cohort(info.id, v.version_id, owner)

    def queue(
        self,
        cohort: Cohort,
        destination: str | Path,
        *,
        principal: Principal | None = None,
        options: ExportOptions | None = None,
        scope: Scope | None = None,
        endpoint_url: str | None = None,
    ) -> int:
        with self.factory() as s, s.begin():
            row = create_export(
                s,
                cohort_id=cohort.id,
                principal=principal or cohort.owner,
                destination=str(destination),
                options=options or ExportOptions(),
                scope=scope or Scope.everything(),
                endpoint_url=endpoint_url,
            )
            return int(row.id)

    def export(
        self,
        cohort: Cohort,
        destination: str | Path,
        *,
        scope: Scope | None = None,
        principal: Principal | None = None,
        options: ExportOptions | None = None,
        endpoint_url: str | None = None,
        progress: Progress | None = None,
    ) -> ExportResult:
        export_id = self.queue(
            cohort, destination, principal=principal, options=options, scope=scope, endpoint_url=endpoint_url
        )
        return run_export(self.factory, export_id, progress=progress, endpoint_url=endpoint_url)

    def export_row(self, export_id: int) -> Export:
        with self.factory() as s:
            row = s.get(Export, export_id)
            assert row is not None
            return row

    def members(self, cohort: Cohort) -> dict[str, int]:
        """case UUID -> patient row of the cohort version's members (independent of the export code)."""
        rows = self.sql(
            "SELECT p.case_id::text, p.id FROM cohort_member m JOIN patient p ON p.id = m.patient_id "
            "WHERE m.cohort_version_id = :v",
            v=cohort.version_id,
        )
        return {str(c): int(i) for c, i in rows}


@pytest.fixture(scope="module")
def export_db(pg_server_url: str, sample_url: str, sample_engine: Engine) -> Iterator[ExportDB]:
    """A private copy of the demo's real sample graph for this module (dropped afterwards)."""
    sample_engine.dispose()  # a template database must have no other connections while it is copied
    name = f"oncograph_x{os.getpid()}_{next(_counter)}_test"
    url = clone_database(pg_server_url, sample_url, name)
    assert "test" in name
    engine = create_engine(url)
    try:
        yield ExportDB(url, engine, sessionmaker(bind=engine, expire_on_commit=False))
    finally:
        engine.dispose()
        drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def export_tmp(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Fresh folders for export destinations (the destination itself does not exist yet)."""

    def make(name: str) -> Path:
        return tmp_path_factory.mktemp("exports") / name

    return make


_CHILD = """
import os, signal, sys
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from oncograph.export.job import run_export

url, export_id, kill_at = sys.argv[1], int(sys.argv[2]), sys.argv[3]
endpoint = sys.argv[4] if len(sys.argv) > 4 else None
factory = sessionmaker(bind=create_engine(url), expire_on_commit=False)
if kill_at.startswith("copy:"):  # die while publishing to S3, after n objects were copied
    import s3fs
    left = [int(kill_at[5:])]
    real_copy = s3fs.S3FileSystem.copy
    def copy(self, *args, **kwargs):
        if left[0] == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        left[0] -= 1
        return real_copy(self, *args, **kwargs)
    s3fs.S3FileSystem.copy = copy

def progress(stage, done, total):
    if stage == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

run_export(factory, export_id, progress=progress, endpoint_url=endpoint)
sys.exit(3)
"""


@pytest.fixture(scope="session")
def kill_export() -> Callable[..., None]:
    """``kill_export(db_url, export_id, kill_at, endpoint_url=None)`` runs a queued export in another process
    that SIGKILLs itself at ``kill_at``: a progress stage, or ``copy:N`` (during an S3 publish, after N
    objects were copied)."""

    def run(db_url: str, export_id: int, kill_at: str, endpoint_url: str | None = None) -> None:
        args = [sys.executable, "-c", _CHILD, db_url, str(export_id), kill_at]
        if endpoint_url:
            args.append(endpoint_url)
        done = subprocess.run(args, capture_output=True, text=True, timeout=180, env=dict(os.environ))
        assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]

    return run
