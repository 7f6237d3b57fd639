"""The daily views' TTL and dbt's feature calendar are one figure: the longest window the features name."""

from __future__ import annotations

import re
from datetime import timedelta

import yaml
from platform_env import feature_repo_module

from platform_assets.settings import PROJECT_ROOT


def _feature_repo():
    return feature_repo_module()


def test_ttl_follows_the_longest_window_the_calendar_keeps_rows_for():
    repo = _feature_repo()
    windows = {int(m.group(1)) for name in [*repo.CUSTOMER_FEATURES, *repo.MERCHANT_FEATURES]
               if (m := re.search(r"_(\d+)d$", name))}
    assert windows == {1, 7, 30}
    assert repo.LONGEST_WINDOW_DAYS == max(windows)
    project = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text())
    assert project["vars"]["longest_window_days"] == repo.LONGEST_WINDOW_DAYS
    # a seen entity has a row at most LONGEST_WINDOW_DAYS days apart: the TTL covers the gap and the day it takes
    assert repo.FEATURE_TTL == timedelta(days=repo.LONGEST_WINDOW_DAYS + 1)
    assert repo.customer_daily_features.ttl == repo.merchant_daily_features.ttl == repo.FEATURE_TTL
    assert repo.customer_merchant_features.ttl == timedelta(0)


def test_velocity_state_reaches_back_the_longest_velocity_window_in_dbt_and_feast():
    repo = _feature_repo()
    assert repo.RECENT_HORIZON_SECONDS == max(seconds for _, seconds in repo.VELOCITY_WINDOWS) == 86_400
    project = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text())
    assert project["vars"]["recent_horizon_seconds"] == repo.RECENT_HORIZON_SECONDS
    # a state older than the horizon holds nothing inside a window; the TTL must never null one that does
    assert repo.customer_recent_transactions.ttl >= timedelta(seconds=repo.RECENT_HORIZON_SECONDS)
    assert repo.customer_recent_transactions.stream_source.name == "customer_transactions_push"
    service = {p.name for p in repo.fraud_detector_v3.feature_view_projections}
    assert service == {"customer_daily_features", "merchant_daily_features", "transaction_features",
                       "velocity_features"}
