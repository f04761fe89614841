"""Run statuses as a CHECK constraint (the values of ``oncograph.db.models.provenance.RUN_STATUSES``)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:30:00+00:00

Written by hand. See NOTES.md.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out (a migration never imports the models, which move on): tests compare it with RUN_STATUSES.
RUN_STATUSES = ("running", "succeeded", "failed", "abandoned")


def upgrade() -> None:
    listed = ", ".join(f"'{s}'" for s in RUN_STATUSES)
    op.create_check_constraint(op.f("ck_run_status"), "run", f"status IN ({listed})")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_run_status"), "run", type_="check")
