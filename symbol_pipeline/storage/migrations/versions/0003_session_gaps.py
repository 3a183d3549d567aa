"""Sessions with no price for a symbol, recorded so that their partitions count as materialised (issue 8)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 16:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('symbol_session_gaps',
    sa.Column('symbol', sa.String(length=20), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("reason IN ('not_listed', 'no_price', 'gap')", name='ck_symbol_session_gaps_reason'),
    sa.PrimaryKeyConstraint('symbol', 'date')
    )
    with op.batch_alter_table('symbol_session_gaps', schema=None) as batch_op:
        batch_op.create_index('ix_symbol_session_gaps_date', ['date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('symbol_session_gaps', schema=None) as batch_op:
        batch_op.drop_index('ix_symbol_session_gaps_date')
    op.drop_table('symbol_session_gaps')
