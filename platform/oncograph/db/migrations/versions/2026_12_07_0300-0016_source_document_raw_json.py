"""source_document.raw becomes json text

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 03:00:00+00:00

Written by hand (ADR 0001 amendment). Nothing queries inside a stored source document (lineage returns it
whole; versions are told apart by ``content_hash``), and parsing every ~10 KB GDC case document into ``jsonb``
and re-encoding it was about half of the statement time of storing documents in a harvest. ``json`` keeps
the text as sent (validated as JSON), in the same TOAST storage. The conversion rewrites the table once.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE source_document ALTER COLUMN raw TYPE json USING raw::json")


def downgrade() -> None:
    op.execute("ALTER TABLE source_document ALTER COLUMN raw TYPE jsonb USING raw::jsonb")
