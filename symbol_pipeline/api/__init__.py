"""The HTTP API over the portfolio service (FastAPI)."""
