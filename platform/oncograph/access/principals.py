"""Principals, their API keys, project grants and controlled projects. Functions take a Session and never commit.

Keys look like ``og_<prefix>_<secret>``: ``prefix`` (10 hex characters, not secret) finds the row, and only the
SHA-256 of the whole key is stored, so the key is shown once, when it is issued, and never again. Keys are 256-bit
random, so a fast hash is enough (no password stretching needed).

Every principal, admins included, sees controlled data only of the projects it holds a grant for: the scope of
an API caller is never unrestricted (only the local CLI operator, with direct database access, is).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from oncograph.access.scope import Scope
from oncograph.db.models.access import ROLES, AccessGrant, ApiKey, Principal, ProjectControl
from oncograph.db.models.clinical import Project
from oncograph.errors import NotFoundError, ValidationError

log = logging.getLogger(__name__)

KEY_SCHEME = "og"
LOCAL_PRINCIPAL = "local"
"""The admin that owns what the CLI creates (cohorts, grants); it never has API keys."""

_PREFIX_BYTES = 5  # 10 hex characters
_MAX_KEY_LENGTH = 256
_LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Compared against when the prefix is unknown, so an unknown prefix costs the same hash-and-compare.
_DUMMY_HASH = hashlib.sha256(b"og_0000000000_unknown").hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A newly issued key. ``key`` is the secret: show it once, it is not stored and cannot be recovered."""

    principal: str
    role: str
    prefix: str
    key: str


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The caller behind a valid key, and the scope its reads are computed under."""

    principal: Principal
    scope: Scope
    key_prefix: str


@dataclass(frozen=True, slots=True)
class GrantResult:
    """``created``: false when the grant already existed. ``project_known``: whether the project is in the graph
    (a grant may precede the project's ingestion, but an unknown id is often a typo)."""

    principal: str
    project_id: str
    created: bool
    project_known: bool


def hash_key(key: str) -> str:
    """SHA-256 hex of the whole presented key (what ``api_key.key_hash`` stores)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValidationError(
            f"invalid principal name {name!r}",
            hint="use 1-128 letters, digits, '.', '_', '@' or '-', starting with a letter or digit",
        )
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}", hint=f"use one of {', '.join(ROLES)}")
    return role


def _check_project_id(project_id: str) -> str:
    if not _PROJECT.fullmatch(project_id):
        raise ValidationError(
            f"invalid project id {project_id!r}", hint="use a GDC project id such as TCGA-BRCA"
        )
    return project_id


def get_principal(session: Session, name: str) -> Principal:
    principal = session.scalars(select(Principal).where(Principal.name == name)).one_or_none()
    if principal is None:
        raise NotFoundError(
            f"no principal named {name!r}", hint="`oncograph users list` shows the principals"
        )
    return principal


def add_principal(session: Session, name: str, role: str) -> Principal:
    """A new principal with ``role`` (viewer, curator or admin) and no keys or grants yet."""
    _check_name(name)
    _check_role(role)
    if name == LOCAL_PRINCIPAL:
        raise ValidationError(
            f"the name {LOCAL_PRINCIPAL!r} is reserved for the CLI's own principal",
            hint="choose another name",
        )
    created = session.scalars(
        insert(Principal)
        .values(name=name, role=role)
        .on_conflict_do_nothing(index_elements=[Principal.name])
        .returning(Principal)
    ).one_or_none()
    if created is None:
        raise ValidationError(
            f"a principal named {name!r} already exists",
            hint=f"choose another name, or issue it another key with `oncograph users key {name}`",
        )
    return created


def ensure_local_principal(session: Session) -> Principal:
    """The admin principal ``local``, owner of what the CLI creates; created on first use."""
    session.execute(
        insert(Principal)
        .values(name=LOCAL_PRINCIPAL, role="admin")
        .on_conflict_do_nothing(index_elements=[Principal.name])
    )
    return get_principal(session, LOCAL_PRINCIPAL)


def issue_key(session: Session, principal_name: str) -> IssuedKey:
    """A new key for an enabled principal; the returned ``key`` is the only copy of the secret."""
    principal = get_principal(session, principal_name)
    if principal.name == LOCAL_PRINCIPAL:
        raise ValidationError(
            f"the {LOCAL_PRINCIPAL!r} principal is the CLI's own and has no API keys",
            hint="create a named admin with `oncograph users add NAME --role admin`",
        )
    if principal.disabled_at is not None:
        raise ValidationError(
            f"principal {principal.name!r} is disabled",
            hint="disabled principals get no new keys; add a new one",
        )
    for _ in range(5):
        prefix = secrets.token_hex(_PREFIX_BYTES)
        key = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
        key_id = session.scalars(
            insert(ApiKey)
            .values(principal_id=principal.id, prefix=prefix, key_hash=hash_key(key))
            .on_conflict_do_nothing(index_elements=[ApiKey.prefix])
            .returning(ApiKey.id)
        ).one_or_none()
        if key_id is not None:
            return IssuedKey(principal=principal.name, role=principal.role, prefix=prefix, key=key)
    raise RuntimeError("could not draw an unused key prefix in 5 tries")  # pragma: no cover (2**40 prefixes)


def _split_key(presented: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    if not presented or len(presented) > _MAX_KEY_LENGTH:
        return None
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME or not parts[1] or not parts[2]:
        return None
    return parts[1]


def authenticate(session: Session, presented_key: str) -> Authenticated | None:
    """The principal and scope behind ``presented_key``, or None when the key is malformed, unknown, wrong,
    revoked, or its principal is disabled (callers answer all of these the same way, e.g. HTTP 401).

    Records ``last_used_at`` at most once a minute per key (an UPDATE the caller's transaction commits)."""
    prefix = _split_key(presented_key)
    if prefix is None:
        log.debug("rejected a malformed API key")
        return None
    grants = (
        select(func.array_agg(AccessGrant.project_id))
        .where(AccessGrant.principal_id == Principal.id)
        .scalar_subquery()
    )
    stale = ApiKey.last_used_at.is_(None) | (ApiKey.last_used_at < func.now() - _LAST_USED_RESOLUTION)
    row = session.execute(  # one statement: the key, its principal, the grants, and whether to record the use
        select(ApiKey, Principal, grants, stale)
        .join(Principal, Principal.id == ApiKey.principal_id)
        .where(ApiKey.prefix == prefix)
    ).one_or_none()
    matches = hmac.compare_digest(hash_key(presented_key), row[0].key_hash if row else _DUMMY_HASH)
    if row is None or not matches:
        log.debug("rejected API key with prefix %s: unknown prefix or wrong secret", prefix)
        return None
    key, principal, granted, used_long_ago = row
    if key.revoked_at is not None or principal.disabled_at is not None:
        log.debug("rejected API key %s: revoked key or disabled principal", prefix)
        return None
    if used_long_ago:
        session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key.id,
                (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < func.now() - _LAST_USED_RESOLUTION),
            )
            .values(last_used_at=func.now())
            .execution_options(synchronize_session=False)
        )
    return Authenticated(principal=principal, scope=_scope(principal, granted or ()), key_prefix=prefix)


