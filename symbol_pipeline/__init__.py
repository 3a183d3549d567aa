"""symbol_pipeline: factor exposures per symbol as Dagster assets, aggregated per portfolio."""

__version__ = "0.1.0"
