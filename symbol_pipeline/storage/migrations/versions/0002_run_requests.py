"""run requests

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 15:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pipeline_run_requests',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('first_date', sa.Date(), nullable=False),
    sa.Column('last_date', sa.Date(), nullable=False),
    sa.Column('symbols', sa.Text(), nullable=True),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='requested', nullable=False),
    sa.Column('run_ids', sa.Text(), server_default='', nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('active_key', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("kind IN ('daily', 'backfill', 'onboard')", name='ck_pipeline_run_requests_kind'),
    sa.CheckConstraint("status IN ('requested', 'running', 'succeeded', 'failed')", name='ck_pipeline_run_requests_status'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pipeline_run_requests', schema=None) as batch_op:
        batch_op.create_index('ux_pipeline_run_requests_active_key', ['active_key'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('pipeline_run_requests', schema=None) as batch_op:
        batch_op.drop_index('ux_pipeline_run_requests_active_key')
    op.drop_table('pipeline_run_requests')
