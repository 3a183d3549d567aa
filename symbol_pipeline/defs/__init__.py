"""Dagster glue: partitions, assets, checks, schedules, sensors and resources."""
