"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 00:34:42.010156
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('factor_definitions',
    sa.Column('factor', sa.String(length=32), nullable=False),
    sa.Column('family', sa.String(length=16), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('regressors', sa.String(length=64), nullable=False),
    sa.Column('window', sa.Integer(), nullable=False),
    sa.Column('min_observations', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('factor')
    )
    op.create_table('pipeline_alerts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('job_name', sa.String(length=128), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('webhook_status', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('portfolio_analytics_cache',
    sa.Column('portfolio_id', sa.Uuid(as_uuid=False), nullable=False),
    sa.Column('cache_type', sa.String(length=32), nullable=False),
    sa.Column('cache_key', sa.String(length=64), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('portfolio_id', 'cache_type', 'cache_key')
    )
    op.create_table('portfolio_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('portfolio_id', sa.Uuid(as_uuid=False), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('portfolio_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portfolio_changes_portfolio_id'), ['portfolio_id'], unique=False)

    op.create_table('portfolio_exposure_summary',
    sa.Column('portfolio_id', sa.Uuid(as_uuid=False), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=True),
    sa.Column('betas_date', sa.Date(), nullable=True),
    sa.Column('prices_date', sa.Date(), nullable=True),
    sa.Column('equity', sa.Double(), nullable=True),
    sa.Column('gross_exposure', sa.Double(), nullable=True),
    sa.Column('net_exposure', sa.Double(), nullable=True),
    sa.Column('positions', sa.Integer(), server_default='0', nullable=False),
    sa.Column('missing_symbols', sa.Text(), server_default='[]', nullable=False),
    sa.Column('stale_symbols', sa.Text(), server_default='[]', nullable=False),
    sa.Column('unpriced_symbols', sa.Text(), server_default='[]', nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('computed_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('portfolio_id')
    )
    op.create_table('portfolio_factor_exposures',
    sa.Column('portfolio_id', sa.Uuid(as_uuid=False), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=True),
    sa.Column('betas_date', sa.Date(), nullable=True),
    sa.Column('beta_market_beta', sa.Double(), nullable=True),
    sa.Column('dollar_exposure_market_beta', sa.Double(), nullable=True),
    sa.Column('coverage_market_beta', sa.Double(), nullable=True),
    sa.Column('beta_ir_beta', sa.Double(), nullable=True),
    sa.Column('dollar_exposure_ir_beta', sa.Double(), nullable=True),
    sa.Column('coverage_ir_beta', sa.Double(), nullable=True),
    sa.Column('beta_ridge_value', sa.Double(), nullable=True),
    sa.Column('dollar_exposure_ridge_value', sa.Double(), nullable=True),
    sa.Column('coverage_ridge_value', sa.Double(), nullable=True),
    sa.Column('beta_ridge_growth', sa.Double(), nullable=True),
    sa.Column('dollar_exposure_ridge_growth', sa.Double(), nullable=True),
    sa.Column('coverage_ridge_growth', sa.Double(), nullable=True),
    sa.Column('beta_ridge_momentum', sa.Double(), nullable=True),
    sa.Column('dollar_exposure_ridge_momentum', sa.Double(), nullable=True),
    sa.Column('coverage_ridge_momentum', sa.Double(), nullable=True),
    sa.Column('beta_ridge_quality', sa.Double(), nullable=True),
    sa.Column('dollar_exposure_ridge_quality', sa.Double(), nullable=True),
    sa.Column('coverage_ridge_quality', sa.Double(), nullable=True),
    sa.Column('beta_ridge_size', sa.Double(), nullable=True),
    sa.Column('dollar_exposure_ridge_size', sa.Double(), nullable=True),
    sa.Column('coverage_ridge_size', sa.Double(), nullable=True),
    sa.Column('beta_ridge_low_volatility', sa.Double(), nullable=True),
    sa.Column('dollar_exposure_ridge_low_volatility', sa.Double(), nullable=True),
    sa.Column('coverage_ridge_low_volatility', sa.Double(), nullable=True),
    sa.Column('beta_spread_growth_value', sa.Double(), nullable=True),
    sa.Column('dollar_exposure_spread_growth_value', sa.Double(), nullable=True),
    sa.Column('coverage_spread_growth_value', sa.Double(), nullable=True),
    sa.Column('beta_spread_momentum', sa.Double(), nullable=True),
    sa.Column('dollar_exposure_spread_momentum', sa.Double(), nullable=True),
    sa.Column('coverage_spread_momentum', sa.Double(), nullable=True),
    sa.Column('beta_spread_size', sa.Double(), nullable=True),
    sa.Column('dollar_exposure_spread_size', sa.Double(), nullable=True),
    sa.Column('coverage_spread_size', sa.Double(), nullable=True),
    sa.Column('beta_spread_quality', sa.Double(), nullable=True),
    sa.Column('dollar_exposure_spread_quality', sa.Double(), nullable=True),
    sa.Column('coverage_spread_quality', sa.Double(), nullable=True),
    sa.Column('computed_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('portfolio_id')
    )
    op.create_table('symbol_daily_metrics',
    sa.Column('symbol', sa.String(length=20), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('last_close', sa.Double(), nullable=True),
    sa.Column('return_1d', sa.Double(), nullable=True),
    sa.Column('return_5d', sa.Double(), nullable=True),
    sa.Column('return_21d', sa.Double(), nullable=True),
    sa.Column('return_63d', sa.Double(), nullable=True),
    sa.Column('return_252d', sa.Double(), nullable=True),
    sa.Column('volatility_21d', sa.Double(), nullable=True),
    sa.Column('volatility_63d', sa.Double(), nullable=True),
    sa.Column('market_beta', sa.Double(), nullable=True),
    sa.Column('ir_beta', sa.Double(), nullable=True),
    sa.Column('ridge_value', sa.Double(), nullable=True),
    sa.Column('ridge_growth', sa.Double(), nullable=True),
    sa.Column('ridge_momentum', sa.Double(), nullable=True),
    sa.Column('ridge_quality', sa.Double(), nullable=True),
    sa.Column('ridge_size', sa.Double(), nullable=True),
    sa.Column('ridge_low_volatility', sa.Double(), nullable=True),
    sa.Column('spread_growth_value', sa.Double(), nullable=True),
    sa.Column('spread_momentum', sa.Double(), nullable=True),
    sa.Column('spread_size', sa.Double(), nullable=True),
    sa.Column('spread_quality', sa.Double(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('symbol', 'date')
    )
    op.create_table('symbol_factor_exposures',
    sa.Column('symbol', sa.String(length=20), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('factor', sa.String(length=32), nullable=False),
    sa.Column('beta', sa.Double(), nullable=True),
    sa.Column('beta_uncapped', sa.Double(), nullable=True),
    sa.Column('capped', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('alpha', sa.Double(), nullable=True),
    sa.Column('r_squared', sa.Double(), nullable=True),
    sa.Column('std_error', sa.Double(), nullable=True),
    sa.Column('observations', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('window', sa.Integer(), nullable=False),
    sa.Column('min_observations', sa.Integer(), nullable=False),
    sa.Column('ridge_alpha', sa.Double(), nullable=True),
    sa.Column('beta_cap', sa.Double(), nullable=False),
    sa.Column('quality', sa.String(length=24), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('symbol', 'date', 'factor')
    )
    with op.batch_alter_table('symbol_factor_exposures', schema=None) as batch_op:
        batch_op.create_index('ix_symbol_factor_exposures_date', ['date'], unique=False)

    op.create_table('symbol_fetch_failures',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('symbol', sa.String(length=20), nullable=False),
    sa.Column('requested_start', sa.Date(), nullable=False),
    sa.Column('requested_end', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('symbol_fetch_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_symbol_fetch_failures_symbol'), ['symbol'], unique=False)

    op.create_table('symbol_onboarding_queue',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('symbol', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('requested_by', sa.String(length=64), server_default='system', nullable=False),
    sa.Column('priority', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'processing', 'completed', 'failed')", name='ck_symbol_onboarding_queue_status'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('symbol_onboarding_queue', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_symbol_onboarding_queue_symbol'), ['symbol'], unique=False)

    op.create_table('symbol_prices_daily',
    sa.Column('symbol', sa.String(length=20), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('open', sa.Double(), nullable=True),
    sa.Column('high', sa.Double(), nullable=True),
    sa.Column('low', sa.Double(), nullable=True),
    sa.Column('close', sa.Double(), nullable=False),
    sa.Column('adj_close', sa.Double(), nullable=True),
    sa.Column('volume', sa.Double(), nullable=True),
    sa.Column('dividend', sa.Double(), server_default='0', nullable=False),
    sa.Column('split_ratio', sa.Double(), server_default='1', nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('symbol', 'date')
    )
    with op.batch_alter_table('symbol_prices_daily', schema=None) as batch_op:
        batch_op.create_index('ix_symbol_prices_daily_date', ['date'], unique=False)

    op.create_table('symbol_universe',
    sa.Column('symbol', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('is_regressor', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('first_price_date', sa.Date(), nullable=True),
    sa.Column('last_price_date', sa.Date(), nullable=True),
    sa.Column('last_factor_date', sa.Date(), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'active', 'delisted', 'error')", name='ck_symbol_universe_status'),
    sa.PrimaryKeyConstraint('symbol')
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('is_admin', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('key_prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_key_prefix'), ['key_prefix'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_keys_user_id'), ['user_id'], unique=False)

    op.create_table('portfolios',
    sa.Column('id', sa.Uuid(as_uuid=False), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('equity', sa.Double(), nullable=False),
    sa.Column('currency', sa.String(length=3), server_default='USD', nullable=False),
    sa.Column('version', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("currency IN ('USD')", name='ck_portfolios_currency'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('portfolios', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portfolios_owner_id'), ['owner_id'], unique=False)

    op.create_table('positions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('portfolio_id', sa.Uuid(as_uuid=False), nullable=False),
    sa.Column('symbol', sa.String(length=20), nullable=False),
    sa.Column('quantity', sa.Double(), nullable=False),
    sa.Column('entry_price', sa.Double(), nullable=True),
    sa.Column('entry_date', sa.Date(), nullable=True),
    sa.Column('exit_date', sa.Date(), nullable=True),
    sa.Column('exit_price', sa.Double(), nullable=True),
    sa.Column('investment_class', sa.String(length=32), server_default='equity', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint('quantity <> 0', name='ck_positions_quantity_nonzero'),
    sa.ForeignKeyConstraint(['portfolio_id'], ['portfolios.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.create_index('ix_positions_portfolio_open', ['portfolio_id', 'exit_date'], unique=False)
        batch_op.create_index('ix_positions_symbol', ['symbol'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.drop_index('ix_positions_symbol')
        batch_op.drop_index('ix_positions_portfolio_open')

    op.drop_table('positions')
    with op.batch_alter_table('portfolios', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portfolios_owner_id'))

    op.drop_table('portfolios')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_user_id'))
        batch_op.drop_index(batch_op.f('ix_api_keys_key_prefix'))

    op.drop_table('api_keys')
    op.drop_table('users')
    op.drop_table('symbol_universe')
    with op.batch_alter_table('symbol_prices_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_symbol_prices_daily_date')

    op.drop_table('symbol_prices_daily')
    with op.batch_alter_table('symbol_onboarding_queue', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_symbol_onboarding_queue_symbol'))

    op.drop_table('symbol_onboarding_queue')
    with op.batch_alter_table('symbol_fetch_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_symbol_fetch_failures_symbol'))

    op.drop_table('symbol_fetch_failures')
    with op.batch_alter_table('symbol_factor_exposures', schema=None) as batch_op:
        batch_op.drop_index('ix_symbol_factor_exposures_date')

    op.drop_table('symbol_factor_exposures')
    op.drop_table('symbol_daily_metrics')
    op.drop_table('portfolio_factor_exposures')
    op.drop_table('portfolio_exposure_summary')
    with op.batch_alter_table('portfolio_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portfolio_changes_portfolio_id'))

    op.drop_table('portfolio_changes')
    op.drop_table('portfolio_analytics_cache')
    op.drop_table('pipeline_alerts')
    op.drop_table('factor_definitions')
