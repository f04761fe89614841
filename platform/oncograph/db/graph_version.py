"""The graph version (migration 0012, ADR 0010): which committed state of the graph a reader sees, so that
anything computed from the graph (the cohort index, its response cache) is reused exactly while nothing it read
has changed, and never once a change has committed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

_READ = text(
    "SELECT v.version, v.instance::text, d.oid::bigint, "
    "EXISTS (SELECT 1 FROM graph_change_pending) AS pending "
    "FROM graph_version v, pg_database d WHERE d.datname = current_database()"
)


@dataclass(frozen=True, slots=True)
class GraphVersion:
    database: tuple[int, str]
    """The database (its oid, and the instance id its migration drew): names and templates are reused."""
    version: int
    """Moves on with every committed transaction that changed a table the cohort fields read."""
    pending: bool
    """This transaction has changed the graph and not committed: nothing cached for ``version`` holds for it."""


def read_graph_version(conn: Connection | Session) -> GraphVersion:
    version, instance, oid, pending = conn.execute(_READ).one()
    return GraphVersion((int(oid), str(instance)), int(version), bool(pending))


def mark_graph_changed(conn: Connection | Session) -> None:
    """Record that this transaction changed the graph where no trigger sees it (a materialised view refresh)."""
    conn.execute(text("SELECT oncograph_graph_changed()"))
