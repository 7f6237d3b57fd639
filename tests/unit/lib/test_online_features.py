"""The online freshness guard's rule: a value older than its view's TTL at the caller's time is stale."""

from platform_assets.lib.online_features import GuardedFeatures, is_stale

DAY = 86_400


def test_value_older_than_ttl_is_stale_and_one_within_is_not():
    now = 100 * DAY
    assert is_stale(now - 31 * DAY, 30 * DAY, now)
    assert not is_stale(now - 30 * DAY, 30 * DAY, now)  # exactly the TTL: still valid, like the offline join
    assert not is_stale(now - DAY, 30 * DAY, now)


def test_missing_values_and_views_without_ttl_are_never_stale():
    assert not is_stale(0, 30 * DAY, 100 * DAY)  # Feast reports a missing value with timestamp 0
    assert not is_stale(None, 30 * DAY, 100 * DAY)
    assert not is_stale(DAY, 0, 100 * DAY)


def test_guarded_features_rows_and_counts():
    guarded = GuardedFeatures({"customer_id": ["C1", "C2"], "x": [None, 2.0]}, {"x": [0]})
    assert guarded.row(1) == {"customer_id": "C2", "x": 2.0}
    assert guarded.stale_count == 1
