"""symbol-pipeline: run the symbol layer, read betas, manage symbols, portfolios and the API."""

from symbol_pipeline.cli.main import main

__all__ = ["main"]
