"""A project's controlled mark is taken even when per-row triggers are skipped

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 09:00:00+00:00

Written by hand (ADR 0010). Ingest writes skip the per-row foreign key triggers (``session_replication_role
= replica``, ``oncograph.ingest.writer.skip_row_triggers``); ``project_take_control_mark`` (migration 0008)
copies an admin's controlled mark onto a project row an ingest inserts and must fire then too, or a project
marked before its first ingest would arrive open.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE project ENABLE ALWAYS TRIGGER project_take_control_mark")


def downgrade() -> None:
    op.execute("ALTER TABLE project ENABLE TRIGGER project_take_control_mark")
