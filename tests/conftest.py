"""Test fixtures: a real PostgreSQL (embedded pgserver, or ONCOGRAPH_TEST_DATABASE_URL), migrated once.

- ``db``: a Session inside an outer transaction that is rolled back after the test (SQLAlchemy's
  "join an external transaction" recipe); code under test may commit: its commits become savepoints.
- ``fresh_db_url``: a brand-new database cloned from the migrated template, for tests that run other
  processes (CLI, flows, kill-and-resume) and so need committed data.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker
from support.db import clone_database, joining_sessions, refuse_non_test, rolled_back

from oncograph.db.embedded import start_embedded
from oncograph.db.migrate import upgrade

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "gdc"
TEMPLATE_DB = "oncograph_template_test"
_counter = itertools.count()


@pytest.fixture(scope="session")
def gdc_data() -> Path:
    """The bundled real GDC data (``data/gdc``; provenance in its SOURCES files)."""
    return DATA


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the server's maintenance database (not used for data); the embedded server stops at the end."""
    configured = os.environ.get("ONCOGRAPH_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    url, server = start_embedded(tmp_path_factory.mktemp("pg") / "data", keep_running=False)
    yield url
    server.cleanup()


def _admin(server_url: str) -> Engine:
    return create_engine(server_url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def template_url(pg_server_url: str) -> Iterator[str]:
    """A database migrated once with ``alembic upgrade head`` (which also tests the migrations)."""
    admin = _admin(pg_server_url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{TEMPLATE_DB}"'))
    url = make_url(pg_server_url).set(database=TEMPLATE_DB).render_as_string(hide_password=False)
    refuse_non_test(url)
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    admin.dispose()


@pytest.fixture(scope="session")
def engine(template_url: str, pg_server_url: str) -> Iterator[Engine]:
    """The shared test database (a clone of the template); tests isolate themselves by rollback."""
    url = clone_database(pg_server_url, template_url, "oncograph_shared_test")
    eng = create_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture()
def connection(engine: Engine) -> Iterator[Connection]:
    with rolled_back(engine) as conn:
        yield conn


@pytest.fixture()
def factory(connection: Connection) -> sessionmaker[Session]:
    """A session factory whose sessions join the test's outer transaction (commits become savepoints)."""
    return joining_sessions(connection)


@pytest.fixture()
def db(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as session:
        yield session


@pytest.fixture()
def make_db(pg_server_url: str, template_url: str) -> Callable[[], str]:
    """A factory of new, migrated, empty databases (for tests that run other processes or compare graphs)."""
    return lambda: clone_database(
        pg_server_url, template_url, f"oncograph_t{os.getpid()}_{next(_counter)}_test"
    )


@pytest.fixture()
def fresh_db_url(make_db: Callable[[], str]) -> str:
    """A new, migrated, empty database of its own (for tests that run other processes)."""
    return make_db()


SAMPLE_DB = "oncograph_sample_test"


@pytest.fixture(scope="session")
def sample_url(pg_server_url: str, template_url: str) -> str:
    """A database holding the demo's sample graph (built once per session; see support/sample_graph.py).
    Read it through ``sample_conn`` (rolled back) or clone it with ``clone_sample``."""
    from support.sample_graph import build_sample_graph

    url = clone_database(pg_server_url, template_url, SAMPLE_DB)
    build_sample_graph(url, REPO / "data")
    return url


@pytest.fixture(scope="session")
def sample_engine(sample_url: str) -> Iterator[Engine]:
    eng = create_engine(sample_url, pool_pre_ping=True)
    yield eng
    eng.dispose()


@pytest.fixture()
def sample_conn(sample_engine: Engine) -> Iterator[Connection]:
    """A connection to the sample graph inside a transaction that is rolled back after the test."""
    with rolled_back(sample_engine) as conn:
        yield conn


@pytest.fixture()
def sample_factory(sample_conn: Connection) -> sessionmaker[Session]:
    """Sessions on the sample graph that join the test's rolled-back transaction."""
    return joining_sessions(sample_conn)


@pytest.fixture()
def clone_sample(pg_server_url: str, sample_url: str, sample_engine: Engine) -> Callable[[], str]:
    """A factory of private copies of the sample graph (for tests that run other processes or re-harvest)."""

    def clone() -> str:
        sample_engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the template without connections
        return clone_database(pg_server_url, sample_url, f"oncograph_s{os.getpid()}_{next(_counter)}_test")

    return clone
