"""Skipping the per-row (and per-statement) reference triggers for a transaction, when the role may.

``session_replication_role = replica`` turns off every trigger that is not ``ENABLE ALWAYS``: the foreign
keys' referential-integrity triggers and oncograph's own reference checks (migration 0013). Only writers whose
every reference comes from rows read in the same transaction may use it (ingest statements that join each
parent's id on its key, a cohort version's members read from ``patient``); graph rows, documents, releases and
patients are never deleted. Unique, NOT NULL and CHECK constraints still apply, and the triggers that must
always fire (the graph version, a project's controlled mark) are ``ENABLE ALWAYS``.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def skip_row_triggers(session: Session) -> bool:
    """Skip the reference triggers for the rest of the transaction (or savepoint), when the role may; returns
    whether they are skipped (a role without the right keeps them, and its writes stay correct, only slower).
    """
    allowed = session.execute(
        text(
            "SELECT current_setting('is_superuser') = 'on' "
            "OR has_parameter_privilege('session_replication_role', 'SET')"
        )
    ).scalar_one()
    if allowed:
        session.execute(text("SET LOCAL session_replication_role = replica"))
    return bool(allowed)


def restore_row_triggers(session: Session) -> None:
    session.execute(text("SET LOCAL session_replication_role = DEFAULT"))