def scope_for(session: Session, principal: Principal) -> Scope:
    """What ``principal`` may see: its granted projects. Never unrestricted, admins included."""
    projects = session.scalars(select(AccessGrant.project_id).where(AccessGrant.principal_id == principal.id))
    return _scope(principal, projects)


def _scope(principal: Principal, projects: Iterable[str]) -> Scope:
    return Scope(
        principal=principal.name,
        role=principal.role,
        granted_projects=frozenset(projects),
        unrestricted=False,
    )


def revoke_key(session: Session, prefix: str) -> ApiKey:
    """Revoke the key with ``prefix`` (the part after ``og_``); revoking a revoked key changes nothing."""
    key = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one_or_none()
    if key is None:
        raise NotFoundError(
            f"no API key with prefix {prefix!r}",
            hint="the prefix is the part of the key after 'og_'; `oncograph users list` shows them",
        )
    if key.revoked_at is None:
        key.revoked_at = session.scalar(select(func.now()))
        session.flush()
    return key


def disable_principal(session: Session, name: str) -> Principal:
    """Disable a principal: none of its keys authenticate any more. Disabling twice changes nothing."""
    principal = get_principal(session, name)
    if principal.disabled_at is None:
        principal.disabled_at = session.scalar(select(func.now()))
        session.flush()
    return principal


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def list_principals(session: Session) -> list[dict[str, Any]]:
    """Every principal with its role, status, keys (prefixes only) and grants, by name."""
    principals = session.scalars(select(Principal).order_by(Principal.name)).all()
    keys: dict[int, list[dict[str, Any]]] = {}
    for key in session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)):
        keys.setdefault(key.principal_id, []).append(
            {
                "prefix": key.prefix,
                "created_at": _iso(key.created_at),
                "last_used_at": _iso(key.last_used_at),
                "revoked_at": _iso(key.revoked_at),
            }
        )
    grants: dict[int, list[dict[str, Any]]] = {}
    for g in session.scalars(select(AccessGrant).order_by(AccessGrant.project_id)):
        grants.setdefault(g.principal_id, []).append(
            {"project_id": g.project_id, "granted_by": g.granted_by, "granted_at": _iso(g.granted_at)}
        )
    return [
        {
            "name": p.name,
            "role": p.role,
            "created_at": _iso(p.created_at),
            "disabled_at": _iso(p.disabled_at),
            "keys": keys.get(p.id, []),
            "grants": grants.get(p.id, []),
        }
        for p in principals
    ]


