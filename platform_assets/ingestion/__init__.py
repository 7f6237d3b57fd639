"""Ingestion stage: landing zone -> DuckDB raw tables, quarantine, daily partitions."""
