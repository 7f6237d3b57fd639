"""Online materialization windows in data time, with stand-in feature views."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from platform_assets.features.online import Window, materialize_new_windows, pending_windows

END = datetime(2026, 3, 20, tzinfo=UTC)
TTL = timedelta(days=30)


def view(name, most_recent_end_time=None, ttl=TTL):
    return SimpleNamespace(name=name, most_recent_end_time=most_recent_end_time, ttl=ttl)


def test_never_materialized_view_starts_one_ttl_before_the_end():
    assert pending_windows([view("customer")], END) == [Window("customer", END - TTL, END)]


def test_materialized_view_resumes_where_it_ended():
    last = END - timedelta(days=1)
    assert pending_windows([view("merchant", last)], END) == [Window("merchant", last, END)]


def test_up_to_date_views_are_skipped_and_order_is_kept():
    views = [view("a", END), view("b", END + timedelta(hours=1)), view("c"), view("d", END - timedelta(seconds=1))]
    windows = pending_windows(views, END)
    assert [w.view for w in windows] == ["c", "d"]
    assert windows[1].start == END - timedelta(seconds=1)


def test_materialize_new_windows_loads_only_pending_views():
    calls = []
    store = SimpleNamespace(
        list_feature_views=lambda: [view("fresh", END), view("stale", END - timedelta(days=2))],
        materialize=lambda **kw: calls.append(kw),
    )
    windows = materialize_new_windows(store, END)
    assert windows == [Window("stale", END - timedelta(days=2), END)]
    assert calls == [{"start_date": END - timedelta(days=2), "end_date": END, "feature_views": ["stale"]}]
