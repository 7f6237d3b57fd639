"""Scoring: every day's transactions scored by the champion, each row with its provenance.

The daily partition D scores the transactions of day D with the features Feast knew at each transaction's time
(the same point-in-time join the training set used), marks the day's top `review_budget` share for review, and
writes `predictions/D.parquet`. Every row names the model version, the feature service (its version is in the
name) and the training-set id, so one query walks back from a prediction to the snapshot that trained its model:

    SELECT p.transaction_id, p.fraud_score, p.model_version, t.*
    FROM read_parquet('data/predictions/*.parquet') p
    JOIN read_parquet('data/training_sets/*.parquet', filename = true) t
      ON t.filename LIKE '%/' || p.training_set_id || '.parquet'

Monitoring reads these files (prediction drift, label-delayed performance), never the model again for old days.
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from platform_assets.lib import names
from platform_assets.lib.partitions import refresh_latest_day
from platform_assets.resources import FeastResource, LoopPolicy, MlflowResource, PlatformStorage


def daily_predictions(
    context: dg.AssetExecutionContext,
    feast: FeastResource,
    mlflow_tracking: MlflowResource,
    storage: PlatformStorage,
    policy: LoopPolicy,
) -> dg.MaterializeResult:
    import pandas as pd

    from platform_assets.lib import predictions as pr
    from platform_assets.lib import training_sets as td
    from platform_assets.lib.champion import require_champion

    window = context.partition_time_window
    champion = require_champion(mlflow_tracking, storage.training_sets_dir())
    manifest = champion.manifest
    features = manifest.feature_columns
    store = feast.store()
    rows, scores, flagged = 0, 0.0, 0
    # One point-in-time join per day: a backfill of many days holds one day's rows at a time.
    for key in context.partition_keys:
        day = date.fromisoformat(key)
        start = datetime.combine(day, datetime.min.time(), UTC)
        entity_rows = td.transactions_between(storage.exports_dir(), start, start + timedelta(days=1))
        if len(entity_rows):
            frame = td.join_features(store, entity_rows, manifest.feature_service)
            frame[pr.SCORE] = champion.score(frame)
        else:
            frame = entity_rows.reindex(columns=[*td.KEYS, *features]).assign(**{pr.SCORE: pd.Series(dtype=float)})
        frame = frame[[*td.KEYS, *features, pr.SCORE]].assign(
            model_name=mlflow_tracking.model_name,
            model_version=champion.number,
            feature_service=manifest.feature_service,
            training_set_id=manifest.snapshot_id,
            scored_at=datetime.now(UTC),
        )
        # The review queue is decided per day: the day's top `review_budget` share of scores.
        frame.insert(len(td.KEYS) + len(features) + 1, pr.FLAGGED, pr.flag_top(frame[pr.SCORE], policy.review_budget))
        pr.write_day(frame, storage.predictions_dir(), day)
        rows, scores = rows + len(frame), scores + float(frame[pr.SCORE].sum())
        flagged += int(frame[pr.FLAGGED].sum())
    context.log.info(f"{window.start.date()}..{window.end.date()}: scored {rows:,} transactions "
                     f"({len(context.partition_keys)} day(s)) with v{champion.number}, {flagged} sent to review")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "path": dg.MetadataValue.path(str(pr.day_path(storage.predictions_dir(), window.start.date()))),
            names.MODEL_VERSION: champion.number,
            names.TAG_FEATURE_SERVICE: manifest.feature_service,
            names.TAG_TRAINING_SET_ID: manifest.snapshot_id,
            pr.FLAGGED: flagged,
            "mean_score": dg.MetadataValue.float(scores / rows if rows else 0.0),
        }
    )


# Bump when a change to the scoring code changes the predictions of a day (not for a new champion: that is data).
DAILY_PREDICTIONS_VERSION = "1"


def build_scoring_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [
        dg.asset(
            key=names.DAILY_PREDICTIONS,
            group_name=names.SCORING,
            kinds={"xgboost", "parquet"},
            partitions_def=partitions,
            code_version=DAILY_PREDICTIONS_VERSION,
            # A backfill of many days is one run: one model load, then one point-in-time join and one file a day.
            backfill_policy=dg.BackfillPolicy.single_run(),
            deps=[names.FRAUD_MODEL, names.FEAST_FEATURE_VIEWS, names.FCT_TRANSACTIONS],
            automation_condition=refresh_latest_day(),
            description="The champion's fraud scores for one day's transactions, with model version, feature "
            "service and training-set id on every row.",
        )(daily_predictions)
    ]
