"""API test fixtures: the real app (``create_app``) over a private copy of the sample graph, through httpx.

Each test module gets its own copy (``api_db``), so modules may change data (mark projects controlled,
save cohorts) without touching the shared sample graph. Principals and keys are made with the access core.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from api.harness import ApiDb
from sqlalchemy import Engine, create_engine, make_url, text
from support.db import release_template

_counter = itertools.count()


@pytest.fixture(scope="module")
def api_db(pg_server_url: str, sample_url: str, sample_engine: Engine) -> Iterator[ApiDb]:
    # A template database must have no other connections while it is copied.
    sample_engine.dispose()
    name = f"oncograph_api{os.getpid()}_{next(_counter)}_test"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        release_template(conn, make_url(sample_url).database or "")
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(sample_url).database}"'))
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    assert "test" in (make_url(url).database or "")
    admin.dispose()
    db = ApiDb(url)
    try:
        yield db
    finally:
        # Left in place like the other clones of the test session (dropping costs a checkpoint).
        db.engine.dispose()
