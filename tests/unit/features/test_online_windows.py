"""Online materialization windows in data time, with stand-in feature views."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from types import SimpleNamespace

import pytest

from platform_assets.features.online import Window, chunked, materialize_new_windows, pending_windows

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


def test_chunks_cover_the_window_exactly_and_are_bounded():
    window = Window("customer", END - timedelta(days=30), END)
    pieces = chunked(window, timedelta(days=7))
    assert [p.end - p.start for p in pieces] == [timedelta(days=7)] * 4 + [timedelta(days=2)]
    assert pieces[0].start == window.start and pieces[-1].end == window.end
    assert all(a.end == b.start for a, b in pairwise(pieces))
    assert chunked(Window("c", END, END), timedelta(days=7)) == []
    with pytest.raises(ValueError, match="positive"):
        chunked(window, timedelta(0))


def test_a_long_window_is_materialized_chunk_by_chunk_in_order():
    calls, seen = [], []
    store = SimpleNamespace(
        list_feature_views=lambda: [view("merchant", END - timedelta(days=10))],
        materialize=lambda **kw: calls.append((kw["start_date"], kw["end_date"])),
    )
    chunks = materialize_new_windows(store, END, chunk=timedelta(days=4), on_chunk=seen.append)
    assert calls == [(c.start, c.end) for c in chunks] and seen == chunks
    assert calls == [(END - timedelta(days=10), END - timedelta(days=6)),
                     (END - timedelta(days=6), END - timedelta(days=2)), (END - timedelta(days=2), END)]
