"""Sessions with no price for a symbol, recorded so that their partitions count as materialised (issue 8)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 16:00:00
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
