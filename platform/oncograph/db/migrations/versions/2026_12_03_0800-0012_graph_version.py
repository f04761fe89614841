"""The graph version: a counter that every committed change to a table the cohort fields read moves on

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 08:00:00+00:00

Written by hand (ADR 0010). A statement trigger on each table the cohort fields read records, once per
transaction, that the transaction changed the graph (a row in ``graph_change_pending``, visible only to that
transaction); a deferred constraint trigger on that row bumps ``graph_version.version`` at commit and removes
the row. So:

- readers see the new version exactly when they can see the committed rows (the bump is part of the commit);
- the version row is locked only for the last moment of a writing transaction (no writer waits on another
  for longer than a commit, and no deadlock can form around it);
- a transaction that changed the graph and has not committed sees its own pending row, and readers in it
  must not trust anything cached for the committed version.

``oncograph_graph_changed()`` is the same mark for changes no trigger sees (``REFRESH MATERIALIZED VIEW``).
The two functions that write the version tables are SECURITY DEFINER (with the migration's search_path): a role
that may write the graph moves the version without any right on those tables.
``instance`` tells databases apart that share a name or were cloned from one template.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out (a migration never imports the models): a test checks that every table a cohort field reads, and
# every table whose rows give a cohort version its releases, is here.
GRAPH_TABLES = (
    "program",
    "project",
    "patient",
    "demographic",
    "diagnosis",
    "treatment",
    "pathology_detail",
    "follow_up",
    "exposure",
    "family_history",
    "sample",
    "portion",
    "analyte",
    "aliquot",
    "slide",
    "data_file",
    "file_patient",
    "identity_link",
    "idc_patient",
    "imaging_series",
    "embedding",
    "pdc_case",
)


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE graph_version (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            version bigint NOT NULL DEFAULT 0,
            instance uuid NOT NULL DEFAULT gen_random_uuid()
        );
        INSERT INTO graph_version DEFAULT VALUES;
        CREATE TABLE graph_change_pending (xid xid8 PRIMARY KEY);

        CREATE FUNCTION oncograph_graph_changed() RETURNS void LANGUAGE plpgsql
            SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            IF current_setting('oncograph.graph_changed', true) IS DISTINCT FROM 'on' THEN
                INSERT INTO graph_change_pending VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
                PERFORM set_config('oncograph.graph_changed', 'on', true);
            END IF;
        END $$;

        CREATE FUNCTION oncograph_graph_changed_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM oncograph_graph_changed();
            RETURN NULL;
        END $$;

        CREATE FUNCTION oncograph_graph_commit() RETURNS trigger LANGUAGE plpgsql
            SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            UPDATE graph_version SET version = version + 1;
            DELETE FROM graph_change_pending WHERE xid = NEW.xid;
            RETURN NULL;
        END $$;

        CREATE CONSTRAINT TRIGGER graph_commit AFTER INSERT ON graph_change_pending
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION oncograph_graph_commit();
        ALTER TABLE graph_change_pending ENABLE ALWAYS TRIGGER graph_commit;
        """
    )
    for table in GRAPH_TABLES:
        op.execute(
            f"CREATE TRIGGER graph_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION oncograph_graph_changed_trigger()"
        )
        # ALWAYS: bulk loads run with session_replication_role = replica (ingest.idc_bulk), which skips the
        # per-row foreign key triggers, and would skip these too
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER graph_changed")


def downgrade() -> None:
    for table in GRAPH_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS graph_changed ON {table}")
    op.execute(
        """
        DROP TABLE graph_change_pending;
        DROP TABLE graph_version;
        DROP FUNCTION oncograph_graph_commit();
        DROP FUNCTION oncograph_graph_changed_trigger();
        DROP FUNCTION oncograph_graph_changed();
        """
    )
