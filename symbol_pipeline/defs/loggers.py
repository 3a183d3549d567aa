"""The runs' console logger: Dagster's coloured console logger, at INFO unless a run asks for more.

Dagster's default is DEBUG, one formatted line per event: a run over 10,000 symbols writes one
event per partition (60,000), and every run a backfill or a sensor launches (the implicit asset
job) would print them all. The same logger at INFO prints the steps' own progress lines; a run
config (`loggers: console: config: log_level: DEBUG`, or `symbol-pipeline run --verbose`) still
asks for every event.
"""

from __future__ import annotations

import dagster as dg


@dg.logger(
    config_schema={
        "log_level": dg.Field(str, is_required=False, default_value="INFO"),
        "name": dg.Field(str, is_required=False, default_value="dagster"),
    },
    description="Dagster's coloured console logger, at INFO by default.",
)
def console_logger(init_context: dg.InitLoggerContext):
    return dg.colored_console_logger.logger_fn(init_context)
