"""The stored partition window: one first date partition for every process (issue 17)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 20:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partition_window",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("first_date", sa.Date(), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), server_default=sa.text("now()") if op.get_context().dialect.name == "postgresql" else sa.text("CURRENT_TIMESTAMP"), nullable=False),
        sa.Column("moved_by", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_partition_window_one_row"),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("partition_window")
