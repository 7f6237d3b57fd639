"""Distributed training (`PLATFORM_DASK_SCHEDULER`): `fraud_model` on a real `distributed.LocalCluster` of two worker
processes against the same asset in-process, on the same training-set snapshot.

The snapshot is synthetic but in the builder's exact format (one parquet file in event-time order, the `split`
column, its manifest and `latest.json`): building one through the whole platform (simulate, ingest, dbt, Feast)
costs minutes and tests nothing more of the trainer, which reads only this contract. Its signal is non-linear with
2-3% fraud, so PR AUC is a meaningful figure (~0.5-0.7), not 1.0.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from platform_env import local_settings

FEATURES = ["amount", "is_online", "is_night", "customer_txn_count_7d", "customer_amount_mean_30d",
            "merchant_fraud_rate_30d", "customer_merchant_txn_count_30d", "noise"]
ROWS = 60_000
HOLDOUT_SHARE = 0.2
# Small row groups: the workers read many partitions, the cut falls inside one, and both workers hold data.
ROW_GROUP = 4_000


def synthetic_snapshot(training_sets_dir, rows: int = ROWS, seed: int = 11, row_group: int = ROW_GROUP) -> dict:
    """A training-set snapshot as the builder writes it; returns its manifest's fields."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    x = {name: rng.normal(size=rows) for name in FEATURES}
    x["is_online"] = (rng.random(rows) < 0.4).astype(float)
    x["is_night"] = (rng.random(rows) < 0.2).astype(float)
    x["amount"] = np.exp(rng.normal(3.5, 1.0, rows))
    x["customer_txn_count_7d"][rng.random(rows) < 0.05] = np.nan  # a count with no feature row yet
    logit = (-5.2 + 0.9 * np.log(x["amount"]) - 2.6 + 1.1 * x["is_online"] * x["is_night"]
             + 1.2 * x["merchant_fraud_rate_30d"] + 0.8 * np.nan_to_num(x["customer_txn_count_7d"]) ** 2 * 0.5
             - 0.6 * x["customer_amount_mean_30d"])
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    ts = pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(np.sort(rng.uniform(0, 40 * 86_400, rows)), unit="s")
    cut_at = int(rows * (1 - HOLDOUT_SHARE))
    frame = pd.DataFrame({"transaction_id": [f"T{i:07d}" for i in range(rows)],
                          "customer_id": rng.integers(0, 2_000, rows).astype(str),
                          "merchant_id": rng.integers(0, 200, rows).astype(str), "event_timestamp": ts,
                          **{name: x[name].astype("float64") for name in FEATURES}, "is_fraud": y,
                          "split": np.where(np.arange(rows) < cut_at, "train", "holdout")})
    training_sets_dir.mkdir(parents=True, exist_ok=True)
    sid = f"synthetic_{seed}_{rows}"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), str(training_sets_dir / f"{sid}.parquet"),
                   row_group_size=row_group, coerce_timestamps="us", allow_truncated_timestamps=True)
    holdout = frame["split"] == "holdout"
    fields = {"snapshot_id": sid, "path": f"{sid}.parquet", "feature_service": "fraud_detector_v2",
              "feature_columns": FEATURES, "label_column": "is_fraud", "window_start": ts[0].isoformat(),
              "window_end": ts[-1].isoformat(), "as_of": ts[-1].isoformat(),
              "holdout_start": ts[cut_at].isoformat(), "rows": rows, "positives": int(y.sum()),
              "holdout_rows": int(holdout.sum()), "holdout_positives": int(y[holdout.to_numpy()].sum()),
              "content_hash": sid}
    for name in (f"{sid}.json", "latest.json"):
        (training_sets_dir / name).write_text(json.dumps(fields, indent=2))
    return fields


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as local:
        yield local


@pytest.fixture(scope="module")
def platform(tmp_path_factory, cluster):
    """A local-profile data dir whose settings name the cluster's scheduler, with one synthetic snapshot."""
    from platform_assets.resources.profile import build_resources

    data_dir = tmp_path_factory.mktemp("distributed-training")
    with pytest.MonkeyPatch.context() as mp:
        settings = local_settings(mp, data_dir, PLATFORM_DASK_SCHEDULER=cluster.scheduler_address)
        resources = build_resources(settings)
        synthetic_snapshot(resources["storage"].training_sets_dir())
        yield settings, resources


def _materialize(resources, instance):
    import dagster as dg

    from platform_assets.training.assets import fraud_model

    result = dg.materialize([fraud_model], resources=resources, instance=instance)
    assert result.success
    event = result.get_asset_materialization_events()[0]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


