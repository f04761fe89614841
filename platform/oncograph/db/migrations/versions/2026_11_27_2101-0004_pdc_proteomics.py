"""PDC proteomics: studies, cases, the study-case link and files

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 21:01:00+00:00

Written by hand (revision 0003, IDC, is written in parallel): ``op.create_table`` for the PDC tables only,
checked against an autogenerate diff of ``oncograph.db.models.proteomics``.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _lineage(table: str) -> list[Any]:
    """The GraphRow columns and their foreign keys (surrogate id, source document, releases, timestamps)."""
    release = "source_release"
    return [
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("source_document_id", sa.BigInteger(), nullable=False),
        sa.Column("first_seen_release_id", sa.Integer(), nullable=False),
        sa.Column("last_seen_release_id", sa.Integer(), nullable=False),
        sa.Column("retired_release_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["first_seen_release_id"],
            [f"{release}.id"],
            name=op.f(f"fk_{table}_first_seen_release_id_{release}"),
        ),
        sa.ForeignKeyConstraint(
            ["last_seen_release_id"],
            [f"{release}.id"],
            name=op.f(f"fk_{table}_last_seen_release_id_{release}"),
        ),
        sa.ForeignKeyConstraint(
            ["retired_release_id"], [f"{release}.id"], name=op.f(f"fk_{table}_retired_release_id_{release}")
        ),
        sa.ForeignKeyConstraint(
            ["source_document_id"],
            ["source_document.id"],
            name=op.f(f"fk_{table}_source_document_id_source_document"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def _index(table: str, column: str) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def upgrade() -> None:
    """Create pdc_study, pdc_case, pdc_study_case and pdc_file."""
    op.create_table(
        "pdc_study",
        sa.Column("pdc_study_id", sa.Text(), nullable=False),
        *(
            sa.Column(name, sa.Text(), nullable=True)
            for name in (
                "study_id",
                "study_submitter_id",
                "study_name",
                "study_shortname",
                "submitter_id_name",
                "study_version",
                "is_latest_version",
                "program_name",
                "program_id",
                "project_name",
                "project_id",
                "project_submitter_id",
                "disease_type",
                "primary_site",
                "analytical_fraction",
                "experiment_type",
                "acquisition_type",
            )
        ),
        sa.Column("cases_count", sa.Integer(), nullable=True),
        sa.Column("aliquots_count", sa.Integer(), nullable=True),
        sa.Column("files_count", sa.Integer(), nullable=True),
        sa.Column("embargo_date", sa.Text(), nullable=True),
        *_lineage("pdc_study"),
        sa.UniqueConstraint("pdc_study_id", name=op.f("uq_pdc_study_pdc_study_id")),
    )
    for column in ("project_submitter_id", "source_document_id", "study_submitter_id"):
        _index("pdc_study", column)

    op.create_table(
        "pdc_case",
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column("key_derived", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("case_submitter_id", sa.Text(), nullable=False),
        *(
            sa.Column(name, sa.Text(), nullable=True)
            for name in (
                "project_submitter_id",
                "project_id",
                "disease_type",
                "primary_site",
                "tissue_source_site_code",
                "consent_type",
                "case_is_ref",
            )
        ),
        sa.Column("gdc_case_id", sa.UUID(), nullable=True),
        sa.Column("gdc_case_id_field", sa.Text(), nullable=True),
        *_lineage("pdc_case"),
        sa.UniqueConstraint("case_id", name=op.f("uq_pdc_case_case_id")),
        sa.UniqueConstraint(
            "project_submitter_id",
            "case_submitter_id",
            name=op.f("uq_pdc_case_project_submitter_id_case_submitter_id"),
        ),
    )
    for column in ("case_submitter_id", "gdc_case_id", "project_submitter_id", "source_document_id"):
        _index("pdc_case", column)

    op.create_table(
        "pdc_study_case",
        sa.Column("study_row_id", sa.BigInteger(), nullable=False),
        sa.Column("case_row_id", sa.BigInteger(), nullable=False),
        *_lineage("pdc_study_case"),
        sa.ForeignKeyConstraint(
            ["case_row_id"], ["pdc_case.id"], name=op.f("fk_pdc_study_case_case_row_id_pdc_case")
        ),
        sa.ForeignKeyConstraint(
            ["study_row_id"], ["pdc_study.id"], name=op.f("fk_pdc_study_case_study_row_id_pdc_study")
        ),
        sa.UniqueConstraint(
            "study_row_id", "case_row_id", name=op.f("uq_pdc_study_case_study_row_id_case_row_id")
        ),
    )
    for column in ("case_row_id", "source_document_id"):
        _index("pdc_study_case", column)

    op.create_table(
        "pdc_file",
        sa.Column("file_id", sa.UUID(), nullable=False),
        sa.Column("key_derived", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        *(
            sa.Column(name, sa.Text(), nullable=True)
            for name in (
                "file_name",
                "file_submitter_id",
                "file_type",
                "file_format",
                "data_category",
                "md5sum",
            )
        ),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("file_location", sa.Text(), nullable=True),
        sa.Column("pdc_study_id", sa.Text(), nullable=True),
        sa.Column("study_submitter_id", sa.Text(), nullable=True),
        sa.Column("study_row_id", sa.BigInteger(), nullable=True),
        *_lineage("pdc_file"),
        sa.ForeignKeyConstraint(
            ["study_row_id"], ["pdc_study.id"], name=op.f("fk_pdc_file_study_row_id_pdc_study")
        ),
        sa.UniqueConstraint("file_id", name=op.f("uq_pdc_file_file_id")),
    )
    for column in ("pdc_study_id", "source_document_id", "study_row_id", "study_submitter_id"):
        _index("pdc_file", column)
    op.create_index("ix_pdc_file_type", "pdc_file", ["data_category", "file_type"], unique=False)


def downgrade() -> None:
    """Drop the PDC tables (children first)."""
    for table in ("pdc_study_case", "pdc_file", "pdc_case", "pdc_study"):
        op.drop_table(table)
