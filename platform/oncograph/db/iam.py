"""RDS IAM authentication: a password-free database URL, and a fresh signed token for every new connection.

With ``ONCOGRAPH_DATABASE_IAM_AUTH=true`` the URL names the user and host only
(``postgresql+psycopg://oncograph@db.xxxx.rds.amazonaws.com:5432/oncograph?sslmode=require``). Each time the pool
opens a connection, :class:`RdsIamPassword` signs an RDS auth token (SigV4, offline: no AWS call; valid for 15
minutes, which only matters at connect time) with the AWS credentials of the process (EKS Pod Identity, an
instance role, ``AWS_*`` variables) and passes it as the password. No database password exists anywhere.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL

from oncograph.errors import ConfigurationError


class RdsIamPassword:
    """Makes the RDS IAM auth token for ``url``'s user, host and port (a callable: one token per call)."""

    def __init__(self, url: URL, *, region: str | None = None) -> None:
        if url.password:
            raise ConfigurationError(
                "ONCOGRAPH_DATABASE_IAM_AUTH is on but ONCOGRAPH_DATABASE_URL carries a password",
                hint="drop the password from the URL: the IAM token is the password",
            )
        if not url.username or not url.host:
            raise ConfigurationError(
                "IAM database authentication needs a user and a TCP host in ONCOGRAPH_DATABASE_URL",
                hint="e.g. postgresql+psycopg://oncograph@db.example.rds.amazonaws.com:5432/oncograph?sslmode=require",
            )
        self.user = url.username
        self.host = url.host
        self.port = url.port or 5432
        self._region = region
        self._client: Any = None

    def _rds(self) -> Any:
        if self._client is None:
            try:
                import botocore.session
                from botocore.exceptions import NoRegionError
            except ImportError as exc:  # pragma: no cover - botocore is in every app's lock
                raise ConfigurationError(
                    "IAM database authentication needs botocore", hint="pip install botocore"
                ) from exc
            try:
                # AWS_REGION (what EKS and the other SDKs set) first; botocore itself reads AWS_DEFAULT_REGION
                region = self._region or os.environ.get("AWS_REGION") or None
                self._client = botocore.session.get_session().create_client("rds", region_name=region)
            except NoRegionError as exc:
                raise ConfigurationError(
                    "IAM database authentication needs an AWS region", hint="set AWS_REGION (e.g. us-east-1)"
                ) from exc
        return self._client

    def __call__(self) -> str:
        from botocore.exceptions import NoCredentialsError

        try:
            token: str = self._rds().generate_db_auth_token(self.host, self.port, self.user)
        except NoCredentialsError as exc:
            raise ConfigurationError(
                "IAM database authentication found no AWS credentials",
                hint="run with an IAM role (EKS Pod Identity, instance profile) or AWS_* credentials",
            ) from exc
        return token


def sign_connections(engine: Engine, password: RdsIamPassword) -> None:
    """Give every new DBAPI connection of ``engine`` a fresh IAM token as its password."""

    @event.listens_for(engine, "do_connect")
    def _token(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        cparams["password"] = password()
