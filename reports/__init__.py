"""Reports: MLflow runs -> pandas -> scaling-law fits, tables, figures and one HTML page.

The report reads only what the runs logged to MLflow (tags, params, metric histories); it never
opens a run directory. Entry points: `reports.build.build_report` and the `suite report` CLI
(`suite.commands.report`).
"""
