"""Cohort members checked per statement, not per row

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 08:30:00+00:00

Written by hand (ADR 0010). The two foreign keys of ``cohort_member`` cost 1.1 s of the 1.5 s it took to
insert a 100k-member version (a referential-integrity trigger call per row and key). They become statement
triggers over transition tables: one anti-join per statement checks the same thing (every member names an
existing version and patient; no version or patient is deleted while members name it), in ~50 ms.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(
        "fk_cohort_member_cohort_version_id_cohort_version", "cohort_member", type_="foreignkey"
    )
    op.drop_constraint("fk_cohort_member_patient_id_patient", "cohort_member", type_="foreignkey")
    op.execute(
        """
        CREATE FUNCTION oncograph_check_new_members() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE bad record;
        BEGIN
            SELECT n.cohort_version_id, n.patient_id INTO bad FROM new_members n
            WHERE NOT EXISTS (SELECT 1 FROM cohort_version v WHERE v.id = n.cohort_version_id)
               OR NOT EXISTS (SELECT 1 FROM patient p WHERE p.id = n.patient_id)
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'cohort_member (%, %) names no cohort version or patient',
                    bad.cohort_version_id, bad.patient_id USING ERRCODE = 'foreign_key_violation';
            END IF;
            RETURN NULL;
        END $$;

        CREATE FUNCTION oncograph_check_no_members_of_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_TABLE_NAME = 'cohort_version' THEN
                PERFORM 1 FROM gone g JOIN cohort_member m ON m.cohort_version_id = g.id LIMIT 1;
            ELSE
                PERFORM 1 FROM gone g JOIN cohort_member m ON m.patient_id = g.id LIMIT 1;
            END IF;
            IF FOUND THEN
                RAISE EXCEPTION 'a deleted % row still has cohort members', TG_TABLE_NAME
                    USING ERRCODE = 'foreign_key_violation';
            END IF;
            RETURN NULL;
        END $$;

        CREATE TRIGGER cohort_member_references AFTER INSERT ON cohort_member
            REFERENCING NEW TABLE AS new_members
            FOR EACH STATEMENT EXECUTE FUNCTION oncograph_check_new_members();
        CREATE TRIGGER cohort_member_references_update AFTER UPDATE ON cohort_member
            REFERENCING NEW TABLE AS new_members
            FOR EACH STATEMENT EXECUTE FUNCTION oncograph_check_new_members();
        CREATE TRIGGER cohort_version_members AFTER DELETE ON cohort_version
            REFERENCING OLD TABLE AS gone
            FOR EACH STATEMENT EXECUTE FUNCTION oncograph_check_no_members_of_deleted();
        CREATE TRIGGER patient_members AFTER DELETE ON patient
            REFERENCING OLD TABLE AS gone
            FOR EACH STATEMENT EXECUTE FUNCTION oncograph_check_no_members_of_deleted();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER patient_members ON patient;
        DROP TRIGGER cohort_version_members ON cohort_version;
        DROP TRIGGER cohort_member_references_update ON cohort_member;
        DROP TRIGGER cohort_member_references ON cohort_member;
        DROP FUNCTION oncograph_check_no_members_of_deleted();
        DROP FUNCTION oncograph_check_new_members();
        """
    )
    op.create_foreign_key(
        "fk_cohort_member_cohort_version_id_cohort_version",
        "cohort_member",
        "cohort_version",
        ["cohort_version_id"],
        ["id"],
    )
    op.create_foreign_key(
        "fk_cohort_member_patient_id_patient", "cohort_member", "patient", ["patient_id"], ["id"]
    )
