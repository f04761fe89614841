"""Principals, hashed API keys, grants and controlled projects on a real (rolled-back) database."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.access import (
    LOCAL_PRINCIPAL,
    Scope,
    add_principal,
    authenticate,
    disable_principal,
    ensure_local_principal,
    grant,
    issue_key,
    list_grants,
    list_principals,
    revoke_grant,
    revoke_key,
    scope_for,
    set_project_controlled,
)
from oncograph.db.documents import pack
from oncograph.errors import NotFoundError, ValidationError
from oncograph.lineage.runs import ensure_release, start_run


def _make_project(session: Session, project_id: str) -> None:
    """A bare project row (with the provenance rows every graph row needs)."""
    release = ensure_release(session, source="gdc", release="test release")
    run = start_run(session, transform="test", parameters={})
    doc = session.execute(
        text(
            "INSERT INTO source_document (source, entity_type, entity_id, content_hash, release_id, run_id, raw_zstd) "
            "VALUES ('gdc', 'project', :pid, 'h', :rel, :run, :raw) RETURNING id"
        ),
        {"pid": project_id, "rel": release, "run": run.id, "raw": pack({})},
    ).scalar_one()
    session.execute(
        text(
            "INSERT INTO project (project_id, source_document_id, first_seen_release_id, last_seen_release_id) "
            "VALUES (:pid, :doc, :rel, :rel)"
        ),
        {"pid": project_id, "doc": doc, "rel": release},
    )


def _controlled(session: Session, project_id: str) -> bool:
    return bool(
        session.execute(
            text("SELECT controlled FROM project WHERE project_id = :p"), {"p": project_id}
        ).scalar_one()
    )


def test_key_is_shown_once_and_stored_only_as_a_hash(db: Session) -> None:
    alice = add_principal(db, "alice", "curator")
    assert (alice.name, alice.role, alice.disabled_at) == ("alice", "curator", None)
    issued = issue_key(db, "alice")
    scheme, prefix, secret = issued.key.split("_", 2)
    assert (scheme, prefix, issued.prefix, issued.principal) == ("og", issued.prefix, prefix, "alice")
    assert len(prefix) >= 8 and len(secret) >= 40

    rows = db.execute(text("SELECT prefix, key_hash, principal_id FROM api_key")).all()
    assert rows == [(prefix, hashlib.sha256(issued.key.encode()).hexdigest(), alice.id)]
    dump = db.execute(text("SELECT string_agg(t::text, ' ') FROM api_key t")).scalar_one()
    assert secret not in dump and issued.key not in dump

    second = issue_key(db, "alice")
    assert second.prefix != issued.prefix and second.key != issued.key


def test_authenticate_accepts_the_key_and_records_use(db: Session) -> None:
    add_principal(db, "alice", "viewer")
    issued = issue_key(db, "alice")
    auth = authenticate(db, issued.key)
    assert auth is not None
    assert auth.principal.name == "alice" and auth.key_prefix == issued.prefix
    assert auth.scope == Scope(
        principal="alice", role="viewer", granted_projects=frozenset(), unrestricted=False
    )
    used = db.execute(
        text("SELECT last_used_at, last_used_at = now() FROM api_key WHERE prefix = :p"), {"p": issued.prefix}
    ).one()
    assert used[0] is not None and used[1]

    # at most once a minute: an older stamp is refreshed, a recent one left alone
    db.execute(
        text("UPDATE api_key SET last_used_at = now() - interval '30 seconds' WHERE prefix = :p"),
        {"p": issued.prefix},
    )
    assert authenticate(db, issued.key) is not None
    recent = "SELECT now() - last_used_at FROM api_key WHERE prefix = :p"
    assert db.execute(text(recent), {"p": issued.prefix}).scalar_one().total_seconds() == 30
    db.execute(
        text("UPDATE api_key SET last_used_at = now() - interval '2 minutes' WHERE prefix = :p"),
        {"p": issued.prefix},
    )
    assert authenticate(db, issued.key) is not None
    assert db.execute(text(recent), {"p": issued.prefix}).scalar_one().total_seconds() == 0


def test_authenticate_rejects_wrong_malformed_revoked_and_disabled(db: Session) -> None:
    add_principal(db, "alice", "admin")
    first = issue_key(db, "alice")
    second = issue_key(db, "alice")
    tampered = first.key[:-4] + ("AAAA" if not first.key.endswith("AAAA") else "BBBB")
    other_secret = f"og_{first.prefix}_{second.key.split('_', 2)[2]}"
    for bad in (
        tampered,
        other_secret,
        f"og_ffffffffff_{first.key.split('_', 2)[2]}",  # unknown prefix
        "",
        "og_",
        f"og_{first.prefix}",
        f"og_{first.prefix}_",
        f"xx_{first.prefix}_{first.key.split('_', 2)[2]}",
        first.key + "x" * 300,
        f"Bearer {first.key}",
    ):
        assert authenticate(db, bad) is None, bad

    revoked = revoke_key(db, first.prefix)
    assert revoked.revoked_at is not None
    assert revoke_key(db, first.prefix).revoked_at == revoked.revoked_at  # idempotent
    assert authenticate(db, first.key) is None
    assert authenticate(db, second.key) is not None

    disabled = disable_principal(db, "alice")
    assert disabled.disabled_at is not None
    assert authenticate(db, second.key) is None
    with pytest.raises(ValidationError, match="disabled"):
        issue_key(db, "alice")

    with pytest.raises(NotFoundError, match="no API key with prefix 'nope'") as exc:
        revoke_key(db, "nope")
    assert "users list" in exc.value.hint


def test_add_principal_errors_are_clear(db: Session) -> None:
    add_principal(db, "alice", "viewer")
    with pytest.raises(ValidationError, match="already exists") as dup:
        add_principal(db, "alice", "admin")
    assert "oncograph users key alice" in dup.value.hint
    with pytest.raises(ValidationError, match="unknown role 'root'") as role:
        add_principal(db, "bob", "root")
    assert "viewer, curator, admin" in role.value.hint
    with pytest.raises(ValidationError, match="invalid principal name"):
        add_principal(db, "bad name", "viewer")
    with pytest.raises(ValidationError, match="reserved"):
        add_principal(db, LOCAL_PRINCIPAL, "viewer")
    with pytest.raises(NotFoundError, match="no principal named 'carol'"):
        issue_key(db, "carol")
    with pytest.raises(NotFoundError):
        disable_principal(db, "carol")
    assert [p["name"] for p in list_principals(db)] == ["alice"]


def test_grants_make_the_scope(db: Session) -> None:
    admin = add_principal(db, "root", "admin")
    viewer = add_principal(db, "vic", "viewer")
    _make_project(db, "TCGA-BRCA")
    # admins too see controlled data only with a grant
    assert scope_for(db, admin) == Scope(principal="root", role="admin", granted_projects=frozenset())
    assert not scope_for(db, admin).may_see_project("TCGA-BRCA", controlled=True)

    first = grant(db, "vic", "TCGA-BRCA", "root")
    assert (first.created, first.project_known) == (True, True)
    again = grant(db, "vic", "TCGA-BRCA", "root")
    assert (again.created, again.project_known) == (False, True)
    ahead = grant(db, "vic", "CPTAC-3", None)  # a grant may precede the project's ingestion
    assert (ahead.created, ahead.project_known) == (True, False)

    scope = scope_for(db, viewer)
    assert scope.granted_projects == frozenset({"TCGA-BRCA", "CPTAC-3"}) and not scope.unrestricted
    assert scope.may_see_project("TCGA-BRCA", controlled=True)
    assert not scope.may_see_project("TCGA-LUAD", controlled=True)
    assert scope_for(db, admin).granted_projects == frozenset()

    key = issue_key(db, "vic")
    auth = authenticate(db, key.key)
    assert auth is not None and auth.scope.granted_projects == scope.granted_projects

    assert [
        (g["principal"], g["project_id"], g["granted_by"], g["project_controlled"]) for g in list_grants(db)
    ] == [
        ("vic", "CPTAC-3", None, None),
        ("vic", "TCGA-BRCA", "root", False),
    ]
    listed = {p["name"]: p for p in list_principals(db)}
    assert [g["project_id"] for g in listed["vic"]["grants"]] == ["CPTAC-3", "TCGA-BRCA"]
    assert [k["prefix"] for k in listed["vic"]["keys"]] == [key.prefix]
    assert listed["root"]["grants"] == [] and listed["root"]["role"] == "admin"

    revoke_grant(db, "vic", "TCGA-BRCA")
    assert scope_for(db, viewer).granted_projects == frozenset({"CPTAC-3"})
    with pytest.raises(NotFoundError, match="has no grant for project 'TCGA-BRCA'") as exc:
        revoke_grant(db, "vic", "TCGA-BRCA")
    assert "grants list" in exc.value.hint
    with pytest.raises(NotFoundError, match="no principal named 'nobody'"):
        grant(db, "nobody", "TCGA-BRCA", "root")
    with pytest.raises(ValidationError, match="invalid project id"):
        grant(db, "vic", "", "root")


def test_set_project_controlled(db: Session) -> None:
    _make_project(db, "TCGA-CHOL")
    assert not _controlled(db, "TCGA-CHOL")
    assert set_project_controlled(db, "TCGA-CHOL", True) is True
    assert _controlled(db, "TCGA-CHOL")
    assert set_project_controlled(db, "TCGA-CHOL", True) is False
    add_principal(db, "vic", "viewer")
    grant(db, "vic", "TCGA-CHOL", "local")
    assert list_grants(db)[0]["project_controlled"] is True
    assert set_project_controlled(db, "TCGA-CHOL", False) is True
    assert not _controlled(db, "TCGA-CHOL")
    with pytest.raises(ValidationError, match="invalid project id"):
        set_project_controlled(db, "", True)


def test_a_project_may_be_controlled_before_its_first_ingest(db: Session) -> None:
    """Issue 9 A10: marking a project controlled before it is ingested used to be refused, leaving it open to
    everyone from its ingest until someone ran `projects control`."""
    assert set_project_controlled(db, "TCGA-LATER", True, set_by="root") is True
    assert set_project_controlled(db, "TCGA-LATER", True) is False
    _make_project(db, "TCGA-LATER")  # the ingest inserts the row: it takes the mark
    assert _controlled(db, "TCGA-LATER")
    assert set_project_controlled(db, "TCGA-LATER", False) is True
    assert not _controlled(db, "TCGA-LATER")


def test_local_principal(db: Session) -> None:
    local = ensure_local_principal(db)
    assert (local.name, local.role) == (LOCAL_PRINCIPAL, "admin")
    assert ensure_local_principal(db).id == local.id
    assert db.execute(text("SELECT count(*) FROM principal")).scalar_one() == 1
    with pytest.raises(ValidationError, match="no API keys") as exc:
        issue_key(db, LOCAL_PRINCIPAL)
    assert "--role admin" in exc.value.hint


def test_a_misspelt_project_is_refused_with_the_right_spelling(db: Session) -> None:
    """Review of issue 9: `projects control tcga-chol` marked a project that does not exist, leaving TCGA-CHOL
    open. An id that differs from a known project only in case is refused, naming it."""
    _make_project(db, "TCGA-CHOL")
    with pytest.raises(ValidationError, match="did you mean 'TCGA-CHOL'"):
        set_project_controlled(db, "tcga-chol", True)
    assert not _controlled(db, "TCGA-CHOL")
