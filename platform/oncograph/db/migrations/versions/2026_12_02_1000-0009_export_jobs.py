"""Exports are jobs: a lease and heartbeat for the worker that runs one, attempts, and a superseded state

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00+00:00

Written by hand. See NOTES.md and docs/adr/0005-export-jobs.md.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('queued', 'running', 'succeeded', 'failed')"
NEW_STATUSES = "status IN ('queued', 'running', 'succeeded', 'failed', 'abandoned', 'superseded')"


def upgrade() -> None:
    op.add_column("export", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("export", sa.Column("lease_owner", sa.Text(), nullable=True))
    op.add_column("export", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("export", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("export", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    # the access scope the export was queued under (a worker runs it under no wider scope)
    op.add_column("export", sa.Column("scope", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("export", sa.Column("superseded_by_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_export_superseded_by_id_export"), "export", "export", ["superseded_by_id"], ["id"]
    )
    op.drop_constraint(op.f("ck_export_status"), "export", type_="check")
    op.create_check_constraint(op.f("ck_export_status"), "export", NEW_STATUSES)
    # one published export per destination: older duplicates become superseded by the newest one
    op.execute(
        """
        UPDATE export e SET status = 'superseded', superseded_by_id = newest.id
        FROM (SELECT DISTINCT ON (destination) id, destination FROM export WHERE status = 'succeeded'
              ORDER BY destination, id DESC) newest
        WHERE e.status = 'succeeded' AND e.destination = newest.destination AND e.id <> newest.id
        """
    )
    op.create_index(
        op.f("uq_export_published_destination"),
        "export",
        ["destination"],
        unique=True,
        postgresql_where=sa.text("status = 'succeeded'"),
    )
    # what a worker scans for: queued jobs and running jobs whose lease may have expired
    op.create_index(
        op.f("ix_export_claimable"),
        "export",
        ["lease_expires_at", "id"],
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_export_claimable"), table_name="export")
    op.drop_index(op.f("uq_export_published_destination"), table_name="export")
    op.execute("UPDATE export SET status = 'succeeded' WHERE status = 'superseded'")
    op.execute("UPDATE export SET status = 'failed' WHERE status = 'abandoned'")
    op.drop_constraint(op.f("ck_export_status"), "export", type_="check")
    op.create_check_constraint(op.f("ck_export_status"), "export", OLD_STATUSES)
    op.drop_constraint(op.f("fk_export_superseded_by_id_export"), "export", type_="foreignkey")
    for name in (
        "superseded_by_id",
        "scope",
        "started_at",
        "heartbeat_at",
        "lease_expires_at",
        "lease_owner",
        "attempts",
    ):
        op.drop_column("export", name)
