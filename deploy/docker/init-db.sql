-- The pipeline's own database beside Dagster's: separate so that Dagster's event log can be
-- pruned, vacuumed or moved without touching prices and betas.
CREATE DATABASE symbol_pipeline OWNER dagster;
