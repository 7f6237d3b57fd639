"""The API's request and response bodies (pydantic): field errors become 422s, the OpenAPI schema comes from here.

The request carries the transaction as the card network hands it over, with the landing-zone contract's rules
(docs/data-contracts.md): ids of letters, digits and `_.:-`, an amount > 0 with at most two decimals, an ISO 4217
currency code, `online` or `card_present`, and a timestamp with its UTC offset (a zone-less time is refused, not
guessed). Unknown fields are refused too: a misspelt field is a client bug, not something to ignore.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

MAX_BATCH = 1_000
Identifier = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")


class Transaction(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "transaction_id": "tx-000123", "customer_id": "C00042", "merchant_id": "M0007", "amount": 42.5,
        "currency": "EUR", "channel": "online", "event_ts": "2026-12-01T14:03:11+00:00"}]})

    transaction_id: str = Identifier
    customer_id: str = Identifier
    merchant_id: str = Identifier
    amount: float = Field(gt=0, le=1_000_000, allow_inf_nan=False, description="In currency units, 2 decimals")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")
    channel: Literal["online", "card_present"]
    event_ts: AwareDatetime = Field(description="ISO 8601 with a UTC offset")

    @field_validator("amount")
    @classmethod
    def cents(cls, value: float) -> float:
        if abs(value * 100 - round(value * 100)) > 1e-6:
            raise ValueError("amount has more than two decimals")
        return value


class Reason(BaseModel):
    feature: str
    value: float | None = Field(description="The feature's value in this request (null: missing)")
    contribution: float = Field(description="Its contribution to the log-odds; > 0 pushes towards fraud")


class Score(BaseModel):
    transaction_id: str
    score: float = Field(ge=0, le=1, description="Fraud probability")
    decision: Literal["approve", "review"]
    model_name: str
    model_version: str
    feature_service: str
    stale_features: list[str] = Field(description="Stored features older than their TTL, served as missing")
    unknown_customer: bool = Field(description="No stored figures for the customer: scored as never seen")
    unknown_merchant: bool = Field(description="No stored figures for the merchant: scored as never seen")
    reasons: list[Reason] = Field(description="The 3 largest feature contributions (XGBoost pred_contribs)")


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transactions: list[Transaction] = Field(min_length=1, max_length=MAX_BATCH)


class BatchScores(BaseModel):
    results: list[Score]


class Ready(BaseModel):
    ready: bool
    reason: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    feature_service: str | None = None
    training_set_id: str | None = None
    review_threshold: float | None = None
    loaded_at: str | None = None
    challenger_version: str | None = None
    online_store: str | None = None
