"""Residual variance beside each beta (issue 10)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 16:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: rows computed before this revision have none until their dates are backfilled,
    # and the risk endpoint answers 409 for them rather than guessing.
    with op.batch_alter_table("symbol_factor_exposures") as batch:
        batch.add_column(sa.Column("residual_variance", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("symbol_factor_exposures") as batch:
        batch.drop_column("residual_variance")
