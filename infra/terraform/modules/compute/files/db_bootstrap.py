"""One-shot, idempotent database bootstrap for oncograph on RDS PostgreSQL (run as a Kubernetes Job per deploy).

As the RDS master user (its password read from the RDS-managed, rotated Secrets Manager secret at run time), it
creates what only a privileged role may create, so that the application itself never holds a password:

- the application role (LOGIN, member of ``rds_iam``: it authenticates with IAM tokens only) and hands it the
  application database and its ``public`` schema, so ``oncograph db upgrade`` can run every migration as it;
- the ``vector`` extension (pgvector: only ``rds_superuser`` may create it on RDS; the first migration's
  ``CREATE EXTENSION IF NOT EXISTS vector`` is then a no-op);
- with the in-cluster Prefect server, Prefect's role (password from a mounted Kubernetes Secret), its own
  database and the ``pg_trgm`` extension Prefect needs.

Configuration comes from ``BOOTSTRAP_*`` environment variables (set by infra/terraform/modules/compute).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PREFECT_PASSWORD_FILE = Path("/run/secrets/prefect-db/password")


def _role_exists(conn: Any, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def bootstrap_app(conn: Any, *, database: str, app_user: str, iam_role: str = "rds_iam") -> None:
    """Create the IAM-authenticated application role and give it the database (idempotent)."""
    from psycopg import sql

    ident = sql.Identifier
    if not _role_exists(conn, app_user):
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident(app_user)))
    conn.execute(sql.SQL("GRANT {} TO {}").format(ident(iam_role), ident(app_user)))
    # PostgreSQL 16: to make a role the owner, the master must be able to SET ROLE to it
    conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(ident(app_user)))
    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident(database), ident(app_user)))
    conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(ident(app_user)))
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def bootstrap_prefect(conn: Any, *, password: str, role: str = "prefect", database: str = "prefect") -> None:
    """Create (or re-password) Prefect's role and create its database (idempotent)."""
    from psycopg import sql

    ident = sql.Identifier
    verb = "ALTER" if _role_exists(conn, role) else "CREATE"
    conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(ident(role), sql.Literal(password)))
    conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(ident(role)))
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(ident(database), ident(role)))


def create_extensions(conninfo: str, extensions: Sequence[str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(conninfo, autocommit=True) as conn:
        for extension in extensions:
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))


def _master_credentials(secret_arn: str, region: str) -> tuple[str, str]:
    import botocore.session

    client = botocore.session.get_session().create_client("secretsmanager", region_name=region)
    secret = json.loads(client.get_secret_value(SecretId=secret_arn)["SecretString"])
    return secret["username"], secret["password"]


def main() -> int:
    import psycopg
    from psycopg.conninfo import make_conninfo

    try:
        env = {
            k: os.environ[f"BOOTSTRAP_{k}"]
            for k in ("SECRET_ARN", "DB_HOST", "DB_PORT", "DB_NAME", "APP_USER")
        }
        region = os.environ["AWS_REGION"]
    except KeyError as missing:
        print(f"db-bootstrap: environment variable {missing} is not set", file=sys.stderr)
        return 2
    user, password = _master_credentials(env["SECRET_ARN"], region)

    def conninfo(dbname: str) -> str:
        return make_conninfo(
            host=env["DB_HOST"],
            port=env["DB_PORT"],
            dbname=dbname,
            user=user,
            password=password,
            sslmode="require",
        )

    with psycopg.connect(conninfo(env["DB_NAME"]), autocommit=True) as conn:
        bootstrap_app(conn, database=env["DB_NAME"], app_user=env["APP_USER"])
        print(f"db-bootstrap: role {env['APP_USER']} (rds_iam) owns {env['DB_NAME']}; pgvector present")
        if os.environ.get("BOOTSTRAP_PREFECT") == "true":
            bootstrap_prefect(conn, password=PREFECT_PASSWORD_FILE.read_text().strip())
    if os.environ.get("BOOTSTRAP_PREFECT") == "true":
        create_extensions(conninfo("prefect"), ["pg_trgm"])
        print("db-bootstrap: role and database prefect ready (pg_trgm present)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
