"""One access policy: an aggregate-only role, runs that name who started them and which projects they touched,
and controlled marks that may precede a project's ingestion

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:50:00+00:00

Written by hand. See NOTES.md.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A project row inserted by an ingest takes the controlled mark an admin set before it existed.
CONTROL_TRIGGER = """
CREATE FUNCTION project_take_control_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT pc.controlled INTO NEW.controlled FROM project_control pc WHERE pc.project_id = NEW.project_id;
  NEW.controlled := coalesce(NEW.controlled, false);
  RETURN NEW;
END $$;
CREATE TRIGGER project_take_control_mark BEFORE INSERT ON project
  FOR EACH ROW EXECUTE FUNCTION project_take_control_mark();
"""


def upgrade() -> None:
    op.drop_constraint(op.f("ck_principal_role"), "principal", type_="check")
    op.create_check_constraint(
        op.f("ck_principal_role"), "principal", "role IN ('aggregate', 'viewer', 'curator', 'admin')"
    )
    op.add_column("run", sa.Column("principal_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f("fk_run_principal_id_principal"), "run", "principal", ["principal_id"], ["id"])
    op.create_index(op.f("ix_run_principal_id"), "run", ["principal_id"])
    op.add_column("run", sa.Column("projects", postgresql.ARRAY(sa.Text()), nullable=True))
    op.create_table(
        "project_control",
        sa.Column("project_id", sa.Text(), primary_key=True),
        sa.Column("controlled", sa.Boolean(), nullable=False),
        sa.Column("set_by", sa.Text(), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.execute(
        "INSERT INTO project_control (project_id, controlled, set_by) "
        "SELECT project_id, true, 'migration 0008' FROM project WHERE controlled"
    )
    op.execute(CONTROL_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER project_take_control_mark ON project")
    op.execute("DROP FUNCTION project_take_control_mark()")
    op.drop_table("project_control")
    op.drop_column("run", "projects")
    op.drop_index(op.f("ix_run_principal_id"), table_name="run")
    op.drop_constraint(op.f("fk_run_principal_id_principal"), "run", type_="foreignkey")
    op.drop_column("run", "principal_id")
    op.execute("UPDATE principal SET role = 'viewer' WHERE role = 'aggregate'")
    op.drop_constraint(op.f("ck_principal_role"), "principal", type_="check")
    op.create_check_constraint(
        op.f("ck_principal_role"), "principal", "role IN ('viewer', 'curator', 'admin')"
    )
