"""Reading the chargeback API, its pure parts: what a page is, how long to wait, and where each item is kept."""

from datetime import UTC, date, datetime

import pytest

from platform_assets.ingestion.chargeback_api import GARBAGE_PREFIX, received_items
from platform_assets.resources.chargeback_api import (
    Fetched,
    Garbage,
    Page,
    backoff_seconds,
    parse_page,
    retry_after_seconds,
)

CB = {"chargeback_id": "CB1", "transaction_id": "T1", "reported_at": "2026-05-02T10:00:00.5Z", "reason": "fraud"}


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"data": [], "next_cursor": null, "has_more": false}', Page([], None, False)),
    (b'{"data": [{"a": 1}], "next_cursor": "c", "has_more": true}', Page([{"a": 1}], "c", True)),
    (b'{"data": [{"a": 1}], "next_cursor": nu', None),
    (b'{"data": "maintenance"}', None),
    (b'{"data": [{"a": 1}], "next_cursor": null, "has_more": false}', None),
    (b'{"data": [], "next_cursor": 3, "has_more": false}', None),
    (b"<html>502</html>", None),
    (b"\xff\xfe", None),
])
def test_only_a_page_is_a_page(body, expected):
    assert parse_page(body) == expected


def test_retry_after_in_seconds_or_as_a_date():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("3", now) == 3.0
    assert retry_after_seconds("Fri, 01 May 2026 12:00:07 GMT", now) == 7.0
    assert retry_after_seconds("Fri, 01 May 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None


def test_backoff_doubles_up_to_its_cap_with_half_of_it_jittered():
    assert [backoff_seconds(a, 0.5, 4.0, 0.0) for a in range(1, 6)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [backoff_seconds(a, 0.5, 4.0, 0.999) for a in (1, 5)] == pytest.approx([0.5, 4.0], rel=1e-3)


def test_each_item_is_kept_at_its_place_and_garbage_under_the_page_that_replaced_it():
    now = datetime(2026, 5, 3, tzinfo=UTC)
    later = {**CB, "chargeback_id": "CB2", "reported_at": "2026-05-03T01:00:00Z"}
    fetched = Fetched(pages=[(None, Page([CB, "oops", {"reason": "fraud"}], "c1", True)),
                             ("c1", Page([later], "c2", False))],
                      garbage=[Garbage("c1", 1, '{"data": [')])
    records = received_items(fetched, date(2026, 5, 4), now)
    assert [(r.position, r.day) for r in records] == [
        ("2026-05-02T10:00:00.5Z|CB1", date(2026, 5, 2)),
        ("None#1", date(2026, 5, 2)),
        ("None#2", date(2026, 5, 2)),
        ("2026-05-03T01:00:00Z|CB2", date(2026, 5, 3)),
        (f"{GARBAGE_PREFIX}c1|{now.isoformat()}|1", date(2026, 5, 3)),
    ]
    assert records[1].record == "oops" and records[4].record == '{"data": ['
    # Garbage where the retry found nothing more goes under the last day asked for.
    empty = Fetched(pages=[("c2", Page([], "c2", False))], garbage=[Garbage("c2", 1, "x")])
    assert [r.day for r in received_items(empty, date(2026, 5, 4), now)] == [date(2026, 5, 4)]


def test_an_item_is_filed_under_its_utc_day_and_a_zoneless_one_under_its_own_date():
    items = [{**CB, "reported_at": "2026-05-02T23:30:00-02:00"}, {**CB, "chargeback_id": "CB2",
                                                                   "reported_at": "2026-05-02T23:30:00"}]
    fetched = Fetched(pages=[(None, Page(items, "c", False))])
    records = received_items(fetched, date(2026, 5, 9), datetime(2026, 5, 9, tzinfo=UTC))
    assert [r.day for r in records] == [date(2026, 5, 3), date(2026, 5, 2)]
