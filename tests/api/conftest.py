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
from sqlalchemy import Engine, make_url
from support.db import clone_database

_counter = itertools.count()


@pytest.fixture(scope="module")
def api_db(pg_server_url: str, sample_url: str, sample_engine: Engine) -> Iterator[ApiDb]:
    # A template database must have no other connections while it is copied.
    sample_engine.dispose()
    url = clone_database(pg_server_url, sample_url, f"oncograph_api{os.getpid()}_{next(_counter)}_test")
    assert "test" in (make_url(url).database or "")
    db = ApiDb(url)
    try:
        yield db
    finally:
        # Left in place like the other clones of the test session (dropping costs a checkpoint).
        db.engine.dispose()
