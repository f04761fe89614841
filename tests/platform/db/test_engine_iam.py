"""RDS IAM authentication: each new connection gets a freshly signed token as its password, and a bad
configuration is a clear error before any connection is tried."""

from __future__ import annotations

import socket
import urllib.parse
from typing import Any

import pytest
from sqlalchemy import event, make_url
from sqlalchemy.exc import OperationalError

from oncograph.db.engine import engine_for, get_engine
from oncograph.db.iam import RdsIamPassword
from oncograph.errors import ConfigurationError
from oncograph.settings import Settings


@pytest.fixture()
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Static example credentials (botocore signs offline) and no AWS config files of the machine."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_REGION", "eu-west-2")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _token_fields(token: str, *, host: str, port: int) -> dict[str, str]:
    prefix = f"{host}:{port}/?"
    assert token.startswith(prefix), token
    return dict(urllib.parse.parse_qsl(token[len(prefix) :]))


def test_every_new_connection_is_given_a_signed_token_for_the_url_user(aws_env: None) -> None:
    port = _closed_port()
    url = f"postgresql+psycopg://oncograph@127.0.0.1:{port}/oncograph?sslmode=disable&connect_timeout=2"
    engine = engine_for(url, iam_auth=True)
    seen: list[dict[str, Any]] = []
    # registered after the engine's own listener, so it sees the parameters psycopg is called with
    event.listen(engine, "do_connect", lambda dialect, rec, cargs, cparams: seen.append(dict(cparams)))
    try:
        for _ in range(2):
            with pytest.raises(OperationalError), engine.connect():  # nothing listens on the port
                pass
    finally:
        engine.dispose()
        engine_for.cache_clear()
    assert len(seen) == 2
    for cparams in seen:
        fields = _token_fields(cparams["password"], host="127.0.0.1", port=port)
        assert fields["Action"] == "connect"
        assert fields["DBUser"] == "oncograph"
        assert fields["X-Amz-Expires"] == "900"
        credential = fields["X-Amz-Credential"].split("/")
        assert credential[0] == "AKIAIOSFODNN7EXAMPLE"
        assert credential[2:] == ["eu-west-2", "rds-db", "aws4_request"]
        assert len(fields["X-Amz-Signature"]) == 64


def _connect_params(settings: Settings) -> dict[str, Any]:
    """The parameters the engine built from ``settings`` hands psycopg (the server is a closed port)."""
    engine = get_engine(settings)
    seen: list[dict[str, Any]] = []
    event.listen(engine, "do_connect", lambda dialect, rec, cargs, cparams: seen.append(dict(cparams)))
    try:
        with pytest.raises(OperationalError), engine.connect():
            pass
    finally:
        engine.dispose()
        engine_for.cache_clear()
    assert len(seen) == 1
    return seen[0]


def test_the_setting_decides_whether_connections_are_signed(aws_env: None) -> None:
    url = f"postgresql+psycopg://oncograph@127.0.0.1:{_closed_port()}/oncograph?connect_timeout=2"
    signed = _connect_params(Settings(database_url=url, database_iam_auth=True))
    assert (
        _token_fields(signed["password"], host="127.0.0.1", port=make_url(url).port or 0)["DBUser"]
        == "oncograph"
    )
    assert "password" not in _connect_params(Settings(database_url=url))


def test_a_password_in_an_iam_url_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="carries a password"):
        engine_for("postgresql+psycopg://oncograph:secret@db.internal:5432/oncograph", iam_auth=True)


def test_a_socket_url_cannot_use_iam_auth() -> None:
    with pytest.raises(ConfigurationError, match="TCP host"):
        RdsIamPassword(make_url("postgresql+psycopg://oncograph@/oncograph?host=/tmp/pg"))


def test_missing_region_and_credentials_are_clear_errors(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_url("postgresql+psycopg://oncograph@db.internal:5432/oncograph")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ConfigurationError, match="AWS region"):
        RdsIamPassword(url)()
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        RdsIamPassword(url)()
