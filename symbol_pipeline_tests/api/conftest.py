"""The portfolio fixtures: an empty database per backend."""

from symbol_pipeline_tests.portfolio_data import engine, pg_engine, pg_url  # noqa: F401
