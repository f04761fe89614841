"""PDC proteomics: studies, cases, samples, aliquots, files (placeholder until the PDC work lands)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 21:01:00+00:00

"""

from collections.abc import Sequence

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing yet."""


def downgrade() -> None:
    """Nothing yet."""
