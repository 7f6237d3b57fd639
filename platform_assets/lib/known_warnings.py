"""Warnings the platform's own use of its libraries sets off, each silenced at its source with the reason.

They print in every run worker, code server and test, dozens of lines per `make demo`, and none asks anything of
a user: the filters below match one message from one library each, so any other warning still shows.
"""

from __future__ import annotations

import warnings

KNOWN = (
    # dagster-dbt 0.29 asks for `sqlglot[rs]`; sqlglot<30 (pinned: dagster-dbt's column lineage breaks on 30)
    # then warns at import that the Rust tokenizer is unused. Nothing to act on until dagster-dbt drops the extra.
    ("ignore", r"sqlglot\[rs\] is deprecated", UserWarning, "sqlglot"),
    ("ignore", r"sqlglotrs is deprecated", DeprecationWarning, "sqlglotrs"),
    # Single-run backfills (one dbt call and one model load for a range of days) are why we pass
    # `backfill_policy`; Dagster marks the parameter beta on every decoration.
    ("ignore", r"Parameter `backfill_policy` of function", Warning, "dagster"),
    # dagster-dbt's own event handling calls the deprecated AssetExecutionContext.op; not our call.
    ("ignore", r"AssetExecutionContext.op is deprecated", DeprecationWarning, "dagster_dbt"),
    # The champion's request-time features are an on-demand feature view (features/definitions); Feast warns
    # that ODFVs are experimental on every offline retrieval. Training sets are built in chunks, which bounds
    # the cost the warning is about (docs/features.md).
    ("ignore", r"On demand feature view is an experimental feature", RuntimeWarning, "feast"),
    # The transaction stream is an observable source asset (its lag and throughput as observations, issue 17);
    # Dagster marks the decorator beta on every decoration.
    ("ignore", r"Function `observable_source_asset` is currently in beta", Warning, "dagster"),
    # ... and Dagster's own conversion of it into an asset reads the deprecated OpDefinition.version
    # (dagster/_core/definitions/external_asset.py): not our call.
    ("ignore", r"Property `OpDefinition.version` is deprecated", DeprecationWarning, "dagster"),
)


def silence_known_warnings() -> None:
    for action, message, category, module in KNOWN:
        warnings.filterwarnings(action, message=message, category=category, module=module)
