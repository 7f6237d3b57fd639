"""The pure parts of distributed training: how a time-ordered split is cut across partitions (exactly the rows
the in-process path fits and validates on), recency weights per partition, partitions of a parquet file, and what
the run records about the trainer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from platform_assets.lib.training_sets import split_partitions
from platform_assets.resources.training_cluster import TrainingCluster, describe, display_address
from platform_assets.training.evaluation import (
    early_stopping_cut,
    partition_stats,
    plan_partitions,
    recency_weights,
)

T0 = pd.Timestamp("2026-03-01", tz="UTC")


def _partitions(lengths: list[int]) -> list[pd.Series]:
    out, start = [], 0
    for n in lengths:
        out.append(pd.Series(T0 + pd.to_timedelta(np.arange(start, start + n), unit="min")))
        start += n
    return out


def _stats(parts: list[pd.Series]) -> pd.DataFrame:
    return pd.concat([partition_stats(p) for p in parts], ignore_index=True)


@pytest.mark.parametrize("lengths", [[100], [30, 0, 30, 40], [7, 13, 0, 1, 79], [85, 15], [84, 16, 0]])
def test_the_plan_selects_the_in_process_rows_for_fitting_and_validation(lengths):
    parts = _partitions(lengths)
    plan = plan_partitions(_stats(parts))
    rows = sum(lengths)
    assert plan.rows == rows and plan.cut == early_stopping_cut(rows) == int(rows * 0.85)
    whole = pd.concat(parts, ignore_index=True)
    fit = pd.concat([parts[i].iloc[a:b] for i, a, b in plan.fit_slices()], ignore_index=True)
    valid = pd.concat([parts[i].iloc[a:b] for i, a, b in plan.validation_slices()], ignore_index=True)
    pd.testing.assert_series_equal(fit, whole.iloc[:plan.cut].reset_index(drop=True))
    pd.testing.assert_series_equal(valid, whole.iloc[plan.cut:].reset_index(drop=True))
    assert plan.newest == whole.max()
    assert all(b > a for _, a, b in plan.fit_slices() + plan.validation_slices())  # no empty selections


def test_out_of_order_partitions_are_refused_not_silently_cut():
    parts = _partitions([10, 10])
    with pytest.raises(ValueError, match="event-time order"):
        plan_partitions(_stats([parts[1], parts[0]]))
    with pytest.raises(ValueError, match="event-time order"):
        plan_partitions(_stats([parts[0].iloc[::-1], parts[1]]))
    with pytest.raises(ValueError, match="no rows"):
        plan_partitions(_stats([parts[0].iloc[:0]]))


def test_recency_weights_per_partition_equal_the_whole_splits():
    parts = _partitions([40, 25, 35])
    whole = pd.concat(parts, ignore_index=True)
    newest = whole.max()
    per_partition = np.concatenate([recency_weights(p, 0.01, newest) for p in parts])
    np.testing.assert_allclose(per_partition, recency_weights(whole, 0.01))
    assert per_partition[-1] == 1.0 and per_partition[0] < per_partition[-1]
    np.testing.assert_array_equal(recency_weights(parts[0], 0.0, newest), np.ones(40))


@pytest.mark.parametrize(("rows", "minimum", "expected"), [
    ([1_000_000], 4, [(0, 0, 250_000), (0, 250_000, 500_000), (0, 500_000, 750_000), (0, 750_000, 1_000_000)]),
    ([5, 0, 7], 1, [(0, 0, 5), (2, 0, 7)]),
    ([3, 3], 4, [(0, 0, 1), (0, 1, 3), (1, 0, 1), (1, 1, 3)]),
    ([2], 10, [(0, 0, 1), (0, 1, 2)]),
    ([], 2, []),
])
def test_row_groups_become_partitions_in_file_order(rows, minimum, expected):
    pieces = split_partitions(rows, minimum)
    assert pieces == expected
    for g, n in enumerate(rows):  # every row of every group exactly once
        covered = [r for gg, a, b in pieces if gg == g for r in range(a, b)]
        assert covered == list(range(n))


def test_the_record_of_the_trainer_never_carries_credentials():
    assert display_address("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert display_address("tls://user:s3cret@scheduler:8786") == "tls://scheduler:8786"
    assert describe(None) == {"trainer": "in-process"}
    assert TrainingCluster().trainer == "in-process"
    assert TrainingCluster(scheduler="tcp://127.0.0.1:8786").trainer == "dask"
    with TrainingCluster().client() as client:
        assert client is None
