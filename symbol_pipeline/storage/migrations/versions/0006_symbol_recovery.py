"""Symbols recover: fetch retries with backoff, onboarding caps and priorities (issue 9)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 16:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("symbol_universe") as batch:
        batch.add_column(sa.Column("retry_attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_symbol_universe_next_retry_at", ["next_retry_at"])
    with op.batch_alter_table("symbol_onboarding_queue") as batch:
        batch.create_index("ix_symbol_onboarding_queue_requested_by", ["requested_by", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("symbol_onboarding_queue") as batch:
        batch.drop_index("ix_symbol_onboarding_queue_requested_by")
    with op.batch_alter_table("symbol_universe") as batch:
        batch.drop_index("ix_symbol_universe_next_retry_at")
        batch.drop_column("next_retry_at")
        batch.drop_column("retry_attempts")
