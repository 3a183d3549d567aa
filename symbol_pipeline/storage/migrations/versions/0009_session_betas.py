"""The betas one row per symbol and session, kept by triggers (issue 19): what the exposure history
reads on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 12:30:00

PostgreSQL only (SQLite reads the long table). In one transaction: the table, the function and
its triggers, then the copy of every (symbol, date) the long table holds. CREATE TRIGGER takes a
SHARE ROW EXCLUSIVE lock on symbol_factor_exposures: its readers go on, its writers wait until
the migration commits (measured in docs/performance.md).
"""

from alembic import op
import sqlalchemy as sa

from symbol_pipeline.storage import session_betas


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.create_table(
        session_betas.TABLE,
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("betas", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(f"octet_length(betas) = {session_betas.WIDTH}", name="ck_symbol_session_betas_width"),
        sa.PrimaryKeyConstraint("symbol", "date", postgresql_include=["betas"]),
    )
    for statement in session_betas.install_sql():
        op.execute(statement)
    op.execute(session_betas.backfill_sql())
    op.execute(f"ANALYZE {session_betas.TABLE}")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for statement in session_betas.uninstall_sql():
        op.execute(statement)
    op.drop_table(session_betas.TABLE)
