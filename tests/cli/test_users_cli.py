"""``oncograph users|grants|projects`` in real subprocesses against a real database."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from oncograph.access import authenticate
from oncograph.db.documents import pack
from oncograph.lineage.runs import ensure_release, start_run


def _run(args: list[str], db_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ONCOGRAPH_DATABASE_URL": db_url,
        "ONCOGRAPH_HOME": str(tmp_path / "home"),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "oncograph_cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _ok(args: list[str], db_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    out = _run(args, db_url, tmp_path)
    assert out.returncode == 0, out.stderr
    return out


def _fails(args: list[str], db_url: str, tmp_path: Path, message: str) -> str:
    out = _run(args, db_url, tmp_path)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert message in out.stderr and "Traceback" not in out.stderr, out.stderr
    return out.stderr


def _authenticates(db_url: str, key: str) -> str | None:
    engine = create_engine(db_url)
    try:
        with Session(engine) as s:
            auth = authenticate(s, key)
            return auth.principal.name if auth else None
    finally:
        engine.dispose()


def test_users_and_keys(fresh_db_url: str, tmp_path: Path) -> None:
    added = json.loads(
        _ok(["users", "add", "alice", "--role", "curator", "--json"], fresh_db_url, tmp_path).stdout
    )
    assert (added["principal"], added["role"], added["created"]) == ("alice", "curator", True)
    assert added["key"].startswith(f"og_{added['prefix']}_") and "not be shown again" in added["note"]

    engine = create_engine(fresh_db_url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT prefix, key_hash FROM api_key")).all()
        dump = conn.execute(text("SELECT string_agg(t::text, ' ') FROM api_key t")).scalar_one()
    engine.dispose()
    assert stored == [(added["prefix"], hashlib.sha256(added["key"].encode()).hexdigest())]
    assert added["key"].split("_", 2)[2] not in dump
    assert _authenticates(fresh_db_url, added["key"]) == "alice"

    # a second key, for people: the key alone on stdout, the warning on stderr
    human = _ok(["users", "key", "alice"], fresh_db_url, tmp_path)
    second = human.stdout.strip()
    assert second.startswith("og_") and second != added["key"]
    assert "will not be shown again" in " ".join(human.stderr.split())
    assert _authenticates(fresh_db_url, second) == "alice"

    dup = _fails(["users", "add", "alice", "--role", "viewer"], fresh_db_url, tmp_path, "already exists")
    assert "oncograph users key alice" in dup
    _fails(["users", "add", "bob", "--role", "root"], fresh_db_url, tmp_path, "unknown role 'root'")

    _ok(["users", "revoke-key", added["prefix"]], fresh_db_url, tmp_path)
    assert _authenticates(fresh_db_url, added["key"]) is None
    assert _authenticates(fresh_db_url, second) == "alice"

    listed = json.loads(_ok(["users", "list", "--json"], fresh_db_url, tmp_path).stdout)
    assert [(p["name"], p["role"], p["disabled_at"]) for p in listed] == [("alice", "curator", None)]
    keys = {k["prefix"]: k for k in listed[0]["keys"]}
    assert keys[added["prefix"]]["revoked_at"] is not None
    assert keys[second.split("_", 2)[1]]["revoked_at"] is None
    assert {field for k in listed[0]["keys"] for field in k} == {
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    }

    disabled = json.loads(_ok(["users", "disable", "alice", "--json"], fresh_db_url, tmp_path).stdout)
    assert disabled["name"] == "alice" and disabled["disabled_at"]
    assert _authenticates(fresh_db_url, second) is None


def _controlled(engine: Engine, project_id: str) -> bool:
    with engine.connect() as conn:
        flag: bool = conn.execute(
            text("SELECT controlled FROM project WHERE project_id = :p"), {"p": project_id}
        ).scalar_one()
    return flag


def test_grants_and_controlled_projects(fresh_db_url: str, tmp_path: Path) -> None:
    engine = create_engine(fresh_db_url)
    with Session(engine) as s, s.begin():
        release = ensure_release(s, source="gdc", release="test release")
        run = start_run(s, transform="test", parameters={})
        doc = s.execute(
            text(
                "INSERT INTO source_document (source, entity_type, entity_id, content_hash, release_id, run_id, raw_zstd) "
                "VALUES ('gdc', 'project', 'TCGA-CHOL', 'h', :rel, :run, :raw) RETURNING id"
            ),
            {"rel": release, "run": run.id, "raw": pack({})},
        ).scalar_one()
        s.execute(
            text(
                "INSERT INTO project (project_id, source_document_id, first_seen_release_id, last_seen_release_id) "
                "VALUES ('TCGA-CHOL', :doc, :rel, :rel)"
            ),
            {"doc": doc, "rel": release},
        )

    added = json.loads(
        _ok(["users", "add", "vic", "--role", "viewer", "--json"], fresh_db_url, tmp_path).stdout
    )
    granted = json.loads(_ok(["grants", "add", "vic", "TCGA-CHOL", "--json"], fresh_db_url, tmp_path).stdout)
    assert granted == {"principal": "vic", "project_id": "TCGA-CHOL", "created": True, "project_known": True}
    ahead = _ok(["grants", "add", "vic", "CPTAC-3", "--by", "ops"], fresh_db_url, tmp_path)
    assert "not in the graph" in ahead.stderr

    controlled = json.loads(
        _ok(["projects", "control", "TCGA-CHOL", "--json"], fresh_db_url, tmp_path).stdout
    )
    assert controlled == {"project_id": "TCGA-CHOL", "controlled": True, "changed": True}
    flag = _controlled(engine, "TCGA-CHOL")
    assert flag is True
    # a project not ingested yet may be marked (issue 9 A10): its rows take the mark when they arrive
    marked = _ok(["projects", "control", "TCGA-NOPE", "--json"], fresh_db_url, tmp_path)
    assert json.loads(marked.stdout) == {"project_id": "TCGA-NOPE", "controlled": True, "changed": True}
    assert "not in the graph (yet)" in marked.stderr  # a typo does not pass silently
    _fails(["projects", "control", "bad id!"], fresh_db_url, tmp_path, "invalid project id")

    grants = json.loads(_ok(["grants", "list", "--json"], fresh_db_url, tmp_path).stdout)
    assert [(g["principal"], g["project_id"], g["granted_by"], g["project_controlled"]) for g in grants] == [
        ("vic", "CPTAC-3", "ops", None),
        ("vic", "TCGA-CHOL", "local", True),
    ]
    with Session(engine) as s:
        auth = authenticate(s, added["key"])
        assert auth is not None and auth.scope.granted_projects == frozenset({"CPTAC-3", "TCGA-CHOL"})

    _ok(["grants", "remove", "vic", "TCGA-CHOL"], fresh_db_url, tmp_path)
    _fails(["grants", "remove", "vic", "TCGA-CHOL"], fresh_db_url, tmp_path, "has no grant for project")
    table = _ok(["users", "list"], fresh_db_url, tmp_path).stdout
    assert "vic" in table and "CPTAC-3" in table and "TCGA-CHOL" not in table

    un = json.loads(_ok(["projects", "uncontrol", "TCGA-CHOL", "--json"], fresh_db_url, tmp_path).stdout)
    assert un == {"project_id": "TCGA-CHOL", "controlled": False, "changed": True}
    flag = _controlled(engine, "TCGA-CHOL")
    assert flag is False
    engine.dispose()
