"""Notifications: logged always, POSTed as JSON to a webhook when one is configured, never fatal."""

from __future__ import annotations

import logging
import socket

import pytest

from platform_assets.resources import Notifier


def test_event_is_logged_and_posted(webhook, caplog):
    url, received = webhook
    with caplog.at_level(logging.INFO):
        assert Notifier(webhook_url=url).send("drift_event", "drift on 2026-03-10", {"share": 0.4}) is True
    assert received[0]["kind"] == "drift_event" and received[0]["details"] == {"share": 0.4}
    assert "drift on 2026-03-10" in received[0]["message"] and "sent_at" in received[0]
    assert "[drift_event] drift on 2026-03-10" in caplog.text


def test_without_webhook_only_the_log(caplog):
    with caplog.at_level(logging.INFO):
        assert Notifier().send("promotion", "v2 -> champion") is False
    assert "[promotion] v2 -> champion" in caplog.text


def test_unreachable_webhook_is_a_warning_not_a_failure(caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with caplog.at_level(logging.INFO):
        assert Notifier(webhook_url=f"http://127.0.0.1:{port}/", timeout_seconds=1).send("run_failure", "x") is False
    assert "webhook notification 'run_failure' failed" in caplog.text


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown notification kind"):
        Notifier().send("gossip", "x")


def test_a_replayed_event_carries_the_same_id_so_the_receiver_can_drop_it(webhook):
    """A sensor tick replayed after a crash notifies again (at least once); the id makes the repeat detectable."""
    url, received = webhook
    notifier = Notifier(webhook_url=url)
    for _ in range(2):
        notifier.send("drift_event", "drift event opened on 2026-04-12", {"event_start": "2026-04-12"})
    notifier.send("drift_event", "drift event opened on 2026-04-13", {"event_start": "2026-04-13"})
    notifier.send("retrain_requested", "retrain drift-retrain:2026-04-12", event_id="drift-retrain:2026-04-12")

    ids = [r["event_id"] for r in received]
    assert ids[0] == ids[1] != ids[2]
    assert ids[0].startswith("drift_event:") and ids[3] == "drift-retrain:2026-04-12"
    assert [r["headers"]["Idempotency-Key"] for r in received] == ids
