"""Ingestion stage: landing zone -> DuckDB raw tables, quarantine, daily partitions."""

from platform_assets.ingestion.assets import (
    ingestion_assets,
    raw_chargebacks,
    raw_customers,
    raw_merchants,
    raw_transactions,
)

__all__ = ["ingestion_assets", "raw_chargebacks", "raw_customers", "raw_merchants", "raw_transactions"]
