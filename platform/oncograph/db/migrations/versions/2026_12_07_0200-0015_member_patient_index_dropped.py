"""cohort_member loses its index on patient_id

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 02:00:00+00:00

Written by hand (ADR 0010). Every reader of ``cohort_member`` finds members by version (the primary key,
``cohort_version_id, patient_id``); ``ix_cohort_member_patient_id`` served only the guard against deleting a
patient that a cohort names (migration 0013), and patients are never deleted (rows are retired). Keeping it
cost ~40% of writing a 100k-member version (100k random inserts into a second b-tree). The guard stays; it
scans the table, which only a manual ``DELETE FROM patient`` would make it do.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_cohort_member_patient_id", table_name="cohort_member")


def downgrade() -> None:
    op.create_index("ix_cohort_member_patient_id", "cohort_member", ["patient_id"])