@pytest.mark.slow
def test_dask_trained_model_matches_in_process_and_registers_and_scores_by_alias(platform, cluster):
    import dagster as dg
    import mlflow
    from sklearn.metrics import average_precision_score

    from platform_assets.lib.names import CHAMPION
    from platform_assets.lib.training_sets import latest_manifest, read_split
    from platform_assets.resources import TrainingCluster

    _, resources = platform
    assert resources["training_cluster"].scheduler == cluster.scheduler_address
    with dg.instance_for_test() as instance:
        dask_run = _materialize(resources, instance)  # the first model: champion
        tracking = resources["mlflow_tracking"]
        run = tracking.setup().get_run(dask_run["mlflow_run_id"])
        assert run.data.tags["trainer"] == "dask" and run.data.tags["dask_workers"] == "2"
        assert int(run.data.params["best_iteration"]) == dask_run["best_iteration"]

        # Registered through the Dask path: it loads by alias, as pyfunc (what `mlflow models serve` and any client
        # reads) and as the platform loads it (the native classifier), and both score the holdout the same.
        manifest = latest_manifest(resources["storage"].training_sets_dir())
        holdout = read_split(manifest.path, "holdout")
        version = tracking.client().get_model_version_by_alias(tracking.model_name, CHAMPION)
        assert str(version.version) == dask_run["model_version"]
        pyfunc_scores = mlflow.pyfunc.load_model(tracking.model_uri(CHAMPION)).predict(holdout[manifest.feature_columns])
        native = tracking.load_version(version.version)
        native_scores = native.predict_proba(holdout[manifest.feature_columns].astype("float64"))[:, 1]
        np.testing.assert_allclose(np.asarray(pyfunc_scores), native_scores, rtol=1e-6)
        assert average_precision_score(holdout["is_fraud"], native_scores) == pytest.approx(dask_run["holdout_pr_auc"])
        assert list(native.get_booster().feature_names) == manifest.feature_columns
        # The same snapshot in-process (it may take the alias over: the gate decides, the figures are compared).
        local_run = _materialize({**resources, "training_cluster": TrainingCluster()}, instance)

    assert dask_run["trainer"] == "dask" and dask_run["dask_workers"] == 2 and dask_run["dask_threads"] == 2
    assert dask_run["dask_scheduler"] == cluster.scheduler_address
    assert local_run["trainer"] == "in-process" and "dask_scheduler" not in local_run
    # Same holdout (the snapshot's), same params, weights and early stopping: the same quality within 0.01.
    assert dask_run["holdout_rows"] == local_run["holdout_rows"]
    assert 0.3 < local_run["holdout_pr_auc"] < 0.95, local_run["holdout_pr_auc"]
    assert abs(dask_run["holdout_pr_auc"] - local_run["holdout_pr_auc"]) <= 0.01, (dask_run, local_run)
    assert dask_run["alias"] == CHAMPION


@pytest.mark.slow
def test_retrain_settings_weight_and_refit_alike_on_the_cluster(platform, cluster):
    """The retrain's configuration (recency half-life, refit on all rows for the early-stopped number of rounds)
    on both trainers: the same number of rounds chosen within a margin, the refit keeps it, quality within 0.01."""
    from distributed import Client

    from platform_assets.lib.training_sets import (
        latest_manifest,
        read_split,
        read_split_partitions,
        read_training_inputs,
    )
    from platform_assets.training.evaluation import evaluate, fit_classifier, fit_classifier_dask, score

    _, resources = platform
    manifest = latest_manifest(resources["storage"].training_sets_dir())
    params = {"n_estimators": 150, "max_depth": 4, "learning_rate": 0.1, "early_stopping_rounds": 20}
    train = read_training_inputs(manifest, "train")
    local = fit_classifier(train.inputs, train.labels, train.timestamps, params, 7.0, True)
    with Client(cluster, set_as_default=False) as client:
        frame = read_split_partitions(manifest, "train", min_partitions=4)
        distributed = fit_classifier_dask(client, frame, manifest.feature_columns, "is_fraud", params, 7.0, True)
    for model in (local, distributed):
        assert model.get_booster().num_boosted_rounds() == model.best_iteration + 1
    holdout = read_split(manifest.path, "holdout")
    figures = [evaluate(holdout["is_fraud"].to_numpy(), score(m, holdout, manifest.feature_columns)).pr_auc
               for m in (local, distributed)]
    assert abs(figures[0] - figures[1]) <= 0.01, figures
