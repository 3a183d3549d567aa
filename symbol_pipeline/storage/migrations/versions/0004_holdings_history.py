"""Holdings at a date: effective-dated quantity and equity changes (issue 10)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 16:00:00

Existing rows keep their meaning: each position gets one quantity row, its current quantity,
effective from its entry date or, without one, from its portfolio's creation date; each portfolio
one equity row, its current equity, effective from its creation date.
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('position_quantities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('position_id', sa.Integer(), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('quantity', sa.Double(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('quantity <> 0', name='ck_position_quantities_nonzero'),
    sa.ForeignKeyConstraint(['position_id'], ['positions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('position_quantities', schema=None) as batch_op:
        batch_op.create_index('ix_position_quantities_position_date', ['position_id', 'effective_date'], unique=False)

    op.create_table('portfolio_equity',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('portfolio_id', sa.Uuid(as_uuid=False), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('equity', sa.Double(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['portfolio_id'], ['portfolios.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('portfolio_equity', schema=None) as batch_op:
        batch_op.create_index('ix_portfolio_equity_portfolio_date', ['portfolio_id', 'effective_date'], unique=False)

    with op.batch_alter_table('symbol_prices_daily', schema=None) as batch_op:
        batch_op.create_index('ix_symbol_prices_daily_splits', ['symbol', 'date'], unique=False,
                              postgresql_where=sa.text('split_ratio <> 1.0'), sqlite_where=sa.text('split_ratio <> 1.0'))

    with op.batch_alter_table('symbol_factor_exposures', schema=None) as batch_op:
        batch_op.create_index('ix_symbol_factor_exposures_history', ['symbol', 'date', 'factor', 'beta'], unique=False)

    # date() of a timestamp is the same function on PostgreSQL (in the server's time zone) and SQLite.
    op.execute(
        "INSERT INTO position_quantities (position_id, effective_date, quantity) "
        "SELECT p.id, COALESCE(p.entry_date, date(f.created_at)), p.quantity "
        "FROM positions p JOIN portfolios f ON f.id = p.portfolio_id ORDER BY p.id"
    )
    op.execute(
        "INSERT INTO portfolio_equity (portfolio_id, effective_date, equity) "
        "SELECT id, date(created_at), equity FROM portfolios"
    )


def downgrade() -> None:
    with op.batch_alter_table('symbol_factor_exposures', schema=None) as batch_op:
        batch_op.drop_index('ix_symbol_factor_exposures_history')
    with op.batch_alter_table('symbol_prices_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_symbol_prices_daily_splits')
    with op.batch_alter_table('portfolio_equity', schema=None) as batch_op:
        batch_op.drop_index('ix_portfolio_equity_portfolio_date')
    op.drop_table('portfolio_equity')
    with op.batch_alter_table('position_quantities', schema=None) as batch_op:
        batch_op.drop_index('ix_position_quantities_position_date')
    op.drop_table('position_quantities')
