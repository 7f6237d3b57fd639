"""The running scoring service, as Dagster sees it: its URL, its optional bearer token, and its `/readyz`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import dagster as dg
from pydantic import Field


class ScoringService(dg.ConfigurableResource):
    url: str = Field(default="http://127.0.0.1:8000", description="Base URL of the scoring service")
    token: str | None = Field(default=None, description="Bearer token (PLATFORM_SERVING_TOKEN), if one is required")
    timeout_seconds: float = 3.0

    def readiness(self) -> dict:
        """The service's `/readyz` answer, or `{"ready": False, "reason": ...}` when it cannot be reached."""
        request = urllib.request.Request(self.url.rstrip("/") + "/readyz")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return json.loads(response.read(65_536))
        except urllib.error.HTTPError as exc:
            try:
                return json.loads(exc.read(65_536))
            except ValueError:
                return {"ready": False, "reason": f"HTTP {exc.code}"}
        except (OSError, ValueError) as exc:
            return {"ready": False, "reason": f"not reachable at {self.url}: {exc}"}
