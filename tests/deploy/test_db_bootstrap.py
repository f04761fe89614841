"""The db-bootstrap Job's SQL (infra/terraform/modules/compute/files/db_bootstrap.py) on a real PostgreSQL:
it creates the IAM-authenticated app role, gives it the database, creates pgvector and Prefect's database, and
running it again changes nothing."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable, Iterator
from types import ModuleType

import psycopg
import pytest
from deploy.terraform_hcl import MODULES
from sqlalchemy import make_url

pytestmark = pytest.mark.integration


def _script() -> ModuleType:
    path = MODULES / "compute" / "files" / "db_bootstrap.py"
    spec = importlib.util.spec_from_file_location("db_bootstrap", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def admin(make_db: Callable[[], str]) -> Iterator[tuple[psycopg.Connection, str]]:
    """An autocommit connection as the server's superuser (RDS: the master user) to a fresh database."""
    url = make_url(make_db())
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        yield conn, str(url.database)


def test_bootstrap_creates_the_app_role_and_is_idempotent(admin: tuple[psycopg.Connection, str]) -> None:
    conn, database = admin
    script = _script()
    suffix = uuid.uuid4().hex[:8]
    app, iam, prefect_db = f"app_{suffix}", f"rds_iam_{suffix}", f"prefect_{suffix}"
    conn.execute(f'CREATE ROLE "{iam}" NOLOGIN')  # RDS has it built in
    try:
        for _ in range(2):
            script.bootstrap_app(conn, database=database, app_user=app, iam_role=iam)
            script.bootstrap_prefect(conn, password="p" * 40, role=prefect_db, database=prefect_db)
        member = conn.execute(
            "SELECT pg_has_role(%s, %s, 'MEMBER'), rolcanlogin, rolpassword IS NULL FROM pg_authid WHERE rolname = %s",
            (app, iam, app),
        ).fetchone()
        assert member == (True, True, True), "the app role logs in by IAM only, with no password"
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        assert owner == (app,)
        schema_owner = conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'"
        ).fetchone()
        assert schema_owner == (app,)
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() == (1,)
        prefect = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (prefect_db,)
        ).fetchone()
        assert prefect == (prefect_db,)
        assert conn.execute(
            "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", (prefect_db,)
        ).fetchone() == (True,)
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{prefect_db}"')
        conn.execute(f'ALTER DATABASE "{database}" OWNER TO CURRENT_USER')
        conn.execute("ALTER SCHEMA public OWNER TO pg_database_owner")
        for role in (app, prefect_db, iam):
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
