"""Use cases shared by the Dagster assets, the CLI and the HTTP API."""
