"""Notifications: drift events, promotions and run failures, to the Dagster log and an optional webhook.

The webhook receives one JSON object per event (`{"event_id", "kind", "message", "details", "sent_at"}`), which
Slack-style incoming webhooks, Alertmanager relays or a small service of one's own can consume. Delivery is at
least once: a sensor tick that crashes after notifying is replayed by the daemon and notifies again. The replay
carries the same `event_id` (also sent as the `Idempotency-Key` header), derived from the event itself and never
from the clock, so a receiver drops the repeat by that key. Its URL may carry a token, so
it comes from `dg.EnvVar("PLATFORM_WEBHOOK_URL")` (see definitions.py). A failing webhook is logged and never
fails the run or sensor that notifies: an alert must not take the platform down. Plain `urllib` suffices for one
POST with a timeout; no HTTP library is added for it.
"""

import hashlib
import json
import logging
import urllib.request
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

KINDS = ("drift_event", "retrain_requested", "promotion", "promotion_refused", "rollback", "run_failure",
         "online_store_lost")


def derived_event_id(kind: str, message: str, details: dict) -> str:
    """The same event always gets the same id: a hash of what it says, not of when it was sent."""
    content = json.dumps([kind, message, details], sort_keys=True, default=str).encode()
    return f"{kind}:{hashlib.sha256(content).hexdigest()[:16]}"


class Notifier(dg.ConfigurableResource):
    webhook_url: str | None = Field(default=None, description="Optional webhook receiving a JSON POST per event")
    timeout_seconds: float = Field(default=5.0, description="Give up on the webhook after this long")

    def send(self, kind: str, message: str, details: dict | None = None, log=None, event_id: str | None = None) -> bool:
        """Log the event and POST it to the webhook if one is configured. True if the webhook accepted it.
        `event_id` names the event for deduplication; by default it is derived from kind, message and details."""
        if kind not in KINDS:
            raise ValueError(f"unknown notification kind {kind!r}; one of {KINDS}")
        details = details or {}
        event_id = event_id or derived_event_id(kind, message, details)
        log = log or logging.getLogger("platform_assets.notifications")
        log.info(f"[{kind}] {message} ({event_id})")
        if not self.webhook_url:
            return False
        body = json.dumps(
            {"event_id": event_id, "kind": kind, "message": message, "details": details,
             "sent_at": datetime.now(UTC).isoformat()},
            default=str,
        ).encode()
        request = urllib.request.Request(
            self.webhook_url, data=body, method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": event_id},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return 200 <= response.status < 300
        except OSError as error:  # URLError, HTTPError, timeouts: all OSError
            log.warning(f"webhook notification '{kind}' failed: {error}")
            return False