def _project_controlled(session: Session, project_id: str) -> bool | None:
    """The project's ``controlled`` flag, or None when the project is not in the graph."""
    return session.scalar(select(Project.controlled).where(Project.project_id == project_id))


def grant(session: Session, principal_name: str, project_id: str, granted_by: str | None) -> GrantResult:
    """Let the principal see the controlled data of ``project_id``; granting twice changes nothing."""
    _check_project_id(project_id)
    principal = get_principal(session, principal_name)
    created = session.scalars(
        insert(AccessGrant)
        .values(principal_id=principal.id, project_id=project_id, granted_by=granted_by)
        .on_conflict_do_nothing(index_elements=[AccessGrant.principal_id, AccessGrant.project_id])
        .returning(AccessGrant.project_id)
    ).one_or_none()
    return GrantResult(
        principal=principal.name,
        project_id=project_id,
        created=created is not None,
        project_known=_project_controlled(session, project_id) is not None,
    )


def revoke_grant(session: Session, principal_name: str, project_id: str) -> None:
    principal = get_principal(session, principal_name)
    removed = session.execute(
        delete(AccessGrant)
        .where(AccessGrant.principal_id == principal.id, AccessGrant.project_id == project_id)
        .returning(AccessGrant.project_id)
    ).one_or_none()
    if removed is None:
        raise NotFoundError(
            f"principal {principal_name!r} has no grant for project {project_id!r}",
            hint="`oncograph grants list` shows the grants",
        )


def list_grants(session: Session) -> list[dict[str, Any]]:
    """Every grant, with the project's controlled flag (None when the project is not in the graph yet)."""
    rows = session.execute(
        select(
            Principal.name,
            AccessGrant.project_id,
            AccessGrant.granted_by,
            AccessGrant.granted_at,
            Project.controlled,
        )
        .join(Principal, Principal.id == AccessGrant.principal_id)
        .outerjoin(Project, Project.project_id == AccessGrant.project_id)
        .order_by(Principal.name, AccessGrant.project_id)
    )
    return [
        {
            "principal": name,
            "project_id": project_id,
            "granted_by": granted_by,
            "granted_at": _iso(granted_at),
            "project_controlled": controlled,
        }
        for name, project_id, granted_by, granted_at, controlled in rows
    ]


def set_project_controlled(
    session: Session, project_id: str, controlled: bool, *, set_by: str | None = None
) -> bool:
    """Mark a project controlled (all its data visible only with a grant) or not; returns whether it changed.

    The mark may precede the project's first ingest: it is kept in ``project_control``, and the project row an
    ingest inserts later takes it (a database trigger), so a project is never open between its ingest and a
    later ``projects control``.
    """
    _check_project_id(project_id)
    if _project_controlled(session, project_id) is None:
        spelled = session.scalar(
            select(Project.project_id).where(func.upper(Project.project_id) == project_id.upper()).limit(1)
        )
        if spelled is not None:
            raise ValidationError(
                f"no project {project_id!r} in the graph; did you mean {spelled!r}?",
                hint="GDC project ids are case-sensitive (TCGA-BRCA)",
            )
    previous_mark = session.scalar(
        select(ProjectControl.controlled).where(ProjectControl.project_id == project_id)
    )
    previous = _project_controlled(session, project_id)
    session.execute(
        insert(ProjectControl)
        .values(project_id=project_id, controlled=controlled, set_by=set_by)
        .on_conflict_do_update(
            index_elements=[ProjectControl.project_id],
            set_={"controlled": controlled, "set_by": set_by, "set_at": func.now()},
        )
    )
    if previous is None:
        return bool(previous_mark) != controlled
    if previous == controlled:
        return False
    session.execute(
        update(Project)
        .where(Project.project_id == project_id)
        .values(controlled=controlled, updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
    return True


def project_known(session: Session, project_id: str) -> bool:
    """Whether ``project_id`` is in the graph (a controlled mark may name a project not ingested yet)."""
    return _project_controlled(session, project_id) is not None
