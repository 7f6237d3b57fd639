"""Notifications: drift events, promotions and run failures, to the Dagster log and an optional webhook.

The webhook receives one JSON object per event (`{"kind", "message", "details", "sent_at"}`), which Slack-style
incoming webhooks, Alertmanager relays or a small service of one's own can consume. Its URL may carry a token, so
it comes from `dg.EnvVar("PLATFORM_WEBHOOK_URL")` (see definitions.py). A failing webhook is logged and never
fails the run or sensor that notifies: an alert must not take the platform down. Plain `urllib` suffices for one
POST with a timeout; no HTTP library is added for it.
"""

import json
import logging
import urllib.request
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

KINDS = ("drift_event", "retrain_requested", "promotion", "promotion_refused", "rollback", "run_failure")


class Notifier(dg.ConfigurableResource):
    webhook_url: str | None = Field(default=None, description="Optional webhook receiving a JSON POST per event")
    timeout_seconds: float = Field(default=5.0, description="Give up on the webhook after this long")

    def send(self, kind: str, message: str, details: dict | None = None, log=None) -> bool:
        """Log the event and POST it to the webhook if one is configured. True if the webhook accepted it."""
        if kind not in KINDS:
            raise ValueError(f"unknown notification kind {kind!r}; one of {KINDS}")
        log = log or logging.getLogger("platform_assets.notifications")
        log.info(f"[{kind}] {message}")
        if not self.webhook_url:
            return False
        body = json.dumps(
            {"kind": kind, "message": message, "details": details or {}, "sent_at": datetime.now(UTC).isoformat()},
            default=str,
        ).encode()
        request = urllib.request.Request(
            self.webhook_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return 200 <= response.status < 300
        except OSError as error:  # URLError, HTTPError, timeouts: all OSError
            log.warning(f"webhook notification '{kind}' failed: {error}")
            return False
