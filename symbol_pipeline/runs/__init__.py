"""Runs on the project's Dagster instance: partition keys and tags, the instance, run submission.

Shared by the CLI, the HTTP API and the Dagster definitions; it never imports `defs` or
`definitions.py`, so the API process does not build the code location.
"""
