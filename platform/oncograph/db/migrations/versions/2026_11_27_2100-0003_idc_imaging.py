"""IDC imaging: idc patients, studies and series (placeholder until the IDC work lands)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 21:00:00+00:00

"""

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing yet."""


def downgrade() -> None:
    """Nothing yet."""
