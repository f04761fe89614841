"""Embedding runs: encoders registered by users, per-object input checksum, attachment, feature files and
failures; an embedding of an object that matched no patient keeps a NULL patient

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 17:00:00+00:00

Written by hand. See NOTES.md.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out (a migration never imports the models): tests compare it with ATTACHMENTS.
ATTACHMENTS = ("graph", "file_id", "md5", "barcode", "series_uid", "unattached")


def upgrade() -> None:
    op.alter_column("embedding", "patient_id", existing_type=sa.BigInteger(), nullable=True)
    op.add_column("embedding", sa.Column("source_uri", sa.Text(), nullable=True))
    op.add_column("embedding", sa.Column("input_sha256", sa.Text(), nullable=True))
    op.add_column("embedding", sa.Column("attached_by", sa.Text(), server_default="graph", nullable=False))
    op.add_column("embedding", sa.Column("features_uri", sa.Text(), nullable=True))
    op.add_column("embedding", sa.Column("features_sha256", sa.Text(), nullable=True))
    op.add_column("embedding", sa.Column("features_bytes", sa.BigInteger(), nullable=True))
    op.add_column("embedding", sa.Column("tiles", sa.Integer(), nullable=True))
    op.add_column("embedding", sa.Column("source_text", sa.Text(), nullable=True))
    op.add_column(
        "embedding",
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
    )
    op.create_index(op.f("ix_embedding_input_sha256"), "embedding", ["input_sha256"], unique=False)
    listed = ", ".join(f"'{s}'" for s in ATTACHMENTS)
    op.create_check_constraint(op.f("ck_embedding_attached_by"), "embedding", f"attached_by IN ({listed})")

    op.create_table(
        "encoder",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("modalities", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("arch", sa.Text(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("tile_size", sa.Integer(), nullable=False),
        sa.Column("mpp", sa.Float(), nullable=True),
        sa.Column("mean", postgresql.ARRAY(sa.Float()), nullable=False),
        sa.Column("std", postgresql.ARRAY(sa.Float()), nullable=False),
        sa.Column("weights", sa.Text(), nullable=False),
        sa.Column("weights_sha256", sa.Text(), nullable=False),
        sa.Column("pooling", sa.Text(), server_default="mean", nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encoder")),
        sa.UniqueConstraint("name", name=op.f("uq_encoder_name")),
    )
    op.create_table(
        "embedding_failure",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("modality", sa.Text(), nullable=False),
        sa.Column("source_uri", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], name=op.f("fk_embedding_failure_run_id_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embedding_failure")),
        sa.UniqueConstraint("run_id", "source_uri", name=op.f("uq_embedding_failure_run_id")),
    )
    op.create_index(op.f("ix_embedding_failure_run_id"), "embedding_failure", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_embedding_failure_run_id"), table_name="embedding_failure")
    op.drop_table("embedding_failure")
    op.drop_table("encoder")
    op.drop_constraint(op.f("ck_embedding_attached_by"), "embedding", type_="check")
    op.drop_index(op.f("ix_embedding_input_sha256"), table_name="embedding")
    for column in (
        "details",
        "source_text",
        "tiles",
        "features_bytes",
        "features_sha256",
        "features_uri",
        "attached_by",
        "input_sha256",
        "source_uri",
    ):
        op.drop_column("embedding", column)
    op.execute("DELETE FROM embedding WHERE patient_id IS NULL")
    op.alter_column("embedding", "patient_id", existing_type=sa.BigInteger(), nullable=False)
