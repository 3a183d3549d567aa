"""Pure numpy/pandas kernels. Nothing here imports Dagster, SQL or the rest of the project."""
